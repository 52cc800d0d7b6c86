// The learning-rate schedule: its factors by hand (cosine, linear, warm-up), its parameters'
// errors, the tasks of a round strategy carrying the round's factor, and DiLoCo's outer target
// scaling the outer step instead (hand-computed).
#include "cohort/strategy/lr_schedule.h"

#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

#include "cohort/strategy/diloco.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/registry.h"
#include "cohort/strategy/task_config.h"
#include "testing/fake_host.h"
#include "testing/round_driver.h"

namespace cohort {
namespace {

using testing::FakeHost;
using testing::make_vector;
using testing::open_round;
using testing::run_round;
using testing::values;

TEST(LrScheduleTest, CosineFallsFromOneToTheMinimumOverTheDecayRounds) {
  const LrSchedule s{.kind = "cosine", .decay_rounds = 4, .warmup_rounds = 0, .min_factor = 0};
  EXPECT_DOUBLE_EQ(s.factor(1), 1.0);
  EXPECT_NEAR(s.factor(2), 0.5 * (1 + std::cos(std::numbers::pi / 4)), 1e-12);  // 0.8536
  EXPECT_NEAR(s.factor(3), 0.5, 1e-12);
  EXPECT_NEAR(s.factor(4), 0.5 * (1 + std::cos(3 * std::numbers::pi / 4)), 1e-12);  // 0.1464
  EXPECT_NEAR(s.factor(5), 0.0, 1e-12);
  EXPECT_NEAR(s.factor(50), 0.0, 1e-12);  // stays at the minimum
  EXPECT_DOUBLE_EQ(s.factor(0), 1.0);     // before the first round: the first round's
  EXPECT_FALSE(s.is_constant());
}

TEST(LrScheduleTest, LinearWithWarmupAndAFloor) {
  const LrSchedule s{.kind = "linear", .decay_rounds = 6, .warmup_rounds = 2, .min_factor = 0.1};
  // Warm-up 1/2, 2/2; then p = 0, 1/4, 2/4, 3/4, 1: 0.1 + 0.9 (1 - p).
  const std::vector<double> want = {0.5, 1.0, 1.0, 0.775, 0.55, 0.325, 0.1, 0.1};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(s.factor(static_cast<int64_t>(i) + 1), want[i], 1e-12) << "round " << i + 1;
  }
}

TEST(LrScheduleTest, ConstantIsOneAfterAnyWarmup) {
  EXPECT_TRUE(LrSchedule{}.is_constant());
  EXPECT_DOUBLE_EQ(LrSchedule{}.factor(7), 1.0);
  const LrSchedule s{.kind = "constant", .warmup_rounds = 3};
  EXPECT_FALSE(s.is_constant());
  EXPECT_NEAR(s.factor(1), 1.0 / 3, 1e-12);
  EXPECT_NEAR(s.factor(2), 2.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(s.factor(3), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(1000), 1.0);
}

TEST(LrScheduleTest, BadParametersAreNamed) {
  for (const auto& [params, msg] : std::vector<std::pair<ConfigRecord, std::string>>{
           {{{"lr_schedule", std::string("exp")}},
            "strategy.lr_schedule: unknown value 'exp' (known: constant, cosine, linear)"},
           {{{"lr_schedule", std::string("cosine")}},
            "strategy.lr_decay_rounds: must be > lr_warmup_rounds (0) with lr_schedule cosine"},
           {{{"lr_schedule", std::string("linear")},
             {"lr_decay_rounds", int64_t{5}},
             {"lr_warmup_rounds", int64_t{5}}},
            "strategy.lr_decay_rounds: must be > lr_warmup_rounds (5)"},
           {{{"lr_warmup_rounds", int64_t{-1}}}, "strategy.lr_warmup_rounds: must be >= 0"},
           {{{"lr_min_factor", 1.5}}, "strategy.lr_min_factor: must be in [0, 1], got 1.5"},
           {{{"lr_schedule_target", std::string("both")}},
            "strategy.lr_schedule_target: unknown value 'both' (known: inner, outer)"}}) {
    Result<std::unique_ptr<Strategy>> s = make_strategy("diloco", params);
    ASSERT_FALSE(s.ok()) << msg;
    EXPECT_NE(s.error().message().find(msg), std::string::npos) << s.error().message();
  }
  // fedavg reads the schedule too, and knows no lr_schedule_target.
  EXPECT_TRUE(make_strategy("fedavg", {{"lr_schedule", std::string("cosine")},
                                       {"lr_decay_rounds", int64_t{10}}})
                  .ok());
  EXPECT_FALSE(make_strategy("fedavg", {{"lr_schedule_target", std::string("outer")}}).ok());
}

TEST(LrScheduleTest, EachRoundsTasksCarryTheRoundsFactor) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 10);
  Result<std::unique_ptr<Strategy>> made =
      make_strategy("fedavg", {{"lr_schedule", std::string("cosine")},
                               {"lr_decay_rounds", int64_t{2}},
                               {"lr_min_factor", 0.2}});
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  Strategy& s = **made;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  // Round 1: factor 1; round 2: p = 1/2, 0.2 + 0.8 * 0.5 = 0.6; round 3 on: 0.2.
  for (const double want : {1.0, 0.6, 0.2, 0.2}) {
    std::vector<Task> tasks = open_round(host, s, {0, 1});
    ASSERT_EQ(tasks.size(), 2u);
    for (const Task& t : tasks) EXPECT_NEAR(*task_lr_scale(t.config), want, 1e-12);
    ASSERT_TRUE(s.on_update(testing::update_with_delta(tasks[0], {0.0f}, 10)).ok());
    ASSERT_TRUE(s.on_update(testing::update_with_delta(tasks[1], {0.0f}, 10)).ok());
  }
  // Without a schedule the tasks carry no scale (the trainer's 1).
  FedAvg plain;
  FakeHost host2;
  host2.add_client(0, 10);
  ASSERT_TRUE(plain.start(&host2, make_vector({0.0f})).ok());
  std::vector<Task> tasks = open_round(host2, plain, {0});
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].config.count(kLrScaleKey), 0u);
}

