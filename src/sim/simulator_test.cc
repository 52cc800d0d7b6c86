#include "cohort/sim/simulator.h"

#include <gtest/gtest.h>

#include "cohort/strategy/fedavg.h"
#include "sim_state.h"
#include "testing/fake_trainer.h"

namespace cohort::sim {
namespace {

using testing::line_dataset;
using testing::quadratic_factory;

std::vector<SimClient> make_clients(std::shared_ptr<const Dataset> d,
                                    const std::vector<int64_t>& sizes,
                                    const std::vector<DeviceProfile>& devices) {
  std::vector<SimClient> out;
  int64_t next = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    SimClient c;
    c.shard.data = d;
    for (int64_t i = 0; i < sizes[k]; ++i) c.shard.indices.push_back(next++);
    c.device = devices[k % devices.size()];
    out.push_back(std::move(c));
  }
  return out;
}

DeviceProfile device(double speed, double mbps = 8.0, double latency_s = 0.0) {
  return DeviceProfile{speed, mbps * 125000.0, mbps * 125000.0, latency_s};
}

SimOptions options(int64_t rounds, size_t threads = 2) {
  SimOptions o;
  // Toy quadratic problems: the optimum is far from the tiny initial model, so the first
  // honest updates are many times its norm (admission.warmup_bound).
  o.admission.warmup_bound = "none";
  o.run.rounds = rounds;
  o.run.threads = threads;
  o.run.seed = 5;
  o.training.lr = 1.0;  // quadratic trainer: one step lands on the client's target
  o.training.local_steps = 1;
  return o;
}

TEST(SimulatorTest, FedAvgOneRoundIsWeightedMeanOfClientTargets) {
  auto d = line_dataset(6);
  // Client 0 owns examples {0}: target (0,0); client 1 owns {1,2,3,4,5}: target (3,6).
  auto clients = make_clients(d, {1, 5}, {device(10.0)});
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(options(1), quadratic_factory(2), clients, Shard::all(d), &hub);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const auto w = sim.final_model()->flat();
  // (1 * 0 + 5 * 3) / 6 = 2.5 ; (1 * 0 + 5 * 6) / 6 = 5.
  EXPECT_FLOAT_EQ(w[0], 2.5f);
  EXPECT_FLOAT_EQ(w[1], 5.0f);
  EXPECT_EQ(r->rounds, 1);
  EXPECT_EQ(r->updates, 2);
  // Two downloads and two uploads of an 8-byte model.
  EXPECT_EQ(r->bytes_down, 16);
  EXPECT_EQ(r->bytes_up, 16);
  // Everything moves within the first virtual second (1 step at 10 steps/s, 8 bytes at 1 MB/s).
  EXPECT_DOUBLE_EQ(r->peak_bytes_per_s, 32.0);
  // Without the two first downloads of the model: the two uploads.
  EXPECT_DOUBLE_EQ(r->peak_sync_bytes_per_s, 16.0);
  // Events: start, eval (v0), round, eval (v1), clients, summary.
  std::vector<std::string> kinds;
  for (const auto& e : mem->events) kinds.push_back(e["event"]);
  EXPECT_EQ(kinds,
            (std::vector<std::string>{"start", "eval", "round", "eval", "clients", "summary"}));
  EXPECT_EQ(mem->events[3]["round"], 1);
  EXPECT_EQ(mem->events[3]["updates"], 2);
}

// A round strategy's lr schedule reaches the trainers (task config "lr_scale"): a warm-up's
// first round trains as a halved training.lr would, and a decay to 0 freezes the model.
TEST(SimulatorTest, LrScheduleScalesTheTrainersLearningRate) {
  auto d = line_dataset(6);
  auto clients = make_clients(d, {1, 5}, {device(10.0)});
  auto final_model = [&](const SimOptions& o, const LrSchedule& schedule) {
    MetricsHub hub;
    Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), &hub);
    FedAvg fedavg({.round = {.lr_schedule = schedule}});
    auto r = sim.run(fedavg);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    const auto w = sim.final_model()->flat();
    return std::vector<float>(w.begin(), w.end());
  };
  const LrSchedule warmup{.kind = "constant", .warmup_rounds = 2};
  SimOptions half = options(1);
  half.training.lr = 0.5;
  const std::vector<float> w1 = final_model(options(1), warmup);
  EXPECT_EQ(w1, final_model(half, LrSchedule{}));  // round 1 of 2 warm-up rounds: lr 1 * 1/2
  EXPECT_NE(w1, (std::vector<float>{2.5f, 5.0f}));
  // Round 2: factor 1, one step of lr 1 lands every client on its target.
  EXPECT_EQ(final_model(options(2), warmup), (std::vector<float>{2.5f, 5.0f}));
  // Linear decay over one round: factor 1 in round 1, then 0: rounds 2 and 3 change nothing.
  const LrSchedule to_zero{.kind = "linear", .decay_rounds = 1};
  EXPECT_EQ(final_model(options(3), to_zero), (std::vector<float>{2.5f, 5.0f}));
}

