#include "cohort/strategy/fedyogi.h"

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

using FedYogiTest = testing::FedOptRounds;

TEST_F(FedYogiTest, FirstRoundHandComputed) {
  FedYogi s;  // Flower defaults: eta 0.01, beta_1 0.9, beta_2 0.99, tau 1e-3
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  ASSERT_TRUE(round(s, 0));
  // m = 0.1 * (-0.5, -3, 0) = (-0.05, -0.3, 0)
  // v = 0 - 0.01 * (0.25, 9, 0) * sign(0 - (0.25, 9, 0)) = (0.0025, 0.09, 0)
  // w = (1, 2, -1) - 0.01 * (-0.05 / 0.051, -0.3 / 0.301, 0) = (1.0098039, 2.0099668, -1)
  expect_near(values(s.first_moment()), {-0.05, -0.3, 0.0});
  expect_near(values(s.second_moment()), {0.0025, 0.09, 0.0});
  expect_near(values(*s.global_model()), {1.0098039, 2.0099668, -1.0});
}

TEST_F(FedYogiTest, ThreeRoundsMatchReferenceAndBothSignBranches) {
  FedYogi s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  RefFedOpt ref(RefRule::kYogi, 0.9, 0.99, 1e-3, {1.0, 2.0, -1.0});
  for (int r = 0; r < 3; ++r) {
    ASSERT_TRUE(round(s, r));
    ref.step(0.01, weighted_mean(kDeltas[r], kExamples));
    SCOPED_TRACE("round " + std::to_string(r + 1));
    expect_near(values(s.first_moment()), ref.m);
    expect_near(values(s.second_moment()), ref.v, 1e-6);
    expect_near(values(*s.global_model()), ref.w);
  }
  // By hand, coordinate 0 of v: round 2, v = 0.0025 < 1 = Delta^2, so v grows:
  // 0.0025 + 0.01 * 1 = 0.0125; round 3, v = 0.0125 > 0.01 = Delta^2, so v shrinks:
  // 0.0125 - 0.01 * 0.01 = 0.0124. Coordinate 2: v = Delta^2 = 0, sign 0, stays 0.
  EXPECT_NEAR(values(s.second_moment())[0], 0.0124, 1e-7);
  EXPECT_EQ(values(s.second_moment())[2], 0.0f);
  EXPECT_EQ(values(*s.global_model())[2], -1.0f);
}

TEST_F(FedYogiTest, RoundWithoutUpdatesKeepsModelAndMoments) {
  FedYogi s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f, -1.0f})).ok());
  ASSERT_TRUE(round(s, 0));
  const auto w1 = values(*s.global_model());
  const auto m1 = values(s.first_moment());
  const auto v1 = values(s.second_moment());
  ASSERT_TRUE(testing::lose_round(host, s, {0, 1}));
  EXPECT_EQ(s.version(), 1);
  EXPECT_EQ(values(*s.global_model()), w1);
  EXPECT_EQ(values(s.first_moment()), m1);
  EXPECT_EQ(values(s.second_moment()), v1);
}

TEST(FedYogiOneClient, TakesOneStep) {
  FakeHost host;
  host.add_client(4, 12);
  FedYogi s;
  ASSERT_TRUE(s.start(&host, make_vector({0.5f})).ok());
  ASSERT_TRUE(run_round(host, s, {4}, {{2.0f}}, {12}));
  // m = 0.2, v = 0.01 * 4 = 0.04, w = 0.5 - 0.01 * 0.2 / (0.2 + 0.001) = 0.49004975
  EXPECT_NEAR(values(*s.global_model())[0], 0.49004975, 1e-6);
}

TEST(FedYogiCreate, DefaultsAndBadParams) {
  auto d = make_strategy("fedyogi", {});
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ((*d)->name(), "fedyogi");
  const FedOptOptions& o = dynamic_cast<FedYogi&>(**d).fedopt_options();
  EXPECT_EQ(o.server_lr, 0.01);
  EXPECT_EQ(o.beta_1, 0.9);
  EXPECT_EQ(o.beta_2, 0.99);
  EXPECT_EQ(o.tau, 1e-3);
  EXPECT_EQ(dynamic_cast<FedYogi&>(**d).rule(), FedOptRule::kYogi);

  EXPECT_EQ(make_strategy("fedyogi", {{"beta_2", int64_t{1}}}).error().message(),
            "strategy.beta_2: must be in [0, 1), got 1");
  EXPECT_EQ(make_strategy("fedyogi", {{"beta_1", 1.5}}).error().message(),
            "strategy.beta_1: must be in [0, 1), got 1.5");
  EXPECT_EQ(make_strategy("fedyogi", {{"tau", -1.0}}).error().message(),
            "strategy.tau: must be > 0, got -1");
}

}  // namespace
}  // namespace cohort
