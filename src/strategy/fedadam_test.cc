#include "cohort/strategy/fedadam.h"

#include <cmath>

#include <gtest/gtest.h>

#include "cohort/strategy/registry.h"
#include "testing/fake_host.h"
#include "testing/fedopt_reference.h"
#include "testing/round_driver.h"

namespace cohort {
namespace {

using testing::expect_near;
using testing::FakeHost;
using testing::kDeltas;
using testing::kExamples;
using testing::make_vector;
using testing::RefFedOpt;
using testing::RefRule;
using testing::run_round;
using testing::values;
using testing::weighted_mean;

// Flower's bias-corrected step size of round t.
double eta_t(double eta, double b1, double b2, int t) {
  return eta * std::sqrt(1 - std::pow(b2, t + 1)) / (1 - std::pow(b1, t + 1));
}

using FedAdamTest = testing::FedOptRounds;

TEST_F(FedAdamTest, FirstRoundHandComputed) {
  FedAdam s;  // Flower defaults: eta 0.1, beta_1 0.9, beta_2 0.99, tau 1e-9
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  ASSERT_TRUE(round(s, 0));
  // m = 0.1 * (-0.5, -3, 0) = (-0.05, -0.3, 0)
  // v = 0.01 * (0.25, 9, 0) = (0.0025, 0.09, 0), sqrt(v) = (0.05, 0.3, 0)
  // m / (sqrt(v) + 1e-9) = (-1, -1, 0)
  // eta_1 = 0.1 * sqrt(1 - 0.99^2) / (1 - 0.9^2) = 0.1 * 0.1410674 / 0.19 = 0.0742460
  // w = (1, 2, -1) + 0.0742460 * (1, 1, 0)
  expect_near(values(s.first_moment()), {-0.05, -0.3, 0.0});
  expect_near(values(s.second_moment()), {0.0025, 0.09, 0.0});
  expect_near(values(*s.global_model()), {1.0742460, 2.0742460, -1.0});
}

TEST_F(FedAdamTest, ThreeRoundsMatchReference) {
  FedAdam s({.round = {}, .server_lr = 0.05, .beta_1 = 0.8, .beta_2 = 0.9, .tau = 0.01});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  RefFedOpt ref(RefRule::kAdam, 0.8, 0.9, 0.01, {1.0, 2.0, -1.0});
  for (int r = 0; r < 3; ++r) {
    ASSERT_TRUE(round(s, r));
    ref.step(eta_t(0.05, 0.8, 0.9, r + 1), weighted_mean(kDeltas[r], kExamples));
    SCOPED_TRACE("round " + std::to_string(r + 1));
    expect_near(values(s.first_moment()), ref.m);
    expect_near(values(s.second_moment()), ref.v);
    expect_near(values(*s.global_model()), ref.w);
  }
  EXPECT_EQ(s.version(), 3);
}

TEST_F(FedAdamTest, RoundWithoutUpdatesKeepsModelAndMoments) {
  FedAdam s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  ASSERT_TRUE(round(s, 0));
  const auto w1 = values(*s.global_model());
  const auto m1 = values(s.first_moment());
  const auto v1 = values(s.second_moment());
  ASSERT_TRUE(testing::lose_round(host, s, {0, 1}));
  EXPECT_EQ(s.current_round(), 2);
  EXPECT_EQ(s.version(), 1);
  EXPECT_EQ(values(*s.global_model()), w1);
  EXPECT_EQ(values(s.first_moment()), m1);
  EXPECT_EQ(values(s.second_moment()), v1);
  // Round 3 takes the second optimizer step, with round 3's step size (Flower counts
  // server rounds, including the empty one).
  ASSERT_TRUE(round(s, 1));
  RefFedOpt ref(RefRule::kAdam, 0.9, 0.99, 1e-9, {1.0, 2.0, -1.0});
  ref.step(eta_t(0.1, 0.9, 0.99, 1), weighted_mean(kDeltas[0], kExamples));
  ref.step(eta_t(0.1, 0.9, 0.99, 3), weighted_mean(kDeltas[1], kExamples));
  expect_near(values(*s.global_model()), ref.w);
  expect_near(values(s.first_moment()), ref.m);
  expect_near(values(s.second_moment()), ref.v);
}

TEST_F(FedAdamTest, UpdateWithZeroExamplesRejectedOthersUsed) {
  FedAdam s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  auto tasks = testing::open_round(host, s, {0, 1});
  ASSERT_EQ(tasks.size(), 2u);
  Status bad = s.on_update(testing::update_with_delta(tasks[0], {5.0f, 5.0f, 5.0f}, 0));
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "update from client 0: num_examples must be > 0, got 0");
  EXPECT_EQ(values(s.first_moment()), (std::vector<float>{0.0f, 0.0f, 0.0f}));
  ASSERT_TRUE(s.on_update(testing::update_with_delta(tasks[1], {0.0f, -4.0f, 0.0f}, 300)).ok());
  EXPECT_EQ(host.events.back()["rejected"], 1);
  // Only client 1 counts: Delta_bar = (0, -4, 0); m = (0, -0.4, 0), v = (0, 0.16, 0).
  expect_near(values(s.first_moment()), {0.0, -0.4, 0.0});
  expect_near(values(s.second_moment()), {0.0, 0.16, 0.0});
  expect_near(values(*s.global_model()), {1.0, 2.0742460, -1.0});
}

TEST(FedAdamOneClient, StepsTowardsItsModel) {
  FakeHost host;
  host.add_client(9, 5);
  FedAdam s({.round = {}, .server_lr = 0.02});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f, 0.0f})).ok());
  ASSERT_TRUE(run_round(host, s, {9}, {{-3.0f, 0.5f}}, {5}));
  // m / sqrt(v) = sign(Delta) after one step: w = -eta_1 * (-1, 1).
  const double e1 = eta_t(0.02, 0.9, 0.99, 1);
  expect_near(values(*s.global_model()), {e1, -e1});
}