// A setting under which no update can ever be accepted fails the run, naming the last
// rejection, instead of opening round after round forever.
TEST(SimulatorTest, EveryUpdateRejectedFailsTheRun) {
  auto d = line_dataset(6);
  auto clients = make_clients(d, {1, 5}, {device(10.0)});
  SimOptions o = options(5);
  o.admission.max_abs_weight = 1e-6;  // below every honest update
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("rejected, none accepted"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("max_abs_weight"), std::string::npos) << r.error().message();
}

TEST(SimulatorTest, VirtualTimeFollowsDeviceModel) {
  auto d = line_dataset(4);
  // speed 4 steps/s, 5 local steps; 1 Mbit/s both ways; 10 ms latency; model 8 bytes.
  auto clients = make_clients(d, {4}, {device(4.0, 1.0, 0.010)});
  SimOptions o = options(1);
  o.training.local_steps = 5;
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const double expected = 2 * 0.010 + 8.0 / 125000.0 + 5.0 / 4.0 + 8.0 / 125000.0;
  EXPECT_DOUBLE_EQ(r->virtual_time_s, expected);
}

TEST(SimulatorTest, SyncRoundWaitsForSlowestClient) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, {2, 2}, {device(1.0), device(100.0)});
  SimOptions o = options(3);
  o.training.local_steps = 10;
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok());
  // Each round lasts as long as the slow client: 10 steps at 1 step/s (+ tiny transfers).
  EXPECT_NEAR(r->virtual_time_s, 30.0, 0.01);
}

TEST(SimulatorTest, DeterministicAcrossThreadCounts) {
  auto d = line_dataset(200);
  std::vector<int64_t> sizes(20, 10);
  std::vector<DeviceProfile> devs;
  for (int i = 0; i < 20; ++i) devs.push_back(device(1.0 + i % 7, 1.0 + i % 3));
  auto clients = make_clients(d, sizes, devs);
  std::string hash;
  std::vector<double> accs;
  for (size_t threads : {1, 2, 4}) {
    SimOptions o = options(8, threads);
    o.training.lr = 0.3;
    o.training.local_steps = 3;
    MetricsHub hub;
    auto mem = std::make_shared<MemorySink>();
    hub.add_sink(mem);
    Simulator sim(o, quadratic_factory(2, /*noise=*/0.01), clients, Shard::all(d), &hub);
    FedAvg fedavg({.round = {.fraction = 0.3, .min_clients = 2}});
    auto r = sim.run(fedavg);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    std::vector<double> a;
    for (const auto& e : mem->events) {
      if (e["event"] == "eval") a.push_back(e["accuracy"]);
    }
    if (hash.empty()) {
      hash = r->model_hash;
      accs = a;
    } else {
      EXPECT_EQ(r->model_hash, hash) << "threads=" << threads;
      EXPECT_EQ(a, accs) << "threads=" << threads;
    }
  }
}

// Rounds of more tasks than the start window holds (64 per training thread wait in the pool,
// the rest in the simulator), with dropouts and jitter: the same model, updates and losses
// whatever the thread count, and every task accounted for.
TEST(SimulatorTest, RoundsLargerThanTheStartWindowAreDeterministic) {
  const int n = 400;
  auto d = line_dataset(2 * n);
  std::vector<DeviceProfile> devs;
  for (int i = 0; i < 13; ++i) devs.push_back(device(1.0 + i % 5, 1.0 + i % 4, 0.01 * (i % 3)));
  auto clients = make_clients(d, std::vector<int64_t>(n, 2), devs);
  std::string hash;
  int64_t updates = -1, lost = -1;
  for (size_t threads : {1, 2, 3}) {
    SimOptions o = options(4, threads);
    o.training.lr = 0.3;
    o.dynamics.dropout = 0.1;
    o.dynamics.jitter = 0.3;
    Simulator sim(o, quadratic_factory(2, /*noise=*/0.01), clients, Shard::all(d), nullptr);
    FedAvg fedavg({.round = {.fraction = 1.0, .min_clients = 2}});
    auto r = sim.run(fedavg);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->rounds, 4);
    int64_t tasks = 0;
    for (const ClientStats& c : r->client_stats) tasks += c.tasks;
    EXPECT_EQ(tasks, r->updates + r->rejected + r->lost) << "threads=" << threads;
    EXPECT_GT(r->lost, 0);
    EXPECT_GT(r->updates, 3 * n);
    if (hash.empty()) {
      hash = r->model_hash;
      updates = r->updates;
      lost = r->lost;
    } else {
      EXPECT_EQ(r->model_hash, hash) << "threads=" << threads;
      EXPECT_EQ(r->updates, updates) << "threads=" << threads;
      EXPECT_EQ(r->lost, lost) << "threads=" << threads;
    }
  }
}

