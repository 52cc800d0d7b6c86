// Runner: turns a SimulationConfig into a running simulation and its output directory.
//
// This is the glue the CLI (`cohort simulate`, `cohort compare`), the examples and the Python
// module share: load the dataset, partition it, draw the device population, build the trainer
// factory and the strategy, run the simulator with the metrics sinks, and write the outputs
// (docs/formats.md):
//   DIR/metrics.jsonl   one JSON event per line
//   DIR/summary.json    the run's summary
//   DIR/config.json     the resolved configuration (every default filled in)
//   DIR/clients.json    per-client examples, label counts and device profile
//   DIR/client_stats.json  per-client tasks, steps, accepted/rejected/lost, availability and
//                       staleness over the run (written at the end, like summary.json)
//   DIR/partition.json  client -> training example indices (only with save_partition)
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cohort/config/config.h"
#include "cohort/sim/simulator.h"

namespace cohort {

struct Scenario {
  std::shared_ptr<const Dataset> train;
  std::shared_ptr<const Dataset> test;
  // Client i's training shard, held-out split and device; shared with every simulation of the
  // scenario. (Its partition is the union of the two splits.)
  std::shared_ptr<const std::vector<sim::SimClient>> clients;
  TrainerFactory factory;
};

// Builds every strategy of the config (its strategy: section, or each strategies: item) and
// checks that it can run with `num_clients` clients (Strategy::check_population; 0 = not known
// yet, e.g. a device trace decides), before any data is loaded. Errors name the key
// ("strategy.min_clients: must be <= the number of clients (20), got 30: no round could ever
// start"); ConfigSource::explain adds the file and the --set override.
Status check_strategies(const SimulationConfig& config, int64_t num_clients);

// Loads data, partitions it (seed derived from run.seed), draws the population (run.seed) and
// builds the trainer factory. Errors name the config key or file at fault.
Result<Scenario> build_scenario(const SimulationConfig& config);

// The trainers of `config`'s model (or of its `models:`, a MultiTrainer) for data shaped like
// `data`: the one place the simulator, `cohort serve` and `cohort join` build them. Sets no
// torch thread count (callers choose theirs).
Result<TrainerFactory> trainer_factory(const SimulationConfig& config, const Dataset& data);
// Each model's own target accuracy by label (`models[i].target_accuracy` when > 0).
std::map<std::string, double> model_targets(const SimulationConfig& config);

struct RunOutputs {
  // Output directory, created if missing; empty = write nothing to disk.
  std::string out_dir;
  // Live progress line on stderr (only drawn when stderr is a terminal).
  bool progress = true;
  bool save_partition = false;
  // Extra sinks (tests, comparisons).
  std::vector<std::shared_ptr<MetricsSink>> sinks;
  // When set to true from another thread or a signal handler, the run stops early (the
  // summary and outputs are still written).
  const std::atomic<bool>* stop = nullptr;
  // Where tasks train when not on the simulator's own pool (sim/remote_training.h; e.g. MPI
  // ranks under mpirun); null = the pool.
  std::shared_ptr<sim::RemoteTraining> remote_training;
};

// Runs config.strategy, or `strategy` when given (one built outside the registry, e.g. a
// strategy written in Python; its check_population is applied). InvalidArgument when
// config.strategies is not empty (that is run_comparison's job, runner/compare.h).
Result<sim::SimSummary> run_simulation(const SimulationConfig& config, const Scenario& scenario,
                                       const RunOutputs& outputs,
                                       std::unique_ptr<Strategy> strategy = nullptr);

// A terminal progress line fed by the metrics stream: round, virtual time, last accuracy,
// elapsed and estimated remaining wall time. Draws nothing when `enabled` is false.
std::shared_ptr<MetricsSink> make_progress_line(bool enabled);

}  // namespace cohort
