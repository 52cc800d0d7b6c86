// `cohort simulate CONFIG.yaml [--out DIR] [--seed N] [--threads N] [--set key=value]...`
#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "cohort/runner/runner.h"
#include "commands.h"

namespace cohort::cli {

namespace {

int g_exit_code = 0;
std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  // First Ctrl-C: finish the current event, write outputs, exit. Second: default action.
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

struct SimulateArgs {
  std::string config;
  std::string out = "runs/latest";
  int64_t seed = -1;
  int64_t threads = -1;
  std::vector<std::string> sets;
  bool quiet = false;
  bool save_partition = false;
};

void run_simulate(const SimulateArgs& a) {
  std::vector<std::string> overrides = a.sets;
  if (a.seed >= 0) overrides.push_back("run.seed=" + std::to_string(a.seed));
  if (a.threads >= 0) overrides.push_back("run.threads=" + std::to_string(a.threads));
  Result<SimulationConfig> cfg = load_simulation_config(a.config, overrides);
  if (!cfg.ok()) return fail(cfg.error());
  if (!cfg->strategies.empty()) {
    // Checked before the data is loaded; run_simulation would refuse it too.
    return fail(Status::invalid_argument(
        a.config + ": strategies: lists " + std::to_string(cfg->strategies.size()) +
        " strategies; run them with `cohort compare " + a.config +
        " --out DIR`, or give one strategy: section to cohort simulate"));
  }
  Result<Scenario> scenario = build_scenario(*cfg);
  if (!scenario.ok()) return fail(scenario.error());

  RunOutputs out;
  out.out_dir = a.out;
  out.progress = !a.quiet;
  out.save_partition = a.save_partition;
  out.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  Result<sim::SimSummary> s = run_simulation(*cfg, *scenario, out);
  std::signal(SIGINT, SIG_DFL);
  if (!s.ok()) return fail(s.error());
  std::printf("%s: %lld rounds, %lld updates, virtual time %.1f s, wall time %.1f s\n",
              s->strategy.c_str(), static_cast<long long>(s->rounds),
              static_cast<long long>(s->updates), s->virtual_time_s, s->wall_time_s);
  std::printf("final accuracy %.4f (best %.4f)", s->final_accuracy, s->best_accuracy);
  if (cfg->run.target_accuracy > 0) {
    if (s->time_to_target) {
      std::printf(", reached %.2f at virtual %.1f s", cfg->run.target_accuracy, *s->time_to_target);
    } else {
      std::printf(", never reached %.2f", cfg->run.target_accuracy);
    }
  }
  std::printf("\nmodel %s; outputs in %s/\n", s->model_hash.c_str(), a.out.c_str());
  if (g_stop.load()) std::printf("(stopped early by SIGINT)\n");
}

}  // namespace

int exit_code() { return g_exit_code; }

void fail(const Status& s) {
  std::fprintf(stderr, "cohort: error: %s\n", s.to_string().c_str());
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
      g_exit_code = 2;
      break;
    case StatusCode::kNotFound:
      g_exit_code = 3;
      break;
    default:
      g_exit_code = 1;
  }
}

void add_simulate_command(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  CLI::App* cmd = app.add_subcommand("simulate", "Run a federated training in the simulator");
  cmd->add_option("config", args->config, "YAML scenario file")->required();
  cmd->add_option("--out", args->out, "Output directory (metrics.jsonl, summary.json, ...)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Override run.seed");
  cmd->add_option("--threads", args->threads, "Override run.threads (0 = all cores)");
  cmd->add_option("--set", args->sets, "Override a config key: --set training.lr=0.1")
      ->allow_extra_args(false);
  cmd->add_flag("--quiet,-q", args->quiet, "No progress line");
  cmd->add_flag("--save-partition", args->save_partition,
                "Also write partition.json (client -> example indices)");
  cmd->callback([args] { run_simulate(*args); });
}

}  // namespace cohort::cli
