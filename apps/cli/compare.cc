// `cohort compare CONFIG.yaml --out DIR [--seed N] [--threads N] [--jobs N] [--set k=v]...`
// `cohort report DIR [--out FILE]`
#include "cohort/runner/compare.h"

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "cohort/report/report.h"
#include "commands.h"
#include "common.h"
#include "reproducible.h"
#include "simulate_mpi.h"

namespace cohort::cli {

namespace {

struct CompareArgs {
  ConfigArgs cfg;
  std::string out = "runs/compare";
  int64_t jobs = 0;
  bool quiet = false;
};

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", v * 100.0);
  return buf;
}

std::string mb(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

void run_compare(const CompareArgs& a) {
  if (const int n = MpiRun::launched_size(); n > 1) {
    // N copies would run the same comparison into the same directory.
    return fail(Status::failed_precondition(
        "cohort compare does not run under mpirun (" + std::to_string(n) +
        " processes); run it in one process, or each strategy with mpirun -np N cohort simulate"));
  }
  Result<SimulationConfig> cfg = load_run_config(a.cfg);
  if (!cfg.ok()) return fail(cfg.error());
  if (Status r = apply_reproducibility(cfg->run); !r.ok()) return fail(r);
  Result<Scenario> scenario = build_scenario(*cfg);
  if (!scenario.ok()) return fail(scenario.error());

  CompareOptions opts;
  opts.out_dir = a.out;
  opts.progress = !a.quiet;
  opts.jobs = a.jobs;
  // First Ctrl-C: runs in flight stop after their current event and every output is still
  // written; strategies not started are skipped. Second: default action.
  opts.stop = InterruptFlag::flag();
  InterruptFlag::install();
  Result<Comparison> cmp = run_comparison(*cfg, *scenario, opts);
  InterruptFlag::restore();
  if (!cmp.ok()) return fail(cfg->source.explain(cmp.error()));

  const double target = cmp->target_accuracy;
  size_t width = 8;
  for (const auto& e : cmp->entries) width = std::max(width, e.label.size());
  const int w = static_cast<int>(width);
  std::string to_target = "to " + pct(target);
  std::printf("%-*s  %8s  %8s  %12s  %7s  %8s  %10s  %16s\n", w, "strategy", "final", "best",
              target > 0 ? to_target.c_str() : "", "rounds", "updates", "traffic", "model");
  for (const auto& e : cmp->entries) {
    const auto& s = e.summary;
    char ttt[32] = "";
    if (target > 0) {
      if (s.time_to_target) {
        std::snprintf(ttt, sizeof ttt, "%.1f s", *s.time_to_target);
      } else {
        std::snprintf(ttt, sizeof ttt, "never");
      }
    }
    std::printf("%-*s  %8s  %8s  %12s  %7lld  %8lld  %10s  %16s\n", w, e.label.c_str(),
                pct(s.final_accuracy).c_str(), pct(s.best_accuracy).c_str(), ttt,
                static_cast<long long>(s.rounds), static_cast<long long>(s.updates),
                mb(s.bytes_up + s.bytes_down).c_str(), s.model_hash.c_str());
  }
  std::printf("outputs in %s/ (comparison.json, report.html, one directory per strategy)\n",
              a.out.c_str());
  std::vector<std::string> stalled;
  for (const auto& e : cmp->entries) {
    if (e.summary.stalled) stalled.push_back(e.label);
  }
  if (cmp->stopped_early) {
    std::printf("(stopped early by SIGINT)\n");
    set_exit_code(kExitInterrupted);
  } else if (!stalled.empty()) {
    std::string names;
    for (const auto& n : stalled) names += (names.empty() ? "" : ", ") + n;
    std::fprintf(stderr,
                 "cohort: error: %zu run(s) stalled with no work left before their "
                 "budget: %s (see their summary.json)\n",
                 stalled.size(), names.c_str());
    set_exit_code(kExitStalled);
  }
}

struct ReportArgs {
  std::string dir;
  std::string out;
};

void run_report(const ReportArgs& a) {
  const Status s = write_report(a.dir, a.out);
  if (!s.ok()) return fail(s);
  std::printf("%s\n", a.out.empty() ? (a.dir + "/report.html").c_str() : a.out.c_str());
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Run the config's strategies: list on one scenario and write a report");
  args->cfg.add_options(cmd);
  cmd->add_option("--out", args->out,
                  "Output directory (comparison.json, report.html, DIR/<label>/...)")
      ->capture_default_str();
  cmd->add_option("--jobs", args->jobs,
                  "Strategies run at once, sharing the threads (0 = automatic: one at a time)")
      ->check(CLI::Range(int64_t{0}, int64_t{1024}))
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", args->quiet, "No progress output");
  cmd->callback([args] {
    run_compare(*args);
  });
}

void add_report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Regenerate DIR/report.html from a compare (or simulate) output directory");
  cmd->add_option("dir", args->dir, "Output directory of cohort compare or cohort simulate")
      ->required();
  cmd->add_option("--out", args->out, "Where to write the page (default DIR/report.html)");
  cmd->callback([args] {
    run_report(*args);
  });
}

}  // namespace cohort::cli
