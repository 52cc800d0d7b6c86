// FedAST: which model each idle client trains, each model's buffered step, the adaptive shares
// and retiring a model at its target, against values computed by hand.
#include "cohort/strategy/fedast.h"

#include <gtest/gtest.h>

#include "cohort/strategy/task_config.h"
#include "testing/fake_host.h"

namespace cohort {
namespace {

using testing::deliver;
using testing::FakeHost;
using testing::task_of;
using testing::values;

// Two models end to end: a/w [2], b/w [1], all zero.
ArrayRecord two_models() {
  ArrayRecord r(*ArrayLayout::create({{"a/w", {2}}, {"b/w", {1}}}));
  return r;
}

int64_t model_of(const Task& t) { return task_model(t.config)->value_or(-1); }

TEST(FedAstTest, IdleClientsGoToTheModelFurthestBelowItsShare) {
  FakeHost host;
  for (int i = 0; i < 5; ++i) host.add_client(i, 10);
  FedAst s({.adaptive = false});
  ASSERT_TRUE(s.start(&host, two_models()).ok());
  for (int i = 0; i < 5; ++i) s.on_client_idle(i);
  ASSERT_EQ(host.dispatched.size(), 5u);
  // Shares 1/2 each: a (tie, lower index), b, a, b, a.
  std::vector<int64_t> got;
  for (const Task& t : host.dispatched) got.push_back(model_of(t));
  EXPECT_EQ(got, (std::vector<int64_t>{0, 1, 0, 1, 0}));
  EXPECT_EQ(s.active(), (std::vector<int64_t>{3, 2}));
  // A lost task frees its model's slot: the next idle client trains that model.
  s.on_task_lost(1, 0);
  EXPECT_EQ(s.active(), (std::vector<int64_t>{3, 1}));
}

TEST(FedAstTest, EachModelStepsWithItsOwnBufferUnweightedByStaleness) {
  FakeHost host;
  for (int i = 0; i < 3; ++i) host.add_client(i, 10);
  FedAst s({.buffer_size = 2, .server_lr = 1.0, .adaptive = false});
  ASSERT_TRUE(s.start(&host, two_models()).ok());
  for (int i = 0; i < 3; ++i) s.on_client_idle(i);
  Task a0 = task_of(host, 0), b1 = task_of(host, 1), a2 = task_of(host, 2);
  ASSERT_EQ(model_of(a0), 0);
  ASSERT_EQ(model_of(b1), 1);
  ASSERT_EQ(model_of(a2), 0);
  // b's update (delta -5 on b) waits in b's buffer: nothing committed.
  ASSERT_TRUE(deliver(host, s, b1, {0.0f, 0.0f, 5.0f}).ok());
  EXPECT_EQ(s.version(), 0);
  // a: deltas (-2, -4) and (-4, 0): theta_a = 0 - 1/2 (-6, -4) = (3, 2); b stays 0.
  ASSERT_TRUE(deliver(host, s, a0, {2.0f, 4.0f, 0.0f}).ok());
  EXPECT_EQ(s.version(), 0);
  ASSERT_TRUE(deliver(host, s, a2, {4.0f, 0.0f, 0.0f}).ok());
  EXPECT_EQ(s.version(), 1);
  EXPECT_EQ(values(*s.global_model()), (std::vector<float>{3.0f, 2.0f, 0.0f}));
  EXPECT_EQ(s.steps(), (std::vector<int64_t>{1, 0}));
  const Json& step = host.events.back();
  EXPECT_EQ(step["event"], "model_step");
  EXPECT_EQ(step["model"], "a");
  // b's second update comes from version 0 while the model is at 1 (staleness 1): not
  // weighted down. Deltas -5 and -1: theta_b = 0 - 1/2 (-6) = 3.
  Task b = task_of(host, 1);  // re-dispatched at version 0 before a's step
  ASSERT_EQ(model_of(b), 1);
  ASSERT_EQ(b.version, 0);
  ASSERT_TRUE(deliver(host, s, b, {0.0f, 0.0f, 1.0f}).ok());
  EXPECT_EQ(s.version(), 2);
  EXPECT_EQ(values(*s.global_model()), (std::vector<float>{3.0f, 2.0f, 3.0f}));
}

TEST(FedAstTest, SharesFollowTheNormalisedVarianceOfEachModelsUpdates) {
  FakeHost host;
  for (int i = 0; i < 2; ++i) host.add_client(i, 10);
  FedAst s({.buffer_size = 10, .adaptive = true, .window = 2, .realloc_every = 4,
            .min_share = 0.2});
  ASSERT_TRUE(s.start(&host, two_models()).ok());
  s.on_client_idle(0);  // a
  s.on_client_idle(1);  // b
  // a: the same delta twice (variance 0); b: deltas 1 and 3 (mean 2, spread 2:
  // v = 2 / (2 * 4) = 0.25).
  const std::vector<std::vector<float>> ends_a = {{-1, -1, 0}, {-1, -1, 0}};
  const std::vector<float> ends_b[2] = {{0, 0, -1}, {0, 0, -3}};
  for (int k = 0; k < 2; ++k) {
    Task ta = task_of(host, 0), tb = task_of(host, 1);
    ASSERT_EQ(model_of(ta), 0);
    ASSERT_EQ(model_of(tb), 1);
    ASSERT_TRUE(deliver(host, s, ta, ends_a[k]).ok());
    ASSERT_TRUE(deliver(host, s, tb, ends_b[k]).ok());
  }
  // Shares: a at the floor 0.2 / 2 = 0.1, b 0.25 / 0.25 = 1; normalised over 1.1.
  EXPECT_NEAR(s.shares()[0], 0.1 / 1.1, 1e-12);
  EXPECT_NEAR(s.shares()[1], 1.0 / 1.1, 1e-12);
  bool seen = false;
  for (const Json& e : host.events) {
    if (e["event"] == "allocation") {
      seen = true;
      EXPECT_NEAR(e["variance"]["b"].get<double>(), 0.25, 1e-12);
      EXPECT_EQ(e["variance"]["a"].get<double>(), 0.0);
    }
  }
  EXPECT_TRUE(seen);
}

TEST(FedAstTest, AModelAtItsTargetGetsNoMoreClientsUntilAllAre) {
  FakeHost host;
  for (int i = 0; i < 4; ++i) host.add_client(i, 10);
  FedAst s({.adaptive = false});
  ASSERT_TRUE(s.start(&host, two_models()).ok());
  EvalResult e;
  e.parts = {PartEval{.name = "a", .accuracy = 0.9, .reached_target = true},
             PartEval{.name = "b", .accuracy = 0.5}};
  s.on_evaluation(e);
  for (int i = 0; i < 3; ++i) s.on_client_idle(i);
  for (const Task& t : host.dispatched) EXPECT_EQ(model_of(t), 1);
  e.parts[1].reached_target = true;
  s.on_evaluation(e);
  s.on_client_idle(3);
  // Both done: both train again, a being furthest below its share.
  EXPECT_EQ(model_of(task_of(host, 3)), 0);
}

TEST(FedAstTest, OneModelTasksNameNoModel) {
  FakeHost host;
  host.add_client(0, 10);
  FedAst s({.buffer_size = 1, .adaptive = false});
  ASSERT_TRUE(s.start(&host, testing::make_vector({0.0f, 0.0f})).ok());
  s.on_client_idle(0);
  EXPECT_FALSE(task_model(task_of(host, 0).config)->has_value());
  ASSERT_TRUE(deliver(host, s, task_of(host, 0), {1.0f, 2.0f}).ok());
  EXPECT_EQ(values(*s.global_model()), (std::vector<float>{1.0f, 2.0f}));
}

TEST(FedAstTest, CheckpointsKeepEveryModelsBufferSharesAndTasks) {
  FakeHost host;
  for (int i = 0; i < 4; ++i) host.add_client(i, 10);
  FedAst a({.buffer_size = 3, .adaptive = true, .window = 2, .realloc_every = 2});
  ASSERT_TRUE(a.start(&host, two_models()).ok());
  for (int i = 0; i < 4; ++i) a.on_client_idle(i);
  ASSERT_TRUE(deliver(host, a, task_of(host, 0), {1.0f, 2.0f, 0.0f}).ok());
  ASSERT_TRUE(deliver(host, a, task_of(host, 1), {0.0f, 0.0f, 3.0f}).ok());
  ASSERT_TRUE(deliver(host, a, task_of(host, 2), {2.0f, 1.0f, 0.0f}).ok());
  StrategyState saved, copy, other;
  ASSERT_TRUE(a.save_state(&saved).ok());
  ASSERT_TRUE(a.save_state(&copy).ok());
  ASSERT_TRUE(a.save_state(&other).ok());
  EXPECT_GT(saved.scalars["buffer_count"].get<int64_t>(), 0);
  FedAst b({.buffer_size = 3, .adaptive = true, .window = 2, .realloc_every = 2});
  ASSERT_TRUE(b.start(&host, two_models()).ok());
  ASSERT_TRUE(b.restore_state(std::move(copy)).ok());
  EXPECT_EQ(b.shares(), a.shares());
  EXPECT_EQ(b.active(), a.active());
  StrategyState again;
  ASSERT_TRUE(b.save_state(&again).ok());
  EXPECT_EQ(again.scalars, saved.scalars);
  // Another set of models is refused.
  FedAst c({});
  ASSERT_TRUE(c.start(&host, testing::make_vector({0.0f, 0.0f, 0.0f})).ok());
  EXPECT_FALSE(c.restore_state(std::move(other)).ok());
}

TEST(FedAstTest, ParametersAreChecked) {
  ConfigRecord bad = {{"window", int64_t{1}}, {"min_share", 2.0}};
  StrategyParams p("fedast", bad);
  auto s = FedAst::create(p);
  EXPECT_EQ(p.finish().message(), "strategy.window: must be >= 2, got 1");
}

}  // namespace
}  // namespace cohort