TEST(LrScheduleTest, DiLoCoOuterTargetScalesTheOuterStepNotTheTasks) {
  FakeHost host;
  host.add_client(0, 10);
  Result<std::unique_ptr<Strategy>> made =
      make_strategy("diloco", {{"outer_lr", 0.7},
                               {"outer_momentum", 0.0},
                               {"lr_schedule", std::string("cosine")},
                               {"lr_decay_rounds", int64_t{2}},
                               {"lr_schedule_target", std::string("outer")}});
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  Strategy& s = **made;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f})).ok());
  // Round 1 (factor 1): theta = 1 - 0.7 * 1 = 0.3. Round 2 (factor 0.5): 0.3 - 0.35 * 1.
  // Round 3 (factor 0): unchanged.
  ASSERT_TRUE(run_round(host, s, {0}, {{1.0f}}, {10}));
  EXPECT_NEAR(values(*s.global_model())[0], 0.3, 1e-6);
  std::vector<Task> tasks = open_round(host, s, {0});
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].config.count(kLrScaleKey), 0u);
  ASSERT_TRUE(s.on_update(testing::update_with_delta(tasks[0], {1.0f}, 10)).ok());
  EXPECT_NEAR(values(*s.global_model())[0], -0.05, 1e-6);
  ASSERT_TRUE(run_round(host, s, {0}, {{1.0f}}, {10}));
  EXPECT_NEAR(values(*s.global_model())[0], -0.05, 1e-6);

  // ddp's default target is the outer AdamW; plain diloco's the tasks (inner AdamW).
  Result<std::unique_ptr<Strategy>> ddp = make_strategy(
      "ddp", {{"lr_schedule", std::string("linear")}, {"lr_decay_rounds", int64_t{4}}});
  ASSERT_TRUE(ddp.ok());
  FakeHost host2;
  host2.add_client(0, 10);
  ASSERT_TRUE((*ddp)->start(&host2, make_vector({1.0f})).ok());
  EXPECT_EQ(open_round(host2, **ddp, {0})[0].config.count(kLrScaleKey), 0u);
  Result<std::unique_ptr<Strategy>> inner = make_strategy(
      "diloco", {{"lr_schedule", std::string("linear")}, {"lr_decay_rounds", int64_t{4}}});
  ASSERT_TRUE(inner.ok());
  FakeHost host3;
  host3.add_client(0, 10);
  ASSERT_TRUE((*inner)->start(&host3, make_vector({1.0f})).ok());
  EXPECT_DOUBLE_EQ(*task_lr_scale(open_round(host3, **inner, {0})[0].config), 1.0);
}

}  // namespace
}  // namespace cohort
