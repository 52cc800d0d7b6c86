#include "cohort/runner/runner.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <span>

#include "cohort/core/format.h"
#include "cohort/data/data_config.h"
#include "cohort/data/shards.h"
#include "cohort/runtime/model_file.h"
#include "cohort/strategy/registry.h"
#include "cohort/torch/torch_trainer.h"
#include "cohort/trainer/multi_trainer.h"

namespace cohort {

namespace {

// Appends `v` as JSON numbers separated by commas (no brackets).
void append_ints(std::string& out, std::span<const int64_t> v) {
  for (size_t k = 0; k < v.size(); ++k) {
    if (k > 0) out += ',';
    out += std::to_string(v[k]);
  }
}

// DIR/clients.json, streamed one client per line (docs/formats.md).
Status write_clients_file(const std::string& path, const Scenario& s) {
  const std::vector<sim::SimClient>& clients = *s.clients;
  std::vector<int64_t> counts(static_cast<size_t>(s.train->num_classes), 0);
  return write_json_array_file(path, clients.size(), [&](size_t i, std::string& out) {
    const sim::SimClient& c = clients[i];
    std::fill(counts.begin(), counts.end(), 0);
    for (int64_t idx : c.shard.indices) counts[static_cast<size_t>(s.train->labels[idx])]++;
    out += "{\"id\":" + std::to_string(i) + ",\"examples\":" + std::to_string(c.shard.size()) +
           ",\"holdout_examples\":" + std::to_string(c.holdout.size()) + ",\"label_counts\":[";
    append_ints(out, counts);
    out += "],\"speed_steps_per_s\":" + format_number(c.device.speed) +
           ",\"up_mbps\":" + format_number(c.device.up_bytes_per_s / 125000.0) +
           ",\"down_mbps\":" + format_number(c.device.down_bytes_per_s / 125000.0) +
           ",\"latency_ms\":" + format_number(c.device.latency_s * 1000.0) + "}";
  });
}

// DIR/partition.json: each client's examples (training and held-out, ascending), one client
// per line.
Status write_partition_file(const std::string& path, const Scenario& s) {
  const std::vector<sim::SimClient>& clients = *s.clients;
  const auto element = [&](size_t i, std::string& out) {
    out += '[';
    append_ints(out, merged_indices(clients[i].shard, clients[i].holdout));
    out += ']';
  };
  return write_json_array_file(path, clients.size(), element, "{\"clients\": ", "}");
}

}  // namespace

Status check_strategies(const SimulationConfig& config, int64_t num_clients) {
  std::vector<std::pair<std::string, const StrategyConfig*>> entries;
  if (config.strategies.empty()) {
    entries.emplace_back("strategy", &config.strategy);
  } else {
    for (size_t i = 0; i < config.strategies.size(); ++i) {
      entries.emplace_back("strategies[" + std::to_string(i) + "]", &config.strategies[i]);
    }
  }
  for (const auto& [path, sc] : entries) {
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> s, make_strategy(sc->name, sc->params, path));
    if (num_clients > 0) {
      Status pop = s->check_population(static_cast<size_t>(num_clients));
      if (!pop.ok()) return Status(pop.code(), path + "." + pop.message());
    }
  }
  return Status();
}

Result<Scenario> build_scenario(const SimulationConfig& config) {
  Scenario s;
  const uint64_t seed = config.run.seed;
  COHORT_ASSIGN_OR_RETURN(s.train, load_split(config.data, "train", seed));
  COHORT_ASSIGN_OR_RETURN(s.test, load_split(config.data, "test", seed));

  // The population first: with a device trace and clients.count 0, it fixes the client count.
  COHORT_ASSIGN_OR_RETURN(std::vector<sim::DeviceProfile> devices,
                          sim::draw_population(config.clients, seed));
  // One client at a time: a million clients' set-up never holds their data twice.
  auto clients = std::make_shared<std::vector<sim::SimClient>>();
  clients->reserve(devices.size());
  COHORT_RETURN_IF_ERROR(visit_client_data(s.train, static_cast<int64_t>(devices.size()),
                                           config.data, seed, [&](size_t i, ClientData&& data) {
                                             clients->push_back(
                                                 sim::SimClient{.shard = std::move(data.train),
                                                                .holdout = std::move(data.holdout),
                                                                .device = devices[i]});
                                           }));
  s.clients = std::move(clients);

  // One intra-op thread per trainer: clients train in parallel on the simulator's pool, and
  // results do not depend on the thread count.
  libtorch::set_torch_threads(1);
  COHORT_ASSIGN_OR_RETURN(s.factory, trainer_factory(config, *s.train));
  return s;
}

