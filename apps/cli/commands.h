// Subcommands of the `cohort` CLI. Each add_*_command registers its options and a callback;
// the callback stores its exit code for main() to return.
#pragma once

#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cohort/core/status.h"

namespace cohort::cli {

void add_simulate_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_privacy_command(CLI::App& app);  // apps/cli/privacy.cc
void add_serve_command(CLI::App& app);  // apps/cli/serve.cc (COHORT_WITH_GRPC)
void add_join_command(CLI::App& app);   // apps/cli/join.cc (COHORT_WITH_GRPC)

// Exit code of the command that ran (common.h lists them).
int exit_code();
void set_exit_code(int code);
// Prints "cohort: error: <status>" on stderr and records the matching exit code.
void fail(const Status& s);

// Runs `run` (returning a Status) and fail()s on error; an exception (e.g. a failed allocation
// of huge benchmark buffers) becomes an Internal error naming `what`.
template <typename F>
void run_guarded(const char* what, F&& run) {
  Status s;
  try {
    s = run();
  } catch (const std::exception& e) {
    s = Status::internal(std::string(what) + ": " + e.what());
  }
  if (!s.ok()) fail(s);
}

}  // namespace cohort::cli
