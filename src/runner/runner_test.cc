// End-to-end: YAML -> scenario -> simulation with real LibTorch training -> output files.
#include "cohort/runner/runner.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cohort/data/idx.h"
#include "cohort/data/partition.h"
#include "cohort/data/shards.h"
#include "cohort/runtime/model_file.h"

namespace cohort {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("cohort_runner_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<Json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(Json::parse(line));
  return out;
}

const char* kSynthetic = R"(
data:
  dataset: synthetic
  partition: dirichlet
  alpha: 0.5
  synthetic: {num_examples: 2000, test_examples: 500, dim: 10, classes: 4, separation: 3.0}
clients:
  count: 8
  speed: {distribution: exponential, mean: 50}
model: {name: mlp, hidden: [32, 32]}
training: {lr: 0.1, batch_size: 16, local_epochs: 1}
strategy: {name: fedavg, fraction: 0.5, min_clients: 2}
run: {rounds: 6, seed: 3, threads: 2, target_accuracy: 0.6}
)";

TEST(RunnerTest, SyntheticEndToEndLearnsAndWritesOutputs) {
  auto cfg = parse_simulation_config(kSynthetic, "synthetic.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok()) << scenario.error().to_string();
  EXPECT_EQ(scenario->clients->size(), 8u);
  RunOutputs out;
  out.out_dir = temp_dir("synthetic");
  out.progress = false;
  out.save_partition = true;
  auto s = run_simulation(*cfg, *scenario, out);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->rounds, 6);
  EXPECT_GT(s->final_accuracy, 0.6);  // chance is 0.25
  ASSERT_TRUE(s->time_to_target.has_value());
  EXPECT_GT(*s->time_to_target, 0.0);

  auto events = read_jsonl(out.out_dir + "/metrics.jsonl");
  int evals = 0;
  for (const auto& e : events) {
    if (e["event"] != "eval") continue;
    ++evals;
    for (const char* key : {"strategy", "round", "updates", "virtual_time_s", "wall_time_s",
                            "accuracy", "loss", "bytes_up", "bytes_down"}) {
      EXPECT_TRUE(e.contains(key)) << key;
    }
  }
  EXPECT_EQ(evals, 7);  // version 0 and each of 6 rounds
  std::ifstream sf(out.out_dir + "/summary.json");
  Json summary = Json::parse(sf);
  for (const char* key :
       {"strategy", "seed", "final_accuracy", "best_accuracy", "virtual_time_s", "wall_time_s",
        "rounds", "updates", "bytes_up", "bytes_down", "model_hash", "time_to_target"}) {
    EXPECT_TRUE(summary.contains(key)) << key;
  }
  EXPECT_EQ(summary["model_hash"], s->model_hash);
  std::ifstream pf(out.out_dir + "/partition.json");
  Json partition = Json::parse(pf);
  size_t total = 0;
  ASSERT_EQ(partition["clients"].size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    const auto& c = partition["clients"][i];
    total += c.size();
    EXPECT_EQ(c.get<std::vector<int64_t>>(), (*scenario->clients)[i].shard.indices);
  }
  EXPECT_EQ(total, 2000u);
  EXPECT_TRUE(fs::exists(out.out_dir + "/config.json"));
  // clients.json (streamed one client per line): sizes, label counts and devices as drawn.
  std::ifstream cf(out.out_dir + "/clients.json");
  const Json clients = Json::parse(cf);
  ASSERT_EQ(clients.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    const sim::SimClient& c = (*scenario->clients)[i];
    EXPECT_EQ(clients[i]["id"], i);
    EXPECT_EQ(clients[i]["examples"], c.shard.size());
    std::vector<int64_t> counts(4, 0);
    for (int64_t idx : c.shard.indices) ++counts[static_cast<size_t>(scenario->train->labels[idx])];
    EXPECT_EQ(clients[i]["label_counts"].get<std::vector<int64_t>>(), counts);
    EXPECT_EQ(clients[i]["speed_steps_per_s"].get<double>(), c.device.speed);
    EXPECT_DOUBLE_EQ(clients[i]["latency_ms"].get<double>(), c.device.latency_s * 1000.0);
  }
  fs::remove_all(out.out_dir);
}

