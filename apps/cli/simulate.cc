// `cohort simulate CONFIG.yaml [--out DIR] [--seed N] [--threads N] [--set key=value]...
//   [--dashboard HOST:PORT [--dashboard-token-file F] [--dashboard-keep]] [--mpi-timeout S]`,
// also as `mpirun -np N cohort simulate ...` (simulate_mpi.h)
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "cohort/runner/runner.h"
#include "commands.h"
#include "common.h"
#include "live_dashboard.h"
#include "reproducible.h"
#include "simulate_mpi.h"

namespace cohort::cli {

namespace {

struct SimulateArgs {
  ConfigArgs cfg;
  std::string out = "runs/latest";
  bool quiet = false;
  bool save_partition = false;
  DashboardArgs dashboard;
  bool dashboard_keep = false;
  double mpi_timeout_s = 300.0;
};

void run_simulate(const SimulateArgs& a) {
  Result<SimulationConfig> cfg = load_run_config(a.cfg);
  // Strict reproducibility pins kernels (and may re-execute this process): on every rank, before
  // MPI starts.
  if (cfg.ok()) {
    if (Status r = apply_reproducibility(cfg->run); !r.ok()) cfg = r;
  }
  MpiRun mpi;  // under mpirun: ranks 1..N-1 serve, rank 0 runs the simulation
  if (MpiRun::launched_size() > 1) {
    Status s = mpi.init(a.mpi_timeout_s);
    if (!s.ok()) return fail(s);
  }
  if (mpi.is_worker()) return set_exit_code(mpi.serve(cfg));
  if (!cfg.ok()) return fail(cfg.error());
  if (!cfg->strategies.empty()) {
    // Checked before the data is loaded; run_simulation would refuse it too.
    return fail(Status::invalid_argument(
        a.cfg.config + ": strategies: lists " + std::to_string(cfg->strategies.size()) +
        " strategies; run them with `cohort compare " + a.cfg.config +
        " --out DIR`, or give one strategy: section to cohort simulate"));
  }
  if (a.dashboard_keep && a.dashboard.address.empty()) {
    return fail(Status::invalid_argument("--dashboard-keep needs --dashboard HOST:PORT"));
  }
  Result<Scenario> scenario = build_scenario(*cfg);
  if (!scenario.ok()) return fail(scenario.error());
  Result<std::unique_ptr<LiveDashboard>> dash = start_dashboard(a.dashboard);
  if (!dash.ok()) return fail(dash.error());

  RunOutputs out;
  if (*dash) out.sinks.push_back((*dash)->sink());
  out.out_dir = a.out;
  out.progress = !a.quiet;
  out.save_partition = a.save_partition;
  out.stop = InterruptFlag::flag();
  if (mpi.active()) {
    Result<std::shared_ptr<sim::RemoteTraining>> remote = mpi.start(*cfg, *scenario);
    if (!remote.ok()) return fail(remote.error());
    out.remote_training = *remote;
  }
  InterruptFlag::install();
  Result<sim::SimSummary> s = run_simulation(*cfg, *scenario, out);
  InterruptFlag::restore();
  if (!s.ok()) return fail(cfg->source.explain(s.error()));
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
  if (Status m = mpi.finish(out.out_dir); !m.ok()) return fail(m);
  if (*dash && a.dashboard_keep && !InterruptFlag::raised()) {
    std::printf("dashboard stays up at %s until Ctrl-C\n", (*dash)->url().c_str());
    std::fflush(stdout);
    InterruptFlag::install();
    while (!InterruptFlag::raised()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    InterruptFlag::restore();
    return;  // the run itself completed: exit 0
  }
  if (InterruptFlag::raised()) {
    std::printf("(stopped early by SIGINT)\n");
    set_exit_code(kExitInterrupted);
  } else if (s->stalled) {
    std::fprintf(stderr,
                 "cohort: error: the run stalled at virtual time %.1f s after %lld commits: no "
                 "task was in flight and the strategy dispatched none (are enough clients "
                 "online for it? see clients.availability and the strategy's min_clients)\n",
                 s->virtual_time_s, static_cast<long long>(s->rounds));
    set_exit_code(kExitStalled);
  }
}

}  // namespace

void add_simulate_command(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  CLI::App* cmd = app.add_subcommand("simulate", "Run a federated training in the simulator");
  args->cfg.add_options(cmd);
  cmd->add_option("--out", args->out, "Output directory (metrics.jsonl, summary.json, ...)")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", args->quiet, "No progress line");
  cmd->add_flag("--save-partition", args->save_partition,
                "Also write partition.json (client -> example indices)");
  args->dashboard.add_options(cmd);
  cmd->add_flag("--dashboard-keep", args->dashboard_keep,
                "Keep serving the dashboard after the run until Ctrl-C");
  cmd->add_option("--mpi-timeout", args->mpi_timeout_s,
                  "Under mpirun: seconds a worker rank may stay silent (set-up, a task, the "
                  "stop) before the run fails naming it")
      ->capture_default_str();
  cmd->callback([args] {
    run_simulate(*args);
  });
}

}  // namespace cohort::cli
