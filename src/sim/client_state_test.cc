// The simulator's per-client state (Task::server_state, Update::state_delta, the client
// store) and SCAFFOLD run end to end on the quadratic trainer.
#include <cmath>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/sim/simulator.h"
#include "cohort/strategy/diloco.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/scaffold.h"
#include "cohort/trainer/control_variates.h"
#include "testing/fake_host.h"
#include "testing/fake_trainer.h"

namespace cohort::sim {
namespace {

using ::testing::HasSubstr;
using testing::line_dataset;
using testing::make_vector;
using testing::quadratic_factory;
using testing::QuadraticTrainer;

std::vector<SimClient> make_clients(std::shared_ptr<const Dataset> d,
                                    const std::vector<int64_t>& sizes,
                                    const std::vector<double>& speeds) {
  std::vector<SimClient> out;
  int64_t next = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    SimClient c;
    c.shard.data = d;
    for (int64_t i = 0; i < sizes[k]; ++i) c.shard.indices.push_back(next++);
    c.device = DeviceProfile{speeds[k % speeds.size()], 1e6, 1e6, 0.0};
    out.push_back(std::move(c));
  }
  return out;
}

// A strategy that sends each client a fixed number of tasks from model x = (1) with server
// state c = (0.25) and records what comes back; it never commits.
class ProbeStrategy : public Strategy {
 public:
  ProbeStrategy(std::map<ClientId, int> tasks, std::string rule, bool reject_first = false,
                bool keep_optimizer = false)
      : remaining_(std::move(tasks)),
        rule_(std::move(rule)),
        reject_first_(reject_first),
        keep_optimizer_(keep_optimizer) {}
  std::string name() const override { return "probe"; }
  Status start(StrategyHost* host, ArrayRecord) override {
    host_ = host;
    model_ = std::make_shared<const ArrayRecord>(make_vector({1.0f}));
    c_ = std::make_shared<const ArrayRecord>(make_vector({0.25f}));
    return Status();
  }
  void on_client_idle(ClientId id) override {
    if (remaining_[id] == 0) return;
    --remaining_[id];
    Task t;
    t.client = id;
    t.model = model_;
    t.local_steps = 2;
    t.server_state = c_;
    t.config[kClientStateKey] = rule_;
    set_task_keep_optimizer_state(t.config, keep_optimizer_);
    host_->dispatch(std::move(t));
  }
  Status on_update(Update u) override {
    updates.push_back(std::move(u));
    if (reject_first_ && updates.size() == 1) return Status::failed_precondition("probe rejects");
    return Status();
  }
  void on_task_lost(ClientId, ModelVersion) override {}
  void on_timer(TimerId) override {}
  std::shared_ptr<const ArrayRecord> global_model() const override { return model_; }
  ModelVersion version() const override { return 0; }

  std::vector<Update> updates;