TEST(RunnerTest, ASavedPartitionReadBackReproducesTheRun) {
  auto cfg = parse_simulation_config(kSynthetic, "synthetic.yaml", {"run.rounds=3"});
  ASSERT_TRUE(cfg.ok());
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok());
  RunOutputs out;
  out.out_dir = temp_dir("saved_partition");
  out.progress = false;
  out.save_partition = true;
  auto first = run_simulation(*cfg, *scenario, out);
  ASSERT_TRUE(first.ok()) << first.error().to_string();

  // The same split from the file: the same model, bit for bit.
  auto again = parse_simulation_config(kSynthetic, "synthetic.yaml",
                                       {"run.rounds=3", "data.partition=file",
                                        "data.partition_file=" + out.out_dir + "/partition.json"});
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  auto from_file = build_scenario(*again);
  ASSERT_TRUE(from_file.ok()) << from_file.error().to_string();
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ((*from_file->clients)[i].shard.indices, (*scenario->clients)[i].shard.indices);
  }
  RunOutputs quiet;
  quiet.progress = false;
  auto second = run_simulation(*again, *from_file, quiet);
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  EXPECT_EQ(second->model_hash, first->model_hash);

  // A file for another client count is refused, naming the file and both counts.
  auto nine = parse_simulation_config(kSynthetic, "synthetic.yaml",
                                      {"clients.count=9", "data.partition=file",
                                       "data.partition_file=" + out.out_dir + "/partition.json"});
  ASSERT_TRUE(nine.ok());
  auto bad = build_scenario(*nine);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("holds 8 clients, but clients.count is 9"),
            std::string::npos)
      << bad.error().message();
  fs::remove_all(out.out_dir);
}

TEST(RunnerTest, TheFinalModelFileStartsAnotherRun) {
  auto cfg = parse_simulation_config(kSynthetic, "synthetic.yaml", {"run.rounds=3"});
  ASSERT_TRUE(cfg.ok());
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok());
  RunOutputs out;
  out.out_dir = temp_dir("model_file");
  out.progress = false;
  auto first = run_simulation(*cfg, *scenario, out);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  const std::string model = out.out_dir + "/model.cohort";
  auto saved = read_model_file(model);
  ASSERT_TRUE(saved.ok()) << saved.error().to_string();
  EXPECT_EQ(saved->hash_hex(), first->model_hash);

  // A run from it starts where the first ended: its version-0 evaluation is the first run's
  // final one.
  auto next = parse_simulation_config(kSynthetic, "synthetic.yaml",
                                      {"run.rounds=2", "model.init=" + model});
  ASSERT_TRUE(next.ok()) << next.error().to_string();
  RunOutputs out2;
  out2.out_dir = temp_dir("model_file_next");
  out2.progress = false;
  auto second = run_simulation(*next, *build_scenario(*next), out2);
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  const auto events = read_jsonl(out2.out_dir + "/metrics.jsonl");
  const auto first_eval = std::find_if(events.begin(), events.end(), [](const Json& e) {
    return e["event"] == "eval";
  });
  ASSERT_NE(first_eval, events.end());
  EXPECT_EQ((*first_eval)["round"], 0);
  EXPECT_EQ((*first_eval)["accuracy"].get<double>(), first->final_accuracy);
  EXPECT_EQ((*first_eval)["loss"].get<double>(), first->final_loss);
  EXPECT_NE(second->model_hash, first->model_hash);  // and it trained on

  // Another model's file is refused before anything runs, naming the key and the difference.
  auto other = parse_simulation_config(kSynthetic, "synthetic.yaml",
                                       {"model.hidden=[16, 16]", "model.init=" + model});
  ASSERT_TRUE(other.ok());
  RunOutputs quiet;
  quiet.progress = false;
  auto refused = run_simulation(*other, *build_scenario(*other), quiet);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("model.init: " + model +
                                           ": not a model of this configuration"),
            std::string::npos)
      << refused.error().message();
  fs::remove_all(out.out_dir);
  fs::remove_all(out2.out_dir);
}