Result<TrainerFactory> trainer_factory(const SimulationConfig& config, const Dataset& data) {
  auto factory_of = [&](const ModelConfig& model) {
    libtorch::ModelSpec spec;
    static_cast<ModelConfig&>(spec) = model;
    spec.input_shape = data.sample_shape;
    spec.num_classes = data.num_classes;
    return libtorch::make_trainer_factory(spec);
  };
  if (config.models.empty()) return factory_of(config.model);
  std::vector<std::pair<std::string, TrainerFactory>> models;
  for (const ModelEntry& e : config.models) {
    COHORT_ASSIGN_OR_RETURN(TrainerFactory f, factory_of(e.model));
    models.emplace_back(e.label, std::move(f));
  }
  return MultiTrainer::factory(std::move(models));
}

std::map<std::string, double> model_targets(const SimulationConfig& config) {
  std::map<std::string, double> targets;
  for (const ModelEntry& e : config.models) {
    if (e.target_accuracy > 0) targets[e.label] = e.target_accuracy;
  }
  return targets;
}

Result<sim::SimSummary> run_simulation(const SimulationConfig& config, const Scenario& scenario,
                                       const RunOutputs& outputs,
                                       std::unique_ptr<Strategy> strategy) {
  if (!config.strategies.empty()) {
    return Status::invalid_argument(
        "strategies: lists " + std::to_string(config.strategies.size()) +
        " strategies, but a simulation runs one; use cohort compare (run_comparison) for a "
        "strategies: list, or a strategy: section");
  }
  if (strategy) {
    COHORT_RETURN_IF_ERROR(strategy->check_population(scenario.clients->size()));
  } else {
    COHORT_RETURN_IF_ERROR(
        check_strategies(config, static_cast<int64_t>(scenario.clients->size())));
    COHORT_ASSIGN_OR_RETURN(strategy, make_strategy(config.strategy.name, config.strategy.params));
  }
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
    COHORT_RETURN_IF_ERROR(write_clients_file(outputs.out_dir + "/clients.json", scenario));
    if (outputs.save_partition) {
      COHORT_RETURN_IF_ERROR(write_partition_file(outputs.out_dir + "/partition.json", scenario));
    }
  }

  sim::SimOptions so;
  so.run = config.run;
  so.training = config.training;
  so.init_model = config.model.init;
  so.admission = config.admission;
  so.compression = config.compression;
  so.robust = config.robust;
  so.contribution = config.contribution;
  so.privacy = config.privacy;
  so.contribution_validation_examples = config.contribution_validation_examples;
  so.attack = config.attack;
  so.stop_flag = outputs.stop;
  so.remote_training = outputs.remote_training;
  so.dynamics = config.clients.dynamics;
  so.model_targets = model_targets(config);
  sim::Simulator simulator(so, scenario.factory, scenario.clients, Shard::all(scenario.test), &hub);
  Result<sim::SimSummary> summary = simulator.run(*strategy);
  hub.flush();
  if (!summary.ok()) return summary;
  if (!outputs.out_dir.empty()) {
    COHORT_RETURN_IF_ERROR(write_json_file(outputs.out_dir + "/summary.json", summary->to_json()));
    COHORT_RETURN_IF_ERROR(summary->write_client_stats(outputs.out_dir + "/client_stats.json"));
    if (simulator.final_model() != nullptr) {
      COHORT_RETURN_IF_ERROR(write_model_file(outputs.out_dir + "/" + kModelFile,
                                              *simulator.final_model(), strategy->name(),
                                              summary->rounds));
    }
  }
  return summary;
}

}  // namespace cohort