 private:
  std::map<ClientId, int> remaining_;
  std::string rule_;
  bool reject_first_;
  bool keep_optimizer_;
  StrategyHost* host_ = nullptr;
  std::shared_ptr<const ArrayRecord> model_, c_;
};

SimOptions probe_options() {
  SimOptions o;
  // Toy quadratic problems: the optimum is far from the tiny initial model, so the first
  // honest updates are many times its norm (admission.warmup_bound).
  o.admission.warmup_bound = "none";
  o.run.rounds = 10;  // never reached: the run ends when the probe stops sending tasks
  o.run.threads = 2;
  o.run.seed = 3;
  o.training.lr = 0.5;
  return o;
}

float only(const ArrayRecord& r) {
  EXPECT_EQ(r.numel(), 1);
  return r.flat()[0];
}

TEST(QuadraticTrainerTest, CorrectionIsAddedToEveryGradientStep) {
  auto d = line_dataset(4);  // target t = mean of (0, 1, 2, 3) = 1.5 in dimension 0
  QuadraticTrainer q(1);
  TrainConfig cfg;
  cfg.lr = 0.5;
  ArrayRecord start = make_vector({1.0f});
  ArrayRecord corr = make_vector({0.25f});
  // w <- w - 0.5 ((w - 1.5) + 0.25): 1 -> 1.125 -> 1.1875.
  auto r = q.train(start, Shard::all(d), 2, cfg, {}, 1, &corr);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FLOAT_EQ(only(r->params), 1.1875f);
  // Without a correction: the closed form 1.5 + 0.25 * (1 - 1.5) = 1.375.
  r = q.train(start, Shard::all(d), 2, cfg, {}, 1, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_FLOAT_EQ(only(r->params), 1.375f);
  // A zero correction takes the step-by-step path to the same point.
  ArrayRecord zero = make_vector({0.0f});
  r = q.train(start, Shard::all(d), 2, cfg, {}, 1, &zero);
  ASSERT_TRUE(r.ok());
  EXPECT_FLOAT_EQ(only(r->params), 1.375f);
  ArrayRecord wrong = make_vector({0.0f, 0.0f});
  r = q.train(start, Shard::all(d), 2, cfg, {}, 1, &wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
}

// Client 0 (examples 0..3, target 1.5) takes two tasks, client 1 (examples 4..7, target 5.5)
// one; every task starts from x = 1 with c = 0.25, lr = 0.5, K = 2 (K lr = 1).
TEST(ClientStateTest, ClientKeepsItsControlVariateAcrossItsTasks) {
  auto d = line_dataset(8);
  auto clients = make_clients(d, {4, 4}, {10.0, 1.0});
  Simulator sim(probe_options(), quadratic_factory(1), clients, Shard::all(d), nullptr);
  ProbeStrategy probe({{0, 2}, {1, 1}}, kScaffoldClientState);
  auto r = sim.run(probe);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(probe.updates.size(), 3u);
  std::vector<const Update*> by0, by1;
  for (const Update& u : probe.updates) (u.client == 0 ? by0 : by1).push_back(&u);
  ASSERT_EQ(by0.size(), 2u);
  ASSERT_EQ(by1.size(), 1u);

  // Client 0, task 1: c_i = 0, correction 0.25: w 1 -> 1.125 -> 1.1875.
  //   Delta = 1 - 1.1875 = -0.1875; Delta c_i = -0.1875 / 1 - 0.25 = -0.4375 = c_i.
  EXPECT_FLOAT_EQ(only(by0[0]->delta), -0.1875f);
  EXPECT_FLOAT_EQ(only(by0[0]->state_delta), -0.4375f);
  // Client 0, task 2 sees that c_i: correction 0.25 + 0.4375 = 0.6875:
  //   w 1 -> 0.90625 -> 0.859375; Delta = 0.140625; Delta c_i = 0.140625 - 0.25 = -0.109375.
  EXPECT_FLOAT_EQ(only(by0[1]->delta), 0.140625f);
  EXPECT_FLOAT_EQ(only(by0[1]->state_delta), -0.109375f);
  // Client 1 has its own state, zero at its first task: correction 0.25:
  //   w 1 -> 3.125 -> 4.1875; Delta = -3.1875; Delta c_i = -3.1875 - 0.25 = -3.4375.
  EXPECT_FLOAT_EQ(only(by1[0]->delta), -3.1875f);
  EXPECT_FLOAT_EQ(only(by1[0]->state_delta), -3.4375f);
  // The server state goes down and the state delta comes up with the model: 2 x 4 bytes.
  EXPECT_EQ(r->bytes_down, 3 * 8);
  EXPECT_EQ(r->bytes_up, 3 * 8);
}

TEST(ClientStateTest, RejectedUpdateDoesNotAdvanceTheClientState) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, {4}, {10.0});
  Simulator sim(probe_options(), quadratic_factory(1), clients, Shard::all(d), nullptr);
  ProbeStrategy probe({{0, 2}}, kScaffoldClientState, /*reject_first=*/true);
  auto r = sim.run(probe);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(probe.updates.size(), 2u);
  EXPECT_EQ(r->rejected, 1);
  // The server never saw the first Delta c_i, so the client kept c_i = 0: the second task
  // repeats the first exactly.
  EXPECT_FLOAT_EQ(only(probe.updates[0].state_delta), -0.4375f);
  EXPECT_FLOAT_EQ(only(probe.updates[1].state_delta), -0.4375f);
  EXPECT_FLOAT_EQ(only(probe.updates[1].delta), -0.1875f);
}

// Tasks with "keep_optimizer_state": each client's optimizer state goes from one of its tasks
// to the next (the stand-in trainer counts steps); without it every task starts afresh.
TEST(ClientStateTest, OptimizerStateIsKeptPerClientWhenTheTaskAsks) {
  auto d = line_dataset(8);
  for (bool keep : {true, false}) {
    auto clients = make_clients(d, {4, 4}, {10.0, 1.0});
    Simulator sim(probe_options(), quadratic_factory(1), clients, Shard::all(d), nullptr);
    ProbeStrategy probe({{0, 3}, {1, 1}}, kScaffoldClientState, false, keep);
    auto r = sim.run(probe);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    std::vector<double> seen0, seen1;
    for (const Update& u : probe.updates) {
      auto it = u.metrics.find("optimizer_steps_before");
      ASSERT_EQ(it != u.metrics.end(), keep);
      if (keep) (u.client == 0 ? seen0 : seen1).push_back(it->second);
    }
    if (keep) {
      EXPECT_EQ(seen0, (std::vector<double>{0, 2, 4}));  // two steps per task
      EXPECT_EQ(seen1, (std::vector<double>{0}));
    }
  }
}

TEST(ClientStateTest, UnknownRuleFailsTheRunNamingIt) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, {4}, {10.0});
  Simulator sim(probe_options(), quadratic_factory(1), clients, Shard::all(d), nullptr);
  ProbeStrategy probe({{0, 1}}, "scaffolld");
  auto r = sim.run(probe);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("task for client 0"));
  EXPECT_THAT(r.error().message(), HasSubstr("unknown client-state rule 'scaffolld'"));
}