TEST(RunnerTest, OnlyClientsThatTookPartAreListed) {
  // 2,000 clients, 20 sampled per round for 3 rounds: the statistics list the clients that
  // got a task (at most 60) and count the others as idle, in the summary and the event.
  auto cfg = parse_simulation_config(
      kSynthetic, "synthetic.yaml",
      {"clients.count=2000", "strategy.fraction=0.01", "strategy.min_clients=20", "run.rounds=3",
       "data.partition=iid"});
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok()) << scenario.error().to_string();
  auto sink = std::make_shared<MemorySink>();
  RunOutputs out;
  out.progress = false;
  out.sinks.push_back(sink);
  auto s = run_simulation(*cfg, *scenario, out);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  int64_t tasks = 0;
  ClientId last = -1;
  for (const ClientStats& c : s->client_stats) {
    EXPECT_GT(c.tasks, 0) << "client " << c.id << " took no part but is listed";
    EXPECT_GT(c.id, last) << "ascending ids";
    last = c.id;
    tasks += c.tasks;
  }
  EXPECT_EQ(tasks, 60);  // 3 rounds x 20
  EXPECT_GE(s->client_stats.size(), 20u);
  EXPECT_LE(s->client_stats.size(), 60u);
  EXPECT_EQ(s->idle_clients + static_cast<int64_t>(s->client_stats.size()), 2000);
  Json event;
  for (const Json& e : sink->events) {
    if (e["event"] == "clients") event = e;
  }
  EXPECT_EQ(event["idle_clients"], s->idle_clients);
  EXPECT_EQ(event["clients"], s->client_stats_json());
}

TEST(RunnerTest, SameSeedSameModelWhateverTheThreadCount) {
  std::string hash;
  for (const char* threads : {"run.threads=1", "run.threads=2", "run.threads=3"}) {
    auto cfg = parse_simulation_config(kSynthetic, "synthetic.yaml", {threads, "run.rounds=3"});
    ASSERT_TRUE(cfg.ok());
    auto scenario = build_scenario(*cfg);
    ASSERT_TRUE(scenario.ok());
    RunOutputs out;
    out.progress = false;
    auto s = run_simulation(*cfg, *scenario, out);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    if (hash.empty())
      hash = s->model_hash;
    else
      EXPECT_EQ(s->model_hash, hash) << threads;
  }
}

TEST(RunnerTest, FashionMnistShortRunLearns) {
  if (!fs::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }
  auto cfg = parse_simulation_config(R"(
data: {dataset: fashion-mnist, train_limit: 6000, test_limit: 1000, partition: dirichlet, alpha: 0.5}
clients: {count: 10, speed: {distribution: normal, mean: 100, std: 30, min: 10}}
model: {name: mlp}
training: {lr: 0.05, batch_size: 32, local_epochs: 2}
strategy: {name: fedavg, fraction: 0.5, min_clients: 2}
run: {rounds: 10, seed: 1, threads: 2}
)",
                                     "fmnist.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok()) << scenario.error().to_string();
  RunOutputs out;
  out.progress = false;
  auto s = run_simulation(*cfg, *scenario, out);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_GT(s->best_accuracy, 0.6);  // chance is 0.1
}

TEST(RunnerTest, ConfigAndDataErrorsAreClear) {
  auto bad = parse_simulation_config("strategy: {name: fedavg, fraction: 3}", "x.yaml");
  ASSERT_TRUE(bad.ok());  // strategy params are checked when the strategy is built
  auto scenario_cfg = parse_simulation_config(kSynthetic, "s.yaml", {"strategy.fraction=3"});
  ASSERT_TRUE(scenario_cfg.ok());
  auto scenario = build_scenario(*scenario_cfg);
  ASSERT_TRUE(scenario.ok());
  RunOutputs out;
  out.progress = false;
  auto s = run_simulation(*scenario_cfg, *scenario, out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "strategy.fraction: must be in (0, 1], got 3");

  auto missing =
      parse_simulation_config("data: {dataset: fashion-mnist, path: /nonexistent}", "m.yaml");
  ASSERT_TRUE(missing.ok());
  auto sc = build_scenario(*missing);
  ASSERT_FALSE(sc.ok());
  EXPECT_EQ(sc.error().code(), StatusCode::kNotFound);
  EXPECT_NE(sc.error().message().find("/nonexistent"), std::string::npos);
}

