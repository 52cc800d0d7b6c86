// `cohort`: the command-line entry point. Subcommands live in their own files; this one only
// wires CLI11 and maps Status codes to exit codes (docs/design/conventions.md).
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "reproducible.h"

int main(int argc, char** argv) {
  // glibc starts its mmap threshold at 128 KB and raises it as large blocks are freed, which
  // leaves the main thread's heap in a state where a simulation that registered a million
  // clients trains one-step tasks up to 1.8x slower (measured) (docs/design/scale.md). Fixing the
  // threshold at glibc's own maximum from the start (32 MB, which 64-bit glibc converges to
  // anyway) avoids that. The environment's GLIBC_TUNABLES still win where set.
  if (std::getenv("GLIBC_TUNABLES") == nullptr) mallopt(M_MMAP_THRESHOLD, 32 << 20);
  cohort::cli::remember_process_args(argc, argv);
  CLI::App app{"Cohort: federated and low-communication learning across heterogeneous clients"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cohort 0.1.0");
  cohort::cli::add_simulate_command(app);
  cohort::cli::add_compare_command(app);
  cohort::cli::add_report_command(app);
  cohort::cli::add_bench_command(app);
  cohort::cli::add_privacy_command(app);
#ifdef COHORT_WITH_GRPC
  cohort::cli::add_serve_command(app);
  cohort::cli::add_join_command(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return cohort::cli::exit_code();
}