TEST(SimulatorTest, SeedChangesTheRun) {
  auto d = line_dataset(40);
  auto clients = make_clients(d, std::vector<int64_t>(4, 10), {device(2.0)});
  std::string first;
  for (uint64_t seed : {1, 2}) {
    SimOptions o = options(3);
    o.run.seed = seed;
    Simulator sim(o, quadratic_factory(2, 0.01), clients, Shard::all(d), nullptr);
    FedAvg fedavg({.round = {.fraction = 0.5}});
    auto r = sim.run(fedavg);
    ASSERT_TRUE(r.ok());
    if (first.empty())
      first = r->model_hash;
    else
      EXPECT_NE(r->model_hash, first);
  }
}

TEST(SimulatorTest, VirtualTimeBudgetStopsRun) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, {2, 2}, {device(1.0)});
  SimOptions o = options(0);
  o.run.max_virtual_time_s = 25.0;
  o.training.local_steps = 10;
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rounds, 2);  // rounds end at ~10 s and ~20 s; the third would end at ~30 s
  EXPECT_DOUBLE_EQ(r->virtual_time_s, 25.0);
}

TEST(SimulatorTest, DeadlineDropsStragglerAndRejectsItsLateUpdate) {
  auto d = line_dataset(4);
  // Client 1 is 100x slower than client 0: with a 5 s deadline only client 0 makes it.
  auto clients = make_clients(d, {2, 2}, {device(10.0), device(0.1)});
  SimOptions o = options(0);
  o.run.max_virtual_time_s = 200.0;
  o.training.local_steps = 10;
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), &hub);
  FedAvg fedavg({.round = {.fraction = 1.0, .min_clients = 1, .round_deadline_s = 5.0}});
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok());
  // The model is client 0's target (0.5, 1) despite the straggler.
  EXPECT_FLOAT_EQ(sim.final_model()->flat()[0], 0.5f);
  EXPECT_FLOAT_EQ(sim.final_model()->flat()[1], 1.0f);
  EXPECT_GE(r->rejected, 1);  // the straggler's update arrived after its round closed
  bool saw_timeout = false;
  for (const auto& e : mem->events) {
    if (e["event"] == "round" && e["timed_out"] == 1) saw_timeout = true;
  }
  EXPECT_TRUE(saw_timeout);
  EXPECT_GT(r->rounds, 10);  // rounds keep closing every ~1 s without the straggler
}

TEST(SimulatorTest, TrainingFailureAbortsWithClearError) {
  auto d = line_dataset(6);
  auto clients = make_clients(d, {3, 3}, {device(1.0)});
  Simulator sim(options(2), quadratic_factory(2, 0.0, /*fail_on=*/3), clients, Shard::all(d),
                nullptr);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInternal);
  EXPECT_NE(r.error().message().find("injected training failure"), std::string::npos);
}

TEST(SimulatorTest, BadOptionsAndInputsRejected) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, {2, 2}, {device(1.0)});
  FedAvg fedavg;
  SimOptions o = options(0);  // no limit at all
  Simulator never_ends(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  auto r = never_ends.run(fedavg);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("rounds and max_virtual_time_s are both 0"),
            std::string::npos);

  auto empty = make_clients(d, {2, 0}, {device(1.0)});
  Simulator bad_client(options(1), quadratic_factory(2), empty, Shard::all(d), nullptr);
  auto r2 = bad_client.run(fedavg);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message().find("client 1 has no training examples"), std::string::npos);
}

}  // namespace
}  // namespace cohort::sim