TEST(FedAdamCreate, DefaultsAndBadParams) {
  auto d = make_strategy("fedadam", {});
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ((*d)->name(), "fedadam");
  const FedOptOptions& o = dynamic_cast<FedAdam&>(**d).fedopt_options();
  EXPECT_EQ(o.server_lr, 0.1);
  EXPECT_EQ(o.beta_1, 0.9);
  EXPECT_EQ(o.beta_2, 0.99);
  EXPECT_EQ(o.tau, 1e-9);
  EXPECT_EQ(dynamic_cast<FedAdam&>(**d).rule(), FedOptRule::kAdam);

  auto s = make_strategy("fedadam", {{"server_lr", 0.01},
                                     {"beta_1", 0.5},
                                     {"beta_2", 0.9},
                                     {"tau", 0.001},
                                     {"min_clients", int64_t{2}}});
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  const FedOptOptions& so = dynamic_cast<FedAdam&>(**s).fedopt_options();
  EXPECT_EQ(so.server_lr, 0.01);
  EXPECT_EQ(so.beta_1, 0.5);
  EXPECT_EQ(so.beta_2, 0.9);
  EXPECT_EQ(so.tau, 0.001);
  EXPECT_EQ(dynamic_cast<FedAdam&>(**s).round_options().min_clients, 2);

  EXPECT_EQ(make_strategy("fedadam", {{"beta_1", int64_t{1}}}).error().message(),
            "strategy.beta_1: must be in [0, 1), got 1");
  EXPECT_EQ(make_strategy("fedadam", {{"beta_2", -1.0}}).error().message(),
            "strategy.beta_2: must be in [0, 1), got -1");
  EXPECT_EQ(make_strategy("fedadam", {{"tau", 0.0}}).error().message(),
            "strategy.tau: must be > 0, got 0");
  EXPECT_EQ(make_strategy("fedadam", {{"server_lr", -1.0}}).error().message(),
            "strategy.server_lr: must be > 0, got -1");
  EXPECT_EQ(make_strategy("fedadam", {{"eta", 0.1}}).error().message(),
            "strategy.eta: unknown parameter for fedadam (known: beta_1, beta_2, fraction, "
            "lr_decay_rounds, lr_min_factor, "
            "lr_schedule, lr_warmup_rounds, "
            "min_clients, round_deadline_s, server_lr, tau)");
}

}  // namespace
}  // namespace cohort
