#include "common.h"

#include <csignal>
#include <fstream>

#include "cohort/runner/runner.h"
#include "commands.h"

namespace cohort::cli {

namespace {

int g_exit_code = kExitOk;
std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
  // First Ctrl-C: finish the current event, write the outputs, exit. Second: default action.
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);
}

}  // namespace

Result<std::string> read_token_file(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) return Status::not_found(flag + ": cannot read '" + path + "'");
  std::string line;
  while (std::getline(in, line)) {
    const auto b = line.find_first_not_of(" \t\r\n");
    if (b == std::string::npos || line[b] == '#') continue;
    const auto e = line.find_last_not_of(" \t\r\n");
    return line.substr(b, e - b + 1);
  }
  return Status::invalid_argument(flag + ": '" + path + "' holds no token");
}

int exit_code_for(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
      return kExitBadInput;
    case StatusCode::kNotFound:
      return kExitNotFound;
    default:
      return kExitError;
  }
}

int exit_code() { return g_exit_code; }
void set_exit_code(int code) { g_exit_code = code; }

void fail(const Status& s) {
  std::fprintf(stderr, "cohort: error: %s\n", s.to_string().c_str());
  g_exit_code = exit_code_for(s);
}

std::vector<std::string> ConfigArgs::overrides() const {
  std::vector<std::string> out = sets;
  if (seed) out.push_back("run.seed=" + std::to_string(*seed));
  if (threads) out.push_back("run.threads=" + std::to_string(*threads));
  return out;
}

void ConfigArgs::add_options(CLI::App* cmd) {
  cmd->add_option("config", config, "YAML scenario file")->required();
  cmd->add_option("--seed", seed, "Shortcut for --set run.seed=N");
  cmd->add_option("--threads", threads, "Shortcut for --set run.threads=N (0 = all cores)");
  cmd->add_option("--set", sets, "Override a config key: --set training.lr=0.1")
      ->allow_extra_args(false);
}

Result<SimulationConfig> load_run_config(const ConfigArgs& args, ConfigUse use) {
  COHORT_ASSIGN_OR_RETURN(SimulationConfig cfg,
                          load_simulation_config(args.config, args.overrides(), use));
  // With a device trace the trace decides the count; run_simulation checks it again.
  const int64_t clients = cfg.clients.trace.empty() ? cfg.clients.num_clients : 0;
  COHORT_RETURN_IF_ERROR(cfg.source.explain(check_strategies(cfg, clients)));
  return cfg;
}

void InterruptFlag::install() {
  g_interrupted.store(false);
  std::signal(SIGINT, on_sigint);
}
void InterruptFlag::restore() { std::signal(SIGINT, SIG_DFL); }
bool InterruptFlag::raised() { return g_interrupted.load(); }
const std::atomic<bool>* InterruptFlag::flag() { return &g_interrupted; }

}  // namespace cohort::cli
