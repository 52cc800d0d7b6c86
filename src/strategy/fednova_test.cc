#include "cohort/strategy/fednova.h"

#include <gtest/gtest.h>

#include "cohort/strategy/registry.h"
#include "testing/fake_host.h"
#include "testing/round_driver.h"

namespace cohort {
namespace {

using testing::FakeHost;
using testing::make_vector;
using testing::run_round;
using testing::values;

void expect_near(const std::vector<float>& got, const std::vector<double>& want,
                 double tol = 1e-5) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

TEST(FedNovaTest, UnequalStepsHandComputed) {
  FakeHost host;
  host.add_client(0, 100, /*steps=*/2);
  host.add_client(1, 300, /*steps=*/6);
  FedNova s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  ASSERT_TRUE(run_round(host, s, {0, 1}, {{2.0f, -2.0f}, {3.0f, 6.0f}}, {100, 300}));
  // p = (0.25, 0.75); normalised Delta_k / tau_k = (1, -1) and (0.5, 1);
  // sum p_k Delta_k / tau_k = (0.25 + 0.375, -0.25 + 0.75) = (0.625, 0.5)
  // tau_eff = 0.25 * 2 + 0.75 * 6 = 5
  // w = (1, 2) - 5 * (0.625, 0.5) = (-2.125, -0.5)
  // (FedAvg would give (1, 2) - (2.75, 4) = (-1.75, -2).)
  expect_near(values(*s.global_model()), {-2.125, -0.5});
}

TEST(FedNovaTest, ServerLrAndThreeClientsMatchFormula) {
  FakeHost host;
  const std::vector<int64_t> n = {10, 20, 70};
  const std::vector<int64_t> tau = {1, 4, 3};
  const std::vector<std::vector<float>> delta = {{1.0f, 0.5f}, {-2.0f, 4.0f}, {0.3f, -0.6f}};
  for (int k = 0; k < 3; ++k) host.add_client(k, n[k], tau[k]);
  FedNova s({.round = {}, .server_lr = 0.7});
  ASSERT_TRUE(s.start(&host, make_vector({0.25f, -1.0f})).ok());
  ASSERT_TRUE(run_round(host, s, {0, 1, 2}, delta, n));
  // Independent evaluation of w - lr * tau_eff * sum_k p_k Delta_k / tau_k in double.
  std::vector<double> want = {0.25, -1.0};
  double total = 0, tau_eff = 0;
  for (int k = 0; k < 3; ++k) total += static_cast<double>(n[k]);
  for (int k = 0; k < 3; ++k) tau_eff += static_cast<double>(n[k]) / total * tau[k];
  for (size_t i = 0; i < 2; ++i) {
    double avg = 0;
    for (int k = 0; k < 3; ++k) avg += static_cast<double>(n[k]) / total * delta[k][i] / tau[k];
    want[i] -= 0.7 * tau_eff * avg;
  }
  expect_near(values(*s.global_model()), want);
}

TEST(FedNovaTest, EqualStepsIsFedAvg) {
  FakeHost h1, h2;
  for (FakeHost* h : {&h1, &h2}) {
    h->add_client(0, 100, 3);
    h->add_client(1, 300, 3);
    h->add_client(2, 50, 3);
  }
  FedNova nova;
  FedAvg avg;
  ASSERT_TRUE(nova.start(&h1, make_vector({1.0f, -2.0f, 0.5f})).ok());
  ASSERT_TRUE(avg.start(&h2, make_vector({1.0f, -2.0f, 0.5f})).ok());
  const std::vector<std::vector<std::vector<float>>> rounds = {
      {{0.3f, 1.0f, -2.0f}, {0.1f, -0.5f, 0.25f}, {2.0f, 0.0f, 1.0f}},
      {{-1.0f, 0.5f, 0.5f}, {0.2f, 0.2f, -0.2f}, {0.0f, 3.0f, 0.0f}},
  };
  for (const auto& d : rounds) {
    ASSERT_TRUE(run_round(h1, nova, {0, 1, 2}, d, {100, 300, 50}));
    ASSERT_TRUE(run_round(h2, avg, {0, 1, 2}, d, {100, 300, 50}));
    auto a = values(*avg.global_model());
    expect_near(values(*nova.global_model()), {a[0], a[1], a[2]});
  }
}

TEST(FedNovaTest, OneClientTakesItsModel) {
  FakeHost host;
  host.add_client(5, 40, 7);
  FedNova s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 1.0f})).ok());
  // tau_eff = 7, sum = Delta / 7: w - Delta = the client's model.
  ASSERT_TRUE(run_round(host, s, {5}, {{3.5f, -7.0f}}, {40}));
  expect_near(values(*s.global_model()), {-2.5, 8.0});
}