SimOptions scaffold_options(int64_t rounds, size_t threads) {
  SimOptions o;
  // Toy quadratic problems: the optimum is far from the tiny initial model, so the first
  // honest updates are many times its norm (admission.warmup_bound).
  o.admission.warmup_bound = "none";
  o.run.rounds = rounds;
  o.run.threads = threads;
  o.run.seed = 5;
  o.training.lr = 0.3;
  o.training.local_steps = 3;
  return o;
}

// Six clients of equal size with targets spread over [4.5, 54.5], half of them sampled per
// round. FedAvg keeps jumping towards the mean of whichever clients were sampled; SCAFFOLD's
// control variates remove that client-sampling noise and converge to the mean of all
// targets, (29.5, 59).
TEST(ClientStateTest, ScaffoldConvergesDespiteClientSamplingWhereFedAvgDoesNot) {
  auto d = line_dataset(60);
  auto clients = make_clients(d, std::vector<int64_t>(6, 10), {1.0, 2.0, 3.0});
  auto error = [&](Strategy& s) {
    Simulator sim(scaffold_options(80, 2), quadratic_factory(2), clients, Shard::all(d), nullptr);
    auto r = sim.run(s);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->rounds, 80);
    const auto w = sim.final_model()->flat();
    return std::hypot(w[0] - 29.5, w[1] - 59.0);
  };
  Scaffold scaffold({.round = {.fraction = 0.5}});
  FedAvg fedavg({.round = {.fraction = 0.5}});
  const double scaffold_error = error(scaffold);
  const double fedavg_error = error(fedavg);
  EXPECT_LT(scaffold_error, 1e-3);
  EXPECT_GT(fedavg_error, 0.5);
  // At the optimum every c_i is the client's gradient x* - t_i, and c is their mean, 0.
  const auto c = scaffold.control_variate()->flat();
  EXPECT_NEAR(c[0], 0.0, 1e-3);
  EXPECT_NEAR(c[1], 0.0, 1e-3);
}

