// FedCompass end to end in the simulator with the quadratic trainer: clients of very
// different speeds, determinism across thread counts, fewer global versions than FedAsync
// over the same virtual time, and convergence.
#include <cmath>

#include <gtest/gtest.h>

#include "cohort/sim/simulator.h"
#include "cohort/strategy/fedasync.h"
#include "cohort/strategy/fedcompass.h"
#include "testing/fake_trainer.h"

namespace cohort::sim {
namespace {

using testing::quadratic_factory;

constexpr int kClients = 6;
// Local steps per virtual second: a 20x spread.
constexpr double kSpeeds[kClients] = {400, 300, 200, 60, 40, 20};

// Client k holds 4 copies of its target (4, -4) + (k - 2.5, 2.5 - k) / 20; the test set is
// every example, so the optimum of the average objective is (4, -4), far from the initial
// model (about 0). The targets differ only a little: asynchronous methods without step
// normalisation drift towards the fast clients' targets, which is not what this checks.
std::shared_ptr<const Dataset> targets_dataset() {
  auto d = std::make_shared<Dataset>();
  d->name = "targets";
  d->sample_shape = {2};
  d->num_classes = 1;
  for (int k = 0; k < kClients; ++k) {
    for (int i = 0; i < 4; ++i) {
      d->features.push_back(4.0f + static_cast<float>(k - 2.5) / 20);
      d->features.push_back(-4.0f + static_cast<float>(2.5 - k) / 20);
      d->labels.push_back(0);
    }
  }
  return d;
}

std::vector<SimClient> clients(std::shared_ptr<const Dataset> d) {
  std::vector<SimClient> out;
  for (int k = 0; k < kClients; ++k) {
    SimClient c;
    c.shard.data = d;
    for (int i = 0; i < 4; ++i) c.shard.indices.push_back(4 * k + i);
    c.device = DeviceProfile{kSpeeds[k], 1e9, 1e9, 0.01};
    out.push_back(std::move(c));
  }
  return out;
}

struct Outcome {
  SimSummary summary;
  std::vector<Json> events;
};

Outcome simulate(Strategy& strategy, size_t threads, double virtual_time = 30.0,
                 ClientDynamics dynamics = {}) {
  auto d = targets_dataset();
  SimOptions o;
  o.admission.warmup_bound = "none";  // toy targets far from the tiny initial model
  o.run.max_virtual_time_s = virtual_time;
  o.run.threads = threads;
  o.run.seed = 11;
  o.training.lr = 0.02;
  o.training.local_steps = 50;  // FedAsync's tasks; FedCompass picks its own Q
  o.run.eval_every = 1000000;   // initial and final evaluations only
  o.dynamics = dynamics;
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(o, quadratic_factory(2), clients(d), Shard::all(d), &hub);
  auto r = sim.run(strategy);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return {r.ok() ? *r : SimSummary{}, mem->events};
}

double initial_loss(const Outcome& r) {
  for (const Json& e : r.events) {
    if (e["event"] == "eval") return e["loss"].get<double>();
  }
  return -1;
}

TEST(FedCompassSimTest, DeterministicFewerVersionsThanFedAsyncAndConverges) {
  FedCompass a({}), b({});
  Outcome one = simulate(a, 1);
  Outcome two = simulate(b, 2);
  EXPECT_EQ(one.summary.model_hash, two.summary.model_hash);
  EXPECT_EQ(one.summary.rounds, two.summary.rounds);
  EXPECT_EQ(one.summary.updates, two.summary.updates);

  FedAsync fedasync({.async = {}, .alpha = 0.9, .mixing = "gradient", .weighting = "uniform"});
  Outcome async = simulate(fedasync, 2);
  // FedAsync commits once per arrival; FedCompass once per arrival group (after each
  // client's first, single, update).
  EXPECT_GT(one.summary.updates, 2 * one.summary.rounds);
  EXPECT_GT(async.summary.rounds, 2 * one.summary.rounds);
  EXPECT_EQ(async.summary.rounds, async.summary.updates);

  // Groups of several clients formed, and their members arrived nearly in step.
  int64_t multi = 0, groups = 0;
  for (const Json& e : one.events) {
    if (e["event"] != "group") continue;
    ++groups;
    if (e["size"].get<int64_t>() >= 2) ++multi;
  }
  EXPECT_GT(groups, 0);
  EXPECT_GT(multi, groups / 2);

  // Converges: the loss of the average objective falls by orders of magnitude.
  const double start = initial_loss(one);
  ASSERT_GT(start, 0);
  EXPECT_LT(one.summary.final_loss, 1e-3 * start)
      << "start " << start << " final " << one.summary.final_loss;
}

TEST(FedCompassSimTest, JitterDropoutsAndOfflineClientsDoNotStallIt) {
  // Jitter makes members late, dropouts and offline periods lose tasks, and a client that
  // waits for its group may go offline: groups must still close and every client come back.
  ClientDynamics dyn;
  dyn.jitter = 0.3;
  dyn.dropout = 0.1;
  dyn.availability.mean_online_s = 5.0;
  dyn.availability.mean_offline_s = 1.0;
  FedCompass a({}), b({});
  Outcome one = simulate(a, 1, 60.0, dyn);
  Outcome two = simulate(b, 2, 60.0, dyn);
  EXPECT_EQ(one.summary.model_hash, two.summary.model_hash);
  EXPECT_FALSE(one.summary.stalled);
  EXPECT_GT(one.summary.lost, 10);
  EXPECT_GT(one.summary.rounds, 50);
  int64_t late = 0, timer_trigger = 0;
  for (const Json& e : one.events) {
    if (e["event"] == "late") ++late;
    if (e["event"] == "group" && e["trigger"] == "timer") ++timer_trigger;
  }
  EXPECT_GT(late, 0);
  EXPECT_GT(timer_trigger, 0);
  // No client is stranded (waiting for a group that never closes, or never re-assigned).
  bool found = false;
  for (const Json& e : one.events) {
    if (e["event"] != "clients") continue;
    found = true;
    ASSERT_EQ(e["clients"].size(), static_cast<size_t>(kClients));
    for (const Json& c : e["clients"]) {
      EXPECT_GE(c["updates_accepted"].get<int64_t>(), 5) << c.dump();
    }
  }
  EXPECT_TRUE(found);
  EXPECT_LT(one.summary.final_loss, 1e-3 * initial_loss(one));
}

}  // namespace
}  // namespace cohort::sim