TEST(RunnerTest, DeviceTraceAvailabilityAndClientStats) {
  const std::string dir = temp_dir("trace");
  fs::create_directories(dir);
  const std::string trace = dir + "/devices.csv";
  std::ofstream(trace) << "client,steps_per_s,up_mbps,down_mbps,latency_ms\n"
                          "3,40,5,20,10\n1,80,10,50,5\n0,20,2,10,30\n2,60,8,40,0\n"
                          "5,100,20,100,1\n4,50,4,20,20\n";
  // No count: the population is the trace's 6 clients.
  auto cfg = parse_simulation_config(kSynthetic, "synthetic.yaml",
                                     {"clients={trace: " + trace +
                                          ", dropout: 0.1, jitter: 0.2, "
                                          "availability: {mean_online_s: 20, mean_offline_s: 5}}",
                                      "strategy.round_deadline_s=5", "run.rounds=8"});
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok()) << scenario.error().to_string();
  ASSERT_EQ(scenario->clients->size(), 6u);
  EXPECT_EQ((*scenario->clients)[0].device.speed, 20.0);
  EXPECT_EQ((*scenario->clients)[3].device.latency_s, 0.01);
  RunOutputs out;
  out.out_dir = dir + "/run";
  out.progress = false;
  auto s = run_simulation(*cfg, *scenario, out);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->rounds, 8);

  std::ifstream cs(out.out_dir + "/client_stats.json");
  const Json stats = Json::parse(cs);
  ASSERT_EQ(stats.size(), 6u);
  EXPECT_EQ(stats, s->client_stats_json());
  int64_t tasks = 0;
  for (const auto& c : stats) tasks += c["tasks"].get<int64_t>();
  EXPECT_GT(tasks, 8);
  Json clients_event;
  for (const auto& e : read_jsonl(out.out_dir + "/metrics.jsonl")) {
    if (e["event"] == "clients") clients_event = e;
  }
  EXPECT_EQ(clients_event["clients"], stats);
  std::ifstream cf(out.out_dir + "/config.json");
  const Json config = Json::parse(cf);
  EXPECT_EQ(config["clients"]["trace"], trace);
  EXPECT_EQ(config["clients"]["count"], 0);

  // A malformed trace fails build_scenario naming the file and line.
  std::ofstream(trace) << "client,steps_per_s,up_mbps,down_mbps,latency_ms\n0,20,2,10,30\n"
                          "1,fast,1,1,1\n";
  auto bad = build_scenario(*cfg);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), trace + ":3: steps_per_s: expected a finite number, got 'fast'");
  fs::remove_all(dir);
}

TEST(RunnerTest, HoldoutSplitFeedsFederatedEvaluation) {
  auto cfg = parse_simulation_config(kSynthetic, "synthetic.yaml",
                                     {"data.holdout_fraction=0.25", "run.rounds=3"});
  ASSERT_TRUE(cfg.ok()) << cfg.error().to_string();
  auto scenario = build_scenario(*cfg);
  ASSERT_TRUE(scenario.ok()) << scenario.error().to_string();
  // The reference: the partition itself, with the seed build_scenario derives for it.
  PartitionOptions po = cfg->data.partition;
  po.seed = Rng::mix_seed(cfg->run.seed, "partition");
  auto parts = partition_dataset(scenario->train->labels, scenario->train->num_classes, 8, po);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(scenario->clients->size(), 8u);
  for (size_t i = 0; i < scenario->clients->size(); ++i) {
    const auto& c = (*scenario->clients)[i];
    const auto& all = (*parts)[i];
    // Train and held-out splits are disjoint, cover the client's examples, and hold out
    // floor(0.25 n).
    std::vector<int64_t> merged = c.shard.indices;
    merged.insert(merged.end(), c.holdout.indices.begin(), c.holdout.indices.end());
    std::sort(merged.begin(), merged.end());
    EXPECT_EQ(merged, all);
    EXPECT_EQ(c.holdout.size(), static_cast<int64_t>(all.size() / 4));
  }
  auto again = build_scenario(*cfg);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again->clients)[3].holdout.indices, (*scenario->clients)[3].holdout.indices);

  MemorySink* mem = nullptr;
  auto sink = std::make_shared<MemorySink>();
  mem = sink.get();
  RunOutputs out;
  out.progress = false;
  out.sinks.push_back(sink);
  auto s = run_simulation(*cfg, *scenario, out);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  int fed = 0;
  for (const auto& e : mem->events) {
    if (e["event"] != "eval") continue;
    ASSERT_TRUE(e.contains("fed_accuracy"));
    EXPECT_LE(e["fed_worst10_accuracy"].get<double>(), e["fed_accuracy"].get<double>() + 1e-12);
    EXPECT_EQ(e["fed_clients"], 8);
    ++fed;
  }
  EXPECT_EQ(fed, 4);
  ASSERT_TRUE(s->final_fed_accuracy.has_value());
  EXPECT_GT(*s->final_fed_accuracy, 0.4);  // chance is 0.25
}

}  // namespace
}  // namespace cohort