TEST(FedNovaTest, ZeroStepsRejectedRoundUnaffected) {
  FakeHost host;
  host.add_client(0, 100, 0);
  host.add_client(1, 100, 2);
  FedNova s;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  auto tasks = testing::open_round(host, s, {0, 1});
  ASSERT_EQ(tasks.size(), 2u);
  Status bad = s.on_update(testing::update_with_delta(tasks[0], {9.0f}, 100));
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "update from client 0: fednova needs local_steps > 0, got 0");
  ASSERT_TRUE(s.on_update(testing::update_with_delta(tasks[1], {1.0f}, 100)).ok());
  // Only client 1: tau_eff = 2, avg = 0.5, w = 0 - 1 = -1.
  expect_near(values(*s.global_model()), {-1.0});
  EXPECT_EQ(host.events.back()["rejected"], 1);
}

TEST(FedNovaTest, RoundWithoutUpdatesKeepsModel) {
  FakeHost host;
  host.add_client(0, 10, 2);
  FedNova s;
  ASSERT_TRUE(s.start(&host, make_vector({4.0f})).ok());
  ASSERT_TRUE(testing::lose_round(host, s, {0}));
  EXPECT_EQ(s.version(), 0);
  EXPECT_EQ(values(*s.global_model()), std::vector<float>{4.0f});
  // The next round starts from clean accumulators.
  ASSERT_TRUE(run_round(host, s, {0}, {{1.0f}}, {10}));
  expect_near(values(*s.global_model()), {3.0});
}

TEST(FedNovaTest, MomentumNormalizer) {
  EXPECT_EQ(FedNova::normalizer(5, 0.0), 5.0);
  // rho = 0.5, tau = 3: sum_{s=0..2} (1 - rho^(3-s)) / (1 - rho)
  //   = (0.875 + 0.75 + 0.5) / 0.5 = 4.25
  EXPECT_DOUBLE_EQ(FedNova::normalizer(3, 0.5), 4.25);
  EXPECT_DOUBLE_EQ(FedNova::normalizer(1, 0.9), 1.0);

  FakeHost host;
  host.add_client(0, 10, 3);
  host.add_client(1, 30, 1);
  FedNova s({.round = {}, .local_momentum = 0.5});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  ASSERT_TRUE(run_round(host, s, {0, 1}, {{4.25f}, {2.0f}}, {10, 30}));
  // a = (4.25, 1); avg = 0.25 * 1 + 0.75 * 2 = 1.75; tau_eff = 0.25 * 4.25 + 0.75 = 1.8125
  // w = -1.75 * 1.8125 = -3.171875
  expect_near(values(*s.global_model()), {-3.171875});
}

TEST(FedNovaTest, CreateAndBadParams) {
  auto d = make_strategy("fednova", {{"server_lr", 0.5}, {"local_momentum", 0.9}});
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ((*d)->name(), "fednova");
  EXPECT_EQ(make_strategy("fednova", {{"local_momentum", int64_t{1}}}).error().message(),
            "strategy.local_momentum: must be in [0, 1), got 1");
  EXPECT_EQ(make_strategy("fednova", {{"server_lr", int64_t{0}}}).error().message(),
            "strategy.server_lr: must be > 0, got 0");
}

}  // namespace
}  // namespace cohort
