// Comparison: several strategies on one scenario (`cohort compare`).
//
// run_comparison runs every entry of SimulationConfig::strategies (or, when that list is
// empty, the single `strategy`) on the same Scenario: the same data, partition and device
// population, built once, and the same run settings and seed. Each strategy is one
// run_simulation into its own sub-directory, and the results are gathered into
// comparison.json and a self-contained HTML report (docs/formats.md):
//   DIR/config.json           the resolved configuration, with its `strategies:` list
//   DIR/<label>/...           each strategy's run directory (metrics.jsonl, summary.json, ...)
//   DIR/comparison.json       one row per strategy: time/rounds/updates/bytes to the target,
//                             final and best accuracy, totals, model hash; and the setting
//   DIR/report.html           written by write_report (report.h) from the files above
//
// Concurrency. Several strategies may run at once, each on its own simulator with a share of
// run.threads. A run's result (model hash, metrics other than wall time) depends only on the
// config and seed, never on the thread count or on what runs beside it, so the comparison is
// the same whatever `jobs` is.
//
// Thread safety: run_comparison is called from one thread; `stop` may be set from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cohort/config/config.h"
#include "cohort/core/metrics.h"
#include "cohort/runner/runner.h"
#include "cohort/sim/simulator.h"

namespace cohort {

struct CompareOptions {
  // Output directory (created if missing); empty = write nothing (no report either).
  std::string out_dir;
  // Progress on stderr: a line per finished strategy, plus a live line on a terminal.
  bool progress = true;
  // How many strategies run at once; the training threads (run.threads, 0 = all cores) are
  // split among the runs that go together (at least one each). 0 = automatic, which is
  // currently 1: one run after the other, each with every thread. Measured on 2 cores (the
  // 5-strategy examples/compare_sync.yaml), sequential took 13.8 s against 14.8 s for two at
  // a time (medians of 4); the simulator already keeps its threads busy within a run. More
  // jobs help when one run cannot use all cores (fewer clients per round than cores).
  int64_t jobs = 0;
  // When set, runs in flight stop at their next event (their outputs are still written)
  // and strategies not yet started are skipped.
  const std::atomic<bool>* stop = nullptr;
};

// One strategy's row of comparison.json.
struct ComparisonEntry {
  std::string label;
  StrategyConfig strategy;
  sim::SimSummary summary;
  int64_t threads = 0;  // training threads the run used
  // The first evaluation whose accuracy reached run.target_accuracy (nullopt if none, or
  // no target): its commit number, accepted updates and total bytes (up + down).
  std::optional<int64_t> rounds_to_target;
  std::optional<int64_t> updates_to_target;
  std::optional<int64_t> bytes_to_target;
  std::optional<int64_t> uplink_to_target;
};

struct Comparison {
  double target_accuracy = 0.0;
  // In the order of the config's list; strategies skipped after a stop are absent.
  std::vector<ComparisonEntry> entries;
  // The scenario every strategy shared (comparison.json "setting").
  Json setting;
  bool stopped_early = false;
  // The content of comparison.json.
  Json to_json() const;
};

// Runs the comparison; `scenario` must come from build_scenario(config). Writes the files
// listed above when options.out_dir is set, report.html included.
// Errors: InvalidArgument for a bad strategy (name or parameters; checked for every entry
// before any run starts, naming its path, e.g. "strategies[2].mu: must be >= 0, got -1"),
// Unavailable when the output directory cannot be written, and the first failing run's
// error, prefixed with its label.
Result<Comparison> run_comparison(const SimulationConfig& config, const Scenario& scenario,
                                  const CompareOptions& options);

// The comparison.json "setting" object: the config's data, clients, model, training and run
// sections (as in config.json) plus the scenario's actual sizes: train_examples,
// test_examples, classes.
Json comparison_setting(const SimulationConfig& config, const Scenario& scenario);

// Fills the *_to_target fields of `entry` from a run's "eval" events (the metrics stream).
void fill_target_fields(const std::vector<Json>& eval_events, double target_accuracy,
                        ComparisonEntry* entry);

}  // namespace cohort
