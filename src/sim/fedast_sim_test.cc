// Several models at once in the simulator (MultiTrainer + FedAST): a task moves only its model
// (bytes by hand), each model's evaluation and target are in the stream and the summary, and
// runs are deterministic across thread counts.
#include <gtest/gtest.h>

#include "cohort/sim/simulator.h"
#include "cohort/strategy/fedast.h"
#include "cohort/strategy/fedbuff.h"
#include "cohort/trainer/multi_trainer.h"
#include "testing/fake_trainer.h"

namespace cohort::sim {
namespace {

using testing::line_dataset;
using testing::quadratic_factory;

// Models "a" (2 values) and "b" (1 value), quadratic: one step at lr 1 lands on the target.
TrainerFactory two_models() {
  return *MultiTrainer::factory({{"a", quadratic_factory(2)}, {"b", quadratic_factory(1)}});
}

SimOptions options(int64_t rounds, size_t threads = 2) {
  SimOptions o;
  o.admission.warmup_bound = "none";
  o.run.rounds = rounds;
  o.run.threads = threads;
  o.run.seed = 3;
  o.run.target_accuracy = 0.9;
  o.model_targets = {{"b", 0.95}};
  o.training.lr = 1.0;
  o.training.local_steps = 1;
  return o;
}

TEST(FedAstSimTest, TasksMoveTheirModelOnlyAndEachModelIsEvaluated) {
  auto d = line_dataset(4);
  std::vector<SimClient> clients(1);
  clients[0].shard = Shard{d, {3}};  // target (3, 6): a -> (3, 6), b -> (3)
  clients[0].device = DeviceProfile{1.0, 1e6, 1e6, 0.0};
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(options(4), two_models(), clients, Shard{d, {3}}, &hub);
  FedAst fedast({.buffer_size = 1, .adaptive = false});
  auto r = sim.run(fedast);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // One client takes turns: a, b, a, b. Each task moves 8 (a) or 4 (b) bytes each way.
  EXPECT_EQ(r->bytes_up, 8 + 4 + 8 + 4);
  EXPECT_EQ(r->bytes_down, 8 + 4 + 8 + 4);
  EXPECT_EQ(std::vector<float>(sim.final_model()->flat().begin(), sim.final_model()->flat().end()),
            (std::vector<float>{3.0f, 6.0f, 3.0f}));
  ASSERT_EQ(r->models.size(), 2u);
  EXPECT_EQ(r->models[0].name, "a");
  EXPECT_EQ(r->models[0].target_accuracy, 0.9);  // the run's
  EXPECT_EQ(r->models[1].target_accuracy, 0.95);  // its own
  EXPECT_EQ(r->models[0].final_accuracy, 1.0);
  // a reached its target after the first commit (virtual time of that evaluation), b after
  // the second; the run's time to target is b's.
  ASSERT_TRUE(r->models[0].time_to_target && r->models[1].time_to_target);
  EXPECT_LT(*r->models[0].time_to_target, *r->models[1].time_to_target);
  EXPECT_EQ(r->time_to_target, r->models[1].time_to_target);
  int evals = 0;
  for (const Json& e : mem->events) {
    if (e["event"] != "eval") continue;
    ++evals;
    ASSERT_TRUE(e.contains("models")) << e.dump();
    EXPECT_TRUE(e["models"].contains("a"));
    EXPECT_TRUE(e["models"]["b"].contains("reached_target"));
  }
  EXPECT_EQ(evals, 5);  // the initial model and each commit
  EXPECT_TRUE(r->to_json()["models"]["b"]["time_to_target"].is_number());
}

TEST(FedAstSimTest, DeterministicAcrossThreadCounts) {
  auto d = line_dataset(40);
  std::vector<SimClient> clients;
  for (int k = 0; k < 8; ++k) {
    SimClient c;
    c.shard = Shard{d, {k * 5, k * 5 + 1, k * 5 + 2}};
    c.device = DeviceProfile{1.0 + k % 3, 1e5, 1e5, 0.01};
    clients.push_back(std::move(c));
  }
  std::string hash;
  for (size_t threads : {1, 3}) {
    SimOptions o = options(20, threads);
    o.training.lr = 0.3;
    Simulator sim(o, two_models(), clients, Shard::all(d), nullptr);
    FedAst fedast({.buffer_size = 2, .adaptive = true, .window = 3, .realloc_every = 4});
    auto r = sim.run(fedast);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    if (hash.empty()) hash = r->model_hash;
    EXPECT_EQ(r->model_hash, hash) << threads;
  }
}

TEST(FedAstSimTest, ATaskOfOneModelRefusesCompression) {
  auto d = line_dataset(4);
  std::vector<SimClient> clients(1);
  clients[0].shard = Shard{d, {3}};
  clients[0].device = DeviceProfile{1.0, 1e6, 1e6, 0.0};
  SimOptions o = options(2);
  o.compression.uplink = "int8";
  Simulator sim(o, two_models(), clients, Shard{d, {3}}, nullptr);
  FedAst fedast({});
  auto r = sim.run(fedast);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("does not combine with compression"), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace cohort::sim
