// `cohort`: the command-line entry point. Subcommands live in their own files; this one only
// wires CLI11 and maps Status codes to exit codes (docs/design/conventions.md).
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "reproducible.h"

int main(int argc, char** argv) {
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
