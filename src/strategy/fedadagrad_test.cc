#include "cohort/strategy/fedadagrad.h"

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

using FedAdagradTest = testing::FedOptRounds;

TEST_F(FedAdagradTest, TwoRoundsHandComputed) {
  FedAdagrad s;  // Flower defaults: eta 0.1, beta_1 0 (m = Delta_bar), tau 1e-9
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  ASSERT_TRUE(round(s, 0));
  // m = (-0.5, -3, 0), v = (0.25, 9, 0), m / sqrt(v) = (-1, -1, 0)
  // w = (1, 2, -1) + 0.1 * (1, 1, 0) = (1.1, 2.1, -1)
  expect_near(values(s.first_moment()), {-0.5, -3.0, 0.0});
  expect_near(values(s.second_moment()), {0.25, 9.0, 0.0});
  expect_near(values(*s.global_model()), {1.1, 2.1, -1.0});
  ASSERT_TRUE(round(s, 1));
  // m = (1, -0.5, 0), v = (0.25 + 1, 9 + 0.25, 0) = (1.25, 9.25, 0)
  // w = (1.1 - 0.1 / sqrt(1.25), 2.1 + 0.05 / sqrt(9.25), -1) = (1.0105573, 2.1164399, -1)
  expect_near(values(s.first_moment()), {1.0, -0.5, 0.0});
  expect_near(values(s.second_moment()), {1.25, 9.25, 0.0});
  expect_near(values(*s.global_model()), {1.0105573, 2.1164399, -1.0});
}

TEST_F(FedAdagradTest, ThreeRoundsWithMomentumMatchReference) {
  FedAdagrad s({.round = {}, .server_lr = 0.3, .beta_1 = 0.5, .tau = 0.01});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  RefFedOpt ref(RefRule::kAdagrad, 0.5, 0.0, 0.01, {1.0, 2.0, -1.0});
  for (int r = 0; r < 3; ++r) {
    ASSERT_TRUE(round(s, r));
    ref.step(0.3, weighted_mean(kDeltas[r], kExamples));
    SCOPED_TRACE("round " + std::to_string(r + 1));
    expect_near(values(s.first_moment()), ref.m);
    expect_near(values(s.second_moment()), ref.v);
    expect_near(values(*s.global_model()), ref.w);
  }
}

TEST_F(FedAdagradTest, RoundWithoutUpdatesKeepsModelAndMoments) {
  FedAdagrad s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  ASSERT_TRUE(round(s, 0));
  ASSERT_TRUE(testing::lose_round(host, s, {0, 1}));
  EXPECT_EQ(s.version(), 1);
  expect_near(values(*s.global_model()), {1.1, 2.1, -1.0});
  expect_near(values(s.first_moment()), {-0.5, -3.0, 0.0});
  expect_near(values(s.second_moment()), {0.25, 9.0, 0.0});
}

TEST(FedAdagradOneClient, TakesOneStep) {
  FakeHost host;
  host.add_client(0, 1);
  FedAdagrad s;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f, 3.0f})).ok());
  ASSERT_TRUE(run_round(host, s, {0}, {{0.5f, -0.25f}}, {1}));
  expect_near(values(*s.global_model()), {-0.1, 3.1});
}

TEST(FedAdagradCreate, DefaultsAndBadParams) {
  auto d = make_strategy("fedadagrad", {});
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ((*d)->name(), "fedadagrad");
  const FedOptOptions& o = dynamic_cast<FedAdagrad&>(**d).fedopt_options();
  EXPECT_EQ(o.server_lr, 0.1);
  EXPECT_EQ(o.beta_1, 0.0);
  EXPECT_EQ(o.tau, 1e-9);
  EXPECT_EQ(dynamic_cast<FedAdagrad&>(**d).rule(), FedOptRule::kAdagrad);

  EXPECT_EQ(make_strategy("fedadagrad", {{"beta_1", int64_t{1}}}).error().message(),
            "strategy.beta_1: must be in [0, 1), got 1");
  EXPECT_EQ(make_strategy("fedadagrad", {{"beta_2", 0.99}}).error().message(),
            "strategy.beta_2: unknown parameter for fedadagrad (known: beta_1, fraction, "
            "lr_decay_rounds, lr_min_factor, "
            "lr_schedule, lr_warmup_rounds, "
            "min_clients, round_deadline_s, server_lr, tau)");
}

}  // namespace
}  // namespace cohort
