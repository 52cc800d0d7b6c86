// What the subcommands share: exit codes, the Ctrl-C flag, and loading a run's config with
// the --seed / --threads / --set shortcuts (docs/design/errors.md has the exit codes).
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cohort/config/config.h"
#include "cohort/core/status.h"

namespace cohort::cli {

// Exit codes of the `cohort` command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;          // anything else (I/O, internal, a failed run)
inline constexpr int kExitBadInput = 2;       // a bad config, argument or input file
inline constexpr int kExitNotFound = 3;       // a missing file
inline constexpr int kExitStalled = 4;        // the run ended with no work left before its budget
inline constexpr int kExitInterrupted = 130;  // stopped by Ctrl-C (outputs still written)

// The exit code of a Status: 2 for InvalidArgument / FailedPrecondition / OutOfRange, 3 for
// NotFound, 1 for anything else.
int exit_code_for(const Status& s);

// The config file plus the shortcuts every run command takes.
struct ConfigArgs {
  std::string config;
  std::optional<int64_t> seed;     // --seed N: run.seed
  std::optional<int64_t> threads;  // --threads N: run.threads
  std::vector<std::string> sets;   // --set key.path=value
  // --seed and --threads become overrides, so their values are checked like any other key
  // ("run.seed: expected a non-negative integer, got -5 (from override 'run.seed=-5')").
  std::vector<std::string> overrides() const;
  void add_options(CLI::App* cmd);
};

// Loads the config and checks its strategies (parameters, and that clients.count can run
// them) before any data is read; errors name the file, key and override.
Result<SimulationConfig> load_run_config(const ConfigArgs& args,
                                         ConfigUse use = ConfigUse::kSimulation);

// A bearer token from a file: its first line that is neither blank nor a '#' comment,
// trimmed. NotFound / InvalidArgument naming `flag` and the file.
Result<std::string> read_token_file(const std::string& path, const std::string& flag);

// A flag set by the first SIGINT (a second one kills the process); install() and restore()
// around a run.
class InterruptFlag {
 public:
  static void install();
  static void restore();
  static bool raised();
  static const std::atomic<bool>* flag();
};

}  // namespace cohort::cli
