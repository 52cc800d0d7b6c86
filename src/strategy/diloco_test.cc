// DiLoCo's outer step by hand (Nesterov and heavy ball, equal and example weighting), the
// tasks it hands out (inner steps, inner optimizer, kept optimizer state), workers joining and
// leaving between rounds, the "ddp" baseline's outer AdamW step by hand, and bad parameters.
#include "cohort/strategy/diloco.h"

#include <gtest/gtest.h>

#include <cmath>

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
using testing::update_with_delta;
using testing::values;

void expect_near(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << "element " << i;
}

class DiLoCoRounds : public ::testing::Test {
 protected:
  void SetUp() override {
    host.add_client(0, 100);
    host.add_client(1, 300);
  }
  FakeHost host;
};

TEST_F(DiLoCoRounds, OuterNesterovStepHandComputed) {
  DiLoCo s;  // outer_lr 0.7, momentum 0.9, Nesterov, equal weighting
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, -1.0f})).ok());
  // Round 1: Delta = ((0.2, 0) + (0, 0.4)) / 2 = (0.1, 0.2) (equal weights, not 100:300).
  ASSERT_TRUE(run_round(host, s, {0, 1}, {{0.2f, 0.0f}, {0.0f, 0.4f}}, {100, 300}));
  // m1 = (0.1, 0.2); theta1 = theta0 - 0.7 (Delta + 0.9 m1) = (1, -1) - 0.7 (0.19, 0.38)
  //    = (0.867, -1.266)
  expect_near(values(s.outer_momentum_buffer()), {0.1, 0.2});
  expect_near(values(*s.global_model()), {0.867, -1.266});
  // Round 2: Delta = ((-0.1, 0.1) + (0.3, 0.1)) / 2 = (0.1, 0.1)
  ASSERT_TRUE(run_round(host, s, {0, 1}, {{-0.1f, 0.1f}, {0.3f, 0.1f}}, {100, 300}));
  // m2 = 0.9 (0.1, 0.2) + (0.1, 0.1) = (0.19, 0.28)
  // theta2 = (0.867, -1.266) - 0.7 ((0.1, 0.1) + 0.9 (0.19, 0.28))
  //        = (0.867, -1.266) - 0.7 (0.271, 0.352) = (0.6773, -1.5124)
  expect_near(values(s.outer_momentum_buffer()), {0.19, 0.28});
  expect_near(values(*s.global_model()), {0.6773, -1.5124});
  EXPECT_EQ(s.version(), 2);
}

TEST_F(DiLoCoRounds, HeavyBallAndExampleWeighting) {
  DiLoCoOptions o;
  o.outer_lr = 0.5;
  o.outer_momentum = 0.5;
  o.nesterov = false;
  o.weighting = "examples";
  DiLoCo s(o);
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  // Delta = (100 * 0.4 + 300 * 0.8) / 400 = 0.7; m = 0.7; theta = -0.5 * 0.7 = -0.35
  ASSERT_TRUE(run_round(host, s, {0, 1}, {{0.4f}, {0.8f}}, {100, 300}));
  expect_near(values(*s.global_model()), {-0.35});
  // Delta = 0.2; m = 0.5 * 0.7 + 0.2 = 0.55; theta = -0.35 - 0.5 * 0.55 = -0.625
  ASSERT_TRUE(run_round(host, s, {0, 1}, {{0.2f}, {0.2f}}, {100, 300}));
  expect_near(values(*s.global_model()), {-0.625});
}

TEST_F(DiLoCoRounds, TasksAskForInnerStepsOptimizerAndKeptState) {
  Result<std::unique_ptr<Strategy>> made =
      make_strategy("diloco", {{"inner_steps", int64_t{50}}, {"inner_lr", 4e-4}});
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  Strategy& s = **made;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  std::vector<Task> tasks = open_round(host, s, {0, 1});
  ASSERT_EQ(tasks.size(), 2u);
  for (const Task& t : tasks) {
    EXPECT_EQ(t.local_steps, 50);
    EXPECT_EQ(*task_optimizer(t.config), std::optional<std::string>("adamw"));
    EXPECT_TRUE(*task_keep_optimizer_state(t.config));
    EXPECT_DOUBLE_EQ(**task_lr(t.config), 4e-4);
  }
}