// With one client, c = c_1 after every round, so the correction c - c_1 vanishes and SCAFFOLD
// is FedAvg. Round r+1's task is dispatched while round r's update is being handled, so this
// also checks that the task starts from the state stored for that update (else its
// correction would be c - 0 = c).
TEST(ClientStateTest, SingleClientScaffoldIsFedAvg) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, {4}, {10.0});
  std::vector<float> w[2];
  int i = 0;
  for (bool scaffold : {false, true}) {
    SimOptions o = scaffold_options(3, 2);
    o.training.lr = 0.5;
    o.training.local_steps = 2;
    Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
    FedAvg fedavg;
    Scaffold scaffold_strategy;
    Strategy& s = scaffold ? static_cast<Strategy&>(scaffold_strategy) : fedavg;
    auto r = sim.run(s);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->rounds, 3);
    w[i++] = testing::values(*sim.final_model());
  }
  ASSERT_EQ(w[0].size(), 2u);
  // Targets (1.5, 3); three rounds of two steps at lr 0.5 leave 1/64 of the initial gap.
  for (size_t k = 0; k < 2; ++k) EXPECT_NEAR(w[1][k], w[0][k], 1e-6) << k;
}

TEST(ClientStateTest, ScaffoldIsDeterministicAcrossThreadCounts) {
  auto d = line_dataset(200);
  auto clients = make_clients(d, std::vector<int64_t>(20, 10), {1.0, 2.5, 4.0, 7.0});
  std::string hash, c_hash;
  for (size_t threads : {1, 2, 4}) {
    Simulator sim(scaffold_options(8, threads), quadratic_factory(2, /*noise=*/0.01), clients,
                  Shard::all(d), nullptr);
    Scaffold scaffold({.round = {.fraction = 0.3, .min_clients = 2}});
    auto r = sim.run(scaffold);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->rounds, 8);
    if (hash.empty()) {
      hash = r->model_hash;
      c_hash = scaffold.control_variate()->hash_hex();
    } else {
      EXPECT_EQ(r->model_hash, hash) << "threads=" << threads;
      EXPECT_EQ(scaffold.control_variate()->hash_hex(), c_hash) << "threads=" << threads;
    }
  }
}

}  // namespace
}  // namespace cohort::sim

namespace cohort::sim {
namespace {

// DiLoCo in the simulator: the outer step and the client sampling give the same final model
// whatever the thread count, and it moves most of the way to the mean target (29.5, 59) from a
// start near 0 (half the clients per round: it stays near the sampled clients' mean, as
// FedAvg does).
TEST(DiLoCoSimTest, DeterministicAcrossThreadCountsAndConverges) {
  auto d = line_dataset(60);
  auto clients = make_clients(d, std::vector<int64_t>(6, 10), {1.0, 2.0, 3.0});
  std::vector<std::string> hashes;
  for (size_t threads : {1, 3}) {
    SimOptions o = scaffold_options(40, threads);
    DiLoCoOptions dopt;
    dopt.round.fraction = 0.5;
    dopt.inner_steps = 3;
    dopt.inner_optimizer = "run";  // the quadratic trainer's own steps
    dopt.outer_lr = 0.7;
    dopt.outer_momentum = 0.5;
    DiLoCo s(dopt);
    Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
    auto r = sim.run(s);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->rounds, 40);
    hashes.push_back(r->model_hash);
    const auto w = sim.final_model()->flat();
    EXPECT_LT(std::hypot(w[0] - 29.5, w[1] - 59.0), 0.4 * std::hypot(29.5, 59.0));
  }
  EXPECT_EQ(hashes[0], hashes[1]);
}

}  // namespace
}  // namespace cohort::sim