namespace cohort::sim {
namespace {

TEST(FederatedEvalTest, WeightedMeanAndWorstTenPercentHandComputed) {
  std::vector<EvalResult> r;
  // 12 clients: accuracies 0.1, 0.2, ..., 1.2 (only relative order matters), 10 examples each
  // except the first with 30. Worst 10% of 12 clients = ceil(1.2) = 2 clients: (0.1 + 0.2) / 2.
  for (int i = 0; i < 12; ++i) {
    r.push_back(EvalResult{/*loss=*/1.0 + i, /*accuracy=*/0.1 * (i + 1), i == 0 ? 30 : 10});
  }
  r.push_back(EvalResult{5.0, 0.0, 0});  // no examples: skipped
  FederatedEval f = federated_summary(r);
  double acc = 30 * 0.1, loss = 30 * 1.0, n = 30;
  for (int i = 1; i < 12; ++i) {
    acc += 10 * 0.1 * (i + 1);
    loss += 10 * (1.0 + i);
    n += 10;
  }
  EXPECT_DOUBLE_EQ(f.accuracy, acc / n);
  EXPECT_DOUBLE_EQ(f.loss, loss / n);
  EXPECT_DOUBLE_EQ(f.worst10_accuracy, (0.1 + 0.2) / 2);
  EXPECT_EQ(federated_summary({}).accuracy, 0.0);
}

TEST(FederatedEvalTest, SimulatorEvaluatesHeldOutSplits) {
  auto d = line_dataset(8);
  // Client 0 trains on {0} and holds out {1}; client 1 trains on {2,3} and holds out {4}.
  std::vector<SimClient> clients(2);
  clients[0].shard = Shard{d, {0}};
  clients[0].holdout = Shard{d, {1}};
  clients[1].shard = Shard{d, {2, 3}};
  clients[1].holdout = Shard{d, {4}};
  for (auto& c : clients) c.device = device(10.0);
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(options(1), quadratic_factory(2), clients, Shard::all(d), &hub);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // Model after one round: (1·(0,0) + 2·(2.5,5)) / 3 = (5/3, 10/3).
  // Holdout targets: client 0 (1,2), client 1 (4,8); quadratic loss 0.5·||w - t||^2.
  const double w0 = 5.0 / 3, w1 = 10.0 / 3;
  const double l0 = 0.5 * ((w0 - 1) * (w0 - 1) + (w1 - 2) * (w1 - 2));
  const double l1 = 0.5 * ((w0 - 4) * (w0 - 4) + (w1 - 8) * (w1 - 8));
  const double a0 = 1 / (1 + l0), a1 = 1 / (1 + l1);
  const Json* last = nullptr;
  for (const auto& e : mem->events) {
    if (e["event"] == "eval") last = &e;
  }
  ASSERT_NE(last, nullptr);
  EXPECT_NEAR((*last)["fed_accuracy"].get<double>(), (a0 + a1) / 2, 1e-6);
  EXPECT_NEAR((*last)["fed_loss"].get<double>(), (l0 + l1) / 2, 1e-5);
  EXPECT_NEAR((*last)["fed_worst10_accuracy"].get<double>(), std::min(a0, a1), 1e-6);
  EXPECT_EQ((*last)["fed_clients"], 2);
  ASSERT_TRUE(r->final_fed_accuracy.has_value());
  EXPECT_NEAR(*r->final_fed_accuracy, (a0 + a1) / 2, 1e-6);
}

}  // namespace
}  // namespace cohort::sim

namespace cohort::sim {
namespace {

TEST(SimulatorTest, IntervalEvaluationAtFixedVirtualTimes) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, {2, 2}, {device(1.0)});
  SimOptions o = options(0);
  o.run.max_virtual_time_s = 35.0;
  o.run.eval_every = 0;  // only by interval
  o.run.eval_interval_s = 10.0;
  o.training.local_steps = 10;  // a round lasts ~10 s
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), &hub);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  std::vector<double> times;
  for (const auto& e : mem->events) {
    if (e["event"] == "eval") times.push_back(e["virtual_time_s"]);
  }
  // Initial model, then 10, 20, 30 s, then the final model at the 35 s limit.
  ASSERT_EQ(times.size(), 5u);
  EXPECT_EQ(times[0], 0.0);
  EXPECT_EQ(times[1], 10.0);
  EXPECT_EQ(times[2], 20.0);
  EXPECT_EQ(times[3], 30.0);
  EXPECT_EQ(times[4], 35.0);
  SimOptions bad = options(1);
  bad.run.eval_every = 0;
  Simulator s2(bad, quadratic_factory(2), clients, Shard::all(d), nullptr);
  FedAvg f2;
  EXPECT_EQ(s2.run(f2).status().code(), StatusCode::kInvalidArgument);
}

TEST(CoreClaimTest, ClaimsAddUpAcrossSimulationsAndAreReleased) {
  // No simulation is running here: nothing is claimed.
  ASSERT_TRUE(sim::CoreClaim::fits(0));
  {
    sim::CoreClaim a;
    a.claim(2);  // one training thread and the loop
    EXPECT_TRUE(sim::CoreClaim::fits(2));
    EXPECT_FALSE(sim::CoreClaim::fits(1));
    sim::CoreClaim b;  // a second simulation at once (cohort compare with two jobs)
    b.claim(2);
    EXPECT_FALSE(sim::CoreClaim::fits(2));  // two loops would spin on two cores: no spinning
    EXPECT_TRUE(sim::CoreClaim::fits(4));
    b.claim(1);  // claiming again replaces the claim
    EXPECT_TRUE(sim::CoreClaim::fits(3));
    EXPECT_FALSE(sim::CoreClaim::fits(2));
  }
  EXPECT_TRUE(sim::CoreClaim::fits(0));  // released with the simulations
}

}  // namespace
}  // namespace cohort::sim