TEST_F(DiLoCoRounds, WorkersJoinAndLeaveBetweenRounds) {
  DiLoCo s;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  // Round 1 with workers 0 and 1; worker 1 is lost: the average is worker 0's alone.
  std::vector<Task> tasks = open_round(host, s, {0, 1});
  ASSERT_EQ(tasks.size(), 2u);
  ASSERT_TRUE(s.on_update(update_with_delta(tasks[0], {0.1f}, 100)).ok());
  s.on_task_lost(tasks[1].client, tasks[1].version);
  ASSERT_EQ(s.version(), 1);
  // theta1 = -0.7 (0.1 + 0.9 * 0.1) = -0.133
  expect_near(values(*s.global_model()), {-0.133});
  // Round 2: worker 2 joins, worker 1 is back; each starts from the current model.
  host.add_client(2, 50);
  tasks = open_round(host, s, {0, 1, 2});
  ASSERT_EQ(tasks.size(), 3u);
  for (const Task& t : tasks) {
    EXPECT_EQ(t.version, 1);
    EXPECT_EQ(values(*t.model), values(*s.global_model()));
  }
  // A late update of round 1 from worker 1 is not counted in round 2.
  Task stale = tasks[1];
  stale.version = 0;
  EXPECT_FALSE(s.on_update(update_with_delta(stale, {5.0f}, 100)).ok());
  for (const Task& t : tasks) ASSERT_TRUE(s.on_update(update_with_delta(t, {0.3f}, 100)).ok());
  // Delta = 0.3; m = 0.9 * 0.1 + 0.3 = 0.39; theta2 = -0.133 - 0.7 (0.3 + 0.9 * 0.39) = -0.5887
  expect_near(values(*s.global_model()), {-0.5887});
}

TEST_F(DiLoCoRounds, DdpTakesOneAdamWStepOnTheMeanGradient) {
  Result<std::unique_ptr<Strategy>> made =
      make_strategy("ddp", {{"outer_lr", 0.1}, {"outer_weight_decay", 0.5}});
  ASSERT_TRUE(made.ok()) << made.error().to_string();
  Strategy& s = **made;
  EXPECT_EQ(s.name(), "ddp");
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  std::vector<Task> tasks = open_round(host, s, {0, 1});
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].local_steps, 1);
  EXPECT_EQ(*task_optimizer(tasks[0].config), std::optional<std::string>("sgd"));
  EXPECT_DOUBLE_EQ(**task_lr(tasks[0].config), 1.0);
  EXPECT_DOUBLE_EQ(**task_weight_decay(tasks[0].config), 0.0);
  EXPECT_FALSE(*task_keep_optimizer_state(tasks[0].config));
  // g = ((0.2, -0.4) + (0.4, 0)) / 2 = (0.3, -0.2). AdamW step 1 (betas 0.9, 0.95, eps 1e-8):
  // theta *= 1 - 0.1 * 0.5 = 0.95 -> (0.95, 1.9); m = 0.1 g; v = 0.05 g^2;
  // m / (1 - 0.9) = g; sqrt(v / (1 - 0.95)) = |g|: theta -= 0.1 * sign(g)
  // -> (0.85, 2.0)
  ASSERT_TRUE(s.on_update(update_with_delta(tasks[0], {0.2f, -0.4f}, 10)).ok());
  ASSERT_TRUE(s.on_update(update_with_delta(tasks[1], {0.4f, 0.0f}, 30)).ok());
  expect_near(values(*s.global_model()), {0.85, 2.0});
}

TEST(DiLoCoParams, BadValuesAreNamed) {
  for (const auto& [key, value, msg] :
       std::vector<std::tuple<std::string, Scalar, std::string>>{
           {"outer_lr", 0.0, "outer_lr"},
           {"outer_momentum", 1.0, "outer_momentum"},
           {"inner_steps", int64_t{-1}, "inner_steps"},
           {"inner_optimizer", std::string("adam"), "inner_optimizer"},
           {"outer_optimizer", std::string("lamb"), "outer_optimizer"},
           {"weighting", std::string("speed"), "weighting"}}) {
    Result<std::unique_ptr<Strategy>> s = make_strategy("diloco", {{key, value}});
    ASSERT_FALSE(s.ok()) << key;
    EXPECT_NE(s.error().message().find(msg), std::string::npos) << s.error().message();
  }
  EXPECT_TRUE(make_strategy("diloco", {}).ok());
  EXPECT_TRUE(make_strategy("ddp", {}).ok());
}

}  // namespace
}  // namespace cohort
