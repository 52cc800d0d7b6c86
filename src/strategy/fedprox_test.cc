#include "cohort/strategy/fedprox.h"

#include <gtest/gtest.h>

#include "cohort/strategy/registry.h"
#include "testing/fake_host.h"
#include "testing/round_driver.h"

namespace cohort {
namespace {

using testing::FakeHost;
using testing::make_vector;
using testing::values;

double task_mu(const Task& t) {
  auto it = t.config.find("prox_mu");
  if (it == t.config.end()) return -1.0;
  return std::get<double>(it->second);
}

TEST(FedProxTest, EveryTaskCarriesProxMu) {
  FakeHost host;
  for (int i = 0; i < 4; ++i) host.add_client(i, 10);
  FedProx s({.round = {.fraction = 0.5, .min_clients = 1}, .mu = 0.25});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  auto tasks = host.take_tasks();
  ASSERT_EQ(tasks.size(), 2u);
  for (const Task& t : tasks) EXPECT_EQ(task_mu(t), 0.25);
  // And in the next round too.
  for (const Task& t : tasks) {
    ASSERT_TRUE(s.on_update(testing::update_with_delta(t, {1.0f}, 10)).ok());
  }
  auto next = host.take_tasks();
  ASSERT_EQ(next.size(), 1u);  // half of the two clients that stayed idle
  for (const Task& t : next) EXPECT_EQ(task_mu(t), 0.25);
}

TEST(FedProxTest, ServerSideIsFedAvg) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 300);
  FedProx s({.round = {}, .server_lr = 0.5});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  // Delta_bar = (100 * (-2, 0) + 300 * (0, -4)) / 400 = (-0.5, -3);
  // w = (1, 2) - 0.5 * (-0.5, -3) = (1.25, 3.5).
  ASSERT_TRUE(testing::run_round(host, s, {0, 1}, {{-2.0f, 0.0f}, {0.0f, -4.0f}}, {100, 300}));
  auto w = values(*s.global_model());
  EXPECT_FLOAT_EQ(w[0], 1.25f);
  EXPECT_FLOAT_EQ(w[1], 3.5f);
}

TEST(FedProxTest, CreateReadsMuWithDefault) {
  auto d = make_strategy("fedprox", {});
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ((*d)->name(), "fedprox");
  EXPECT_EQ(dynamic_cast<FedProx&>(**d).mu(), 0.01);

  auto s = make_strategy("fedprox", {{"mu", 0.1}, {"fraction", 0.5}});
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(dynamic_cast<FedProx&>(**s).mu(), 0.1);
  EXPECT_EQ(dynamic_cast<FedProx&>(**s).round_options().fraction, 0.5);
  // mu = 0 is allowed (plain FedAvg).
  EXPECT_TRUE(make_strategy("fedprox", {{"mu", int64_t{0}}}).ok());
}

TEST(FedProxTest, BadParamsNameTheKey) {
  EXPECT_EQ(make_strategy("fedprox", {{"mu", -1.0}}).error().message(),
            "strategy.mu: must be >= 0, got -1");
  EXPECT_EQ(make_strategy("fedprox", {{"mu", std::string("big")}}).error().message(),
            "strategy.mu: expected a number, got 'big'");
  EXPECT_EQ(make_strategy("fedprox", {{"proximal_mu", 0.1}}).error().message(),
            "strategy.proximal_mu: unknown parameter for fedprox (known: fraction, "
            "lr_decay_rounds, lr_min_factor, "
            "lr_schedule, lr_warmup_rounds, "
            "min_clients, mu, round_deadline_s, server_lr)");
}

}  // namespace
}  // namespace cohort
