#include "cohort/runner/runner.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "cohort/data/idx.h"
#include "cohort/data/partition.h"
#include "cohort/data/synthetic.h"
#include "cohort/strategy/registry.h"
#include "cohort/torch/torch_trainer.h"

namespace cohort {

namespace {

Result<std::shared_ptr<const Dataset>> load_split(const DataConfig& d, const std::string& split,
                                                  uint64_t seed) {
  if (d.dataset == "fashion-mnist") {
    const int64_t limit = split == "train" ? d.train_limit : d.test_limit;
    COHORT_ASSIGN_OR_RETURN(Dataset ds, load_fashion_mnist(d.path, split, limit));
    return std::make_shared<const Dataset>(std::move(ds));
  }
  if (d.dataset == "synthetic") {
    SyntheticOptions o = d.synthetic;
    o.seed = Rng::mix_seed(seed, "synthetic");
    if (split == "test") o.num_examples = d.synthetic_test_examples;
    COHORT_ASSIGN_OR_RETURN(Dataset ds, make_synthetic(o, split == "train" ? 0 : 1));
    return std::make_shared<const Dataset>(std::move(ds));
  }
  return Status::invalid_argument("data.dataset: unknown value '" + d.dataset +
                                  "' (known: fashion-mnist, synthetic)");
}

// Splits one client's examples into training and held-out indices (both sorted): a seeded
// shuffle, the first floor(fraction * n) held out, at least one example kept for training.
void split_holdout(const std::vector<int64_t>& all, double fraction, Rng rng,
                   std::vector<int64_t>* train, std::vector<int64_t>* holdout) {
  const auto n = static_cast<int64_t>(all.size());
  int64_t k = static_cast<int64_t>(std::floor(fraction * static_cast<double>(n)));
  k = std::clamp<int64_t>(k, 0, std::max<int64_t>(0, n - 1));
  if (k == 0) {
    *train = all;
    holdout->clear();
    return;
  }
  std::vector<int64_t> shuffled = all;
  rng.shuffle(shuffled);
  holdout->assign(shuffled.begin(), shuffled.begin() + k);
  train->assign(shuffled.begin() + k, shuffled.end());
  std::sort(holdout->begin(), holdout->end());
  std::sort(train->begin(), train->end());
}

Json clients_json(const Scenario& s) {
  Json arr = Json::array();
  for (size_t i = 0; i < s.clients.size(); ++i) {
    const auto& c = s.clients[i];
    std::vector<int64_t> counts(static_cast<size_t>(s.train->num_classes), 0);
    for (int64_t idx : c.shard.indices) counts[static_cast<size_t>(s.train->labels[idx])]++;
    arr.push_back({{"id", i},
                   {"examples", c.shard.size()},
                   {"holdout_examples", c.holdout.size()},
                   {"label_counts", counts},
                   {"speed_steps_per_s", c.device.speed},
                   {"up_mbps", c.device.up_bytes_per_s / 125000.0},
                   {"down_mbps", c.device.down_bytes_per_s / 125000.0},
                   {"latency_ms", c.device.latency_s * 1000.0}});
  }
  return arr;
}

}  // namespace

Result<Scenario> build_scenario(const SimulationConfig& config) {
  Scenario s;
  const uint64_t seed = config.run.seed;
  COHORT_ASSIGN_OR_RETURN(s.train, load_split(config.data, "train", seed));
  COHORT_ASSIGN_OR_RETURN(s.test, load_split(config.data, "test", seed));

  // The population first: with a device trace and clients.count 0, it fixes the client count.
  COHORT_ASSIGN_OR_RETURN(std::vector<sim::DeviceProfile> devices,
                          sim::draw_population(config.clients, seed));
  PartitionOptions po = config.data.partition;
  po.seed = Rng::mix_seed(seed, "partition");
  COHORT_ASSIGN_OR_RETURN(s.partition, partition_dataset(s.train->labels, s.train->num_classes,
                                                         static_cast<int64_t>(devices.size()), po));
  for (size_t i = 0; i < s.partition.size(); ++i) {
    sim::SimClient c;
    c.shard.data = s.train;
    c.holdout.data = s.train;
    split_holdout(s.partition[i], config.data.holdout_fraction,
                  Rng::derive(seed, "holdout", static_cast<uint64_t>(i)), &c.shard.indices,
                  &c.holdout.indices);
    c.device = devices[i];
    s.clients.push_back(std::move(c));
  }

  libtorch::ModelSpec spec;
  spec.name = config.model.name;
  spec.hidden = config.model.hidden;
  spec.input_shape = s.train->sample_shape;
  spec.num_classes = s.train->num_classes;
  // One intra-op thread per trainer: clients train in parallel on the simulator's pool, and
  // results do not depend on the thread count.
  libtorch::set_torch_threads(1);
  COHORT_ASSIGN_OR_RETURN(s.factory, libtorch::make_trainer_factory(spec));
  return s;
}

Result<sim::SimSummary> run_simulation(const SimulationConfig& config, const Scenario& scenario,
                                       const RunOutputs& outputs) {
  if (!config.strategies.empty()) {
    return Status::invalid_argument(
        "strategies: lists " + std::to_string(config.strategies.size()) +
        " strategies, but a simulation runs one; use cohort compare (run_comparison) for a "
        "strategies: list, or a strategy: section");
  }
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy,
                          make_strategy(config.strategy.name, config.strategy.params));
  MetricsHub hub;
  for (const auto& sink : outputs.sinks) hub.add_sink(sink);
  hub.add_sink(make_progress_line(outputs.progress));
  namespace fs = std::filesystem;
  if (!outputs.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(outputs.out_dir, ec);
    if (ec) {
      return Status::unavailable("cannot create output directory '" + outputs.out_dir +
                                 "': " + ec.message());
    }
    COHORT_ASSIGN_OR_RETURN(auto jsonl, JsonlFileSink::open(outputs.out_dir + "/metrics.jsonl"));
    hub.add_sink(std::shared_ptr<MetricsSink>(std::move(jsonl)));
    COHORT_RETURN_IF_ERROR(write_json_file(outputs.out_dir + "/config.json", to_json(config)));
    COHORT_RETURN_IF_ERROR(write_json_file(outputs.out_dir + "/clients.json", clients_json(scenario)));
    if (outputs.save_partition) {
      COHORT_RETURN_IF_ERROR(write_json_file(outputs.out_dir + "/partition.json",
                                             Json{{"clients", scenario.partition}}));
    }
  }

  sim::SimOptions so;
  so.max_commits = config.run.rounds;
  so.max_virtual_time_s = config.run.max_virtual_time_s;
  so.eval_every = config.run.eval_every;
  so.eval_interval_s = config.run.eval_interval_s;
  so.target_accuracy = config.run.target_accuracy;
  so.threads = static_cast<size_t>(config.run.threads);
  so.seed = config.run.seed;
  so.training = config.training;
  so.stop_flag = outputs.stop;
  so.dynamics = config.clients.dynamics;
  sim::Simulator simulator(so, scenario.factory, scenario.clients, Shard::all(scenario.test), &hub);
  Result<sim::SimSummary> summary = simulator.run(*strategy);
  hub.flush();
  if (!summary.ok()) return summary;
  if (!outputs.out_dir.empty()) {
    COHORT_RETURN_IF_ERROR(write_json_file(outputs.out_dir + "/summary.json", summary->to_json()));
    COHORT_RETURN_IF_ERROR(
        write_json_file(outputs.out_dir + "/client_stats.json", summary->client_stats_json()));
  }
  return summary;
}

}  // namespace cohort
