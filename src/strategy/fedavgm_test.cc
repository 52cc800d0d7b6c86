#include "cohort/strategy/fedavgm.h"

#include <gtest/gtest.h>

#include "cohort/strategy/registry.h"
#include "testing/fake_host.h"
#include "testing/round_driver.h"

namespace cohort {
namespace {

using testing::FakeHost;
using testing::lose_round;
using testing::make_vector;
using testing::run_round;
using testing::values;

void expect_near(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << "element " << i;
}

// Two clients with 100 and 300 examples, so Delta_bar = (Delta_0 + 3 Delta_1) / 4.
class FedAvgMRounds : public ::testing::Test {
 protected:
  void SetUp() override {
    host.add_client(0, 100);
    host.add_client(1, 300);
  }
  bool round1(Strategy& s) {
    // Delta_bar = ((-2, 0) + 3 (0, -4)) / 4 = (-0.5, -3)
    return run_round(host, s, {0, 1}, {{-2.0f, 0.0f}, {0.0f, -4.0f}}, {100, 300});
  }
  bool round2(Strategy& s) {
    // Delta_bar = ((1, 1) + 3 (1, -1)) / 4 = (1, -0.5)
    return run_round(host, s, {0, 1}, {{1.0f, 1.0f}, {1.0f, -1.0f}}, {100, 300});
  }
  bool round3(Strategy& s) {
    // Delta_bar = ((0, 2) + 3 (0, 2)) / 4 = (0, 2)
    return run_round(host, s, {0, 1}, {{0.0f, 2.0f}, {0.0f, 2.0f}}, {100, 300});
  }
  FakeHost host;
};

TEST_F(FedAvgMRounds, MomentumAccumulatesHandComputed) {
  FedAvgM s({.round = {}, .server_lr = 0.5, .server_momentum = 0.9});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  EXPECT_EQ(values(s.momentum_buffer()), (std::vector<float>{0.0f, 0.0f}));

  ASSERT_TRUE(round1(s));
  // v1 = 0.9 * 0 + (-0.5, -3) = (-0.5, -3)  (Flower: v = Delta_bar on the first round)
  // w1 = (1, 2) - 0.5 * (-0.5, -3) = (1.25, 3.5)
  expect_near(values(s.momentum_buffer()), {-0.5, -3.0});
  expect_near(values(*s.global_model()), {1.25, 3.5});

  ASSERT_TRUE(round2(s));
  // v2 = 0.9 * (-0.5, -3) + (1, -0.5) = (0.55, -3.2)
  // w2 = (1.25, 3.5) - 0.5 * (0.55, -3.2) = (0.975, 5.1)
  expect_near(values(s.momentum_buffer()), {0.55, -3.2});
  expect_near(values(*s.global_model()), {0.975, 5.1});

  ASSERT_TRUE(round3(s));
  // v3 = 0.9 * (0.55, -3.2) + (0, 2) = (0.495, -0.88)
  // w3 = (0.975, 5.1) - 0.5 * (0.495, -0.88) = (0.7275, 5.54)
  expect_near(values(s.momentum_buffer()), {0.495, -0.88});
  expect_near(values(*s.global_model()), {0.7275, 5.54});
  EXPECT_EQ(s.version(), 3);
}

TEST_F(FedAvgMRounds, RoundWithoutUpdatesKeepsModelAndMomentum) {
  FedAvgM s({.round = {}, .server_lr = 0.5, .server_momentum = 0.9});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  ASSERT_TRUE(round1(s));
  ASSERT_TRUE(lose_round(host, s, {0, 1}));
  EXPECT_EQ(s.current_round(), 2);
  EXPECT_EQ(s.version(), 1);
  expect_near(values(s.momentum_buffer()), {-0.5, -3.0});
  expect_near(values(*s.global_model()), {1.25, 3.5});
  // The next aggregation decays v once, not twice: same numbers as round 2 above.
  ASSERT_TRUE(round2(s));
  expect_near(values(s.momentum_buffer()), {0.55, -3.2});
  expect_near(values(*s.global_model()), {0.975, 5.1});
}

TEST_F(FedAvgMRounds, NoMomentumUnitLrIsFedAvg) {
  FedAvgM m({.round = {}, .server_lr = 1.0, .server_momentum = 0.0});
  FakeHost host2;
  host2.add_client(0, 100);
  host2.add_client(1, 300);
  FedAvg a;
  ASSERT_TRUE(m.start(&host, make_vector({1.0f, 2.0f})).ok());
  ASSERT_TRUE(a.start(&host2, make_vector({1.0f, 2.0f})).ok());
  ASSERT_TRUE(round1(m));
  ASSERT_TRUE(round2(m));
  ASSERT_TRUE(run_round(host2, a, {0, 1}, {{-2.0f, 0.0f}, {0.0f, -4.0f}}, {100, 300}));
  ASSERT_TRUE(run_round(host2, a, {0, 1}, {{1.0f, 1.0f}, {1.0f, -1.0f}}, {100, 300}));
  EXPECT_EQ(values(*m.global_model()), values(*a.global_model()));
  // (1, 2) - (-0.5, -3) - (1, -0.5) = (0.5, 5.5)
  expect_near(values(*m.global_model()), {0.5, 5.5});
}

TEST(FedAvgMTest, OneClient) {
  FakeHost host;
  host.add_client(3, 7);
  FedAvgM s({.round = {}, .server_lr = 1.0, .server_momentum = 0.5});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f})).ok());
  // v1 = 2, w1 = 1 - 2 = -1; v2 = 0.5 * 2 + 1 = 2, w2 = -1 - 2 = -3.
  ASSERT_TRUE(run_round(host, s, {3}, {{2.0f}}, {7}));
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], -1.0f);
  ASSERT_TRUE(run_round(host, s, {3}, {{1.0f}}, {7}));
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], -3.0f);
}

TEST(FedAvgMTest, CreateDefaultsAndBadParams) {
  auto d = make_strategy("fedavgm", {});
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ((*d)->name(), "fedavgm");
  EXPECT_EQ(dynamic_cast<FedAvgM&>(**d).server_momentum(), 0.9);
  auto s = make_strategy("fedavgm", {{"server_momentum", 0.0}, {"server_lr", 0.7}});
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(dynamic_cast<FedAvgM&>(**s).server_momentum(), 0.0);

  EXPECT_EQ(make_strategy("fedavgm", {{"server_momentum", int64_t{1}}}).error().message(),
            "strategy.server_momentum: must be in [0, 1), got 1");
  EXPECT_EQ(make_strategy("fedavgm", {{"server_momentum", -0.5}}).error().message(),
            "strategy.server_momentum: must be in [0, 1), got -0.5");
  EXPECT_EQ(make_strategy("fedavgm", {{"server_lr", 0.0}}).error().message(),
            "strategy.server_lr: must be > 0, got 0");
  EXPECT_EQ(make_strategy("fedavgm", {{"momentum", 0.9}}).error().message(),
            "strategy.momentum: unknown parameter for fedavgm (known: fraction, lr_decay_rounds, "
            "lr_min_factor, "
            "lr_schedule, lr_warmup_rounds, min_clients, "
            "round_deadline_s, server_lr, server_momentum)");
}

}  // namespace
}  // namespace cohort
