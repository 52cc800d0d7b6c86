#include "cohort/trainer/control_variates.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/fake_host.h"

namespace cohort {
namespace {

using ::testing::HasSubstr;
using testing::make_vector;

// A SCAFFOLD task for client 7 from model x with server control variate c.
Task scaffold_task(const std::vector<float>& x, const std::vector<float>& c) {
  Task t;
  t.client = 7;
  t.model = std::make_shared<const ArrayRecord>(make_vector(x));
  t.server_state = std::make_shared<const ArrayRecord>(make_vector(c));
  t.config[kClientStateKey] = std::string(kScaffoldClientState);
  return t;
}

void expect_values(const ArrayRecord& r, const std::vector<float>& want) {
  ASSERT_EQ(r.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(r.flat()[i], want[i]) << i;
}

TEST(ControlVariatesTest, TaskWithoutServerStateHasNoCorrectionAndNoState) {
  Task t;
  t.client = 1;
  t.model = std::make_shared<const ArrayRecord>(make_vector({1.0f}));
  ArrayRecord state;
  auto corr = client_state_correction(t, state);
  ASSERT_TRUE(corr.ok()) << corr.error().to_string();
  EXPECT_TRUE(corr->empty());
  EXPECT_TRUE(state.empty());  // nothing allocated for a stateless task
  auto up = update_client_state(t, state, make_vector({0.5f}), 3, TrainConfig{});
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  EXPECT_TRUE(up->next_state.empty());
  EXPECT_TRUE(up->state_delta.empty());
}

TEST(ControlVariatesTest, FirstTaskZeroInitialisesClientStateSoCorrectionIsC) {
  Task t = scaffold_task({1.0f, 2.0f}, {0.5f, -1.0f});
  ArrayRecord state;
  auto corr = client_state_correction(t, state);
  ASSERT_TRUE(corr.ok()) << corr.error().to_string();
  ASSERT_FALSE(state.empty());
  expect_values(state, {0.0f, 0.0f});
  expect_values(*corr, {0.5f, -1.0f});  // c - 0
}

TEST(ControlVariatesTest, CorrectionIsCMinusClientState) {
  Task t = scaffold_task({1.0f, 2.0f}, {0.5f, -1.0f});
  ArrayRecord state = make_vector({0.25f, 1.0f});
  auto corr = client_state_correction(t, state);
  ASSERT_TRUE(corr.ok()) << corr.error().to_string();
  expect_values(*corr, {0.25f, -2.0f});
  expect_values(state, {0.25f, 1.0f});  // unchanged
}

TEST(ControlVariatesTest, OptionTwoUpdateHandComputed) {
  // c = (0.5, -1), c_i = (0.25, 1), x - y = (0.8, -0.4), K = 4, lr = 0.1 (K lr = 0.4):
  //   (x - y) / (K lr) = (2, -1)
  //   Delta c_i = (2, -1) - c = (1.5, 0)
  //   c_i+ = c_i - c + (x - y) / (K lr) = (0.25 - 0.5 + 2, 1 + 1 - 1) = (1.75, 1)
  Task t = scaffold_task({1.0f, 2.0f}, {0.5f, -1.0f});
  ArrayRecord state = make_vector({0.25f, 1.0f});
  TrainConfig training;
  training.lr = 0.1;
  auto up = update_client_state(t, state, make_vector({0.8f, -0.4f}), 4, training);
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  expect_values(up->state_delta, {1.5f, 0.0f});
  expect_values(up->next_state, {1.75f, 1.0f});
  expect_values(state, {0.25f, 1.0f});  // the caller decides when to store c_i+

  // The task's "lr" overrides training.lr: K lr = 0.8, (x - y) / (K lr) = (1, -0.5),
  // Delta c_i = (0.5, 0.5), c_i+ = (0.75, 1.5).
  t.config["lr"] = 0.2;
  up = update_client_state(t, state, make_vector({0.8f, -0.4f}), 4, training);
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  expect_values(up->state_delta, {0.5f, 0.5f});
  expect_values(up->next_state, {0.75f, 1.5f});
}

TEST(ControlVariatesTest, NonTrainableArraysKeepZeroControlVariate) {
  auto layout = *ArrayLayout::create({{"w", {2}}, {"bn.running_mean", {1}, false}});
  auto record = [&](std::vector<float> v) {
    ArrayRecord r(layout);
    std::copy(v.begin(), v.end(), r.data());
    return r;
  };
  Task t;
  t.client = 3;
  t.model = std::make_shared<const ArrayRecord>(record({0.0f, 0.0f, 0.0f}));
  t.server_state = std::make_shared<const ArrayRecord>(record({1.0f, 1.0f, 0.0f}));
  t.config[kClientStateKey] = std::string(kScaffoldClientState);
  ArrayRecord state;
  ASSERT_TRUE(client_state_correction(t, state).ok());
  TrainConfig training;
  training.lr = 0.5;
  // K lr = 1: Delta c_i = (x - y) - c on "w"; 0 on the buffer despite its change of 4.
  auto up = update_client_state(t, state, record({3.0f, -1.0f, 4.0f}), 2, training);
  ASSERT_TRUE(up.ok()) << up.error().to_string();
  expect_values(up->state_delta, {2.0f, -2.0f, 0.0f});
  expect_values(up->next_state, {2.0f, -2.0f, 0.0f});
}

TEST(ControlVariatesTest, RuleErrorsNameTheClientAndTheRule) {
  ArrayRecord state;
  Task unknown = scaffold_task({1.0f}, {0.0f});
  unknown.config[kClientStateKey] = std::string("scaffold2");
  auto r = client_state_correction(unknown, state);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(),
            "task for client 7: task config 'client_state': unknown client-state rule "
            "'scaffold2' (known: scaffold)");
  EXPECT_TRUE(state.empty());

  Task no_rule = scaffold_task({1.0f}, {0.0f});
  no_rule.config.erase(kClientStateKey);
  r = client_state_correction(no_rule, state);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("carries server_state but task config "
                                             "'client_state' names no client-state rule"));

  Task no_state = scaffold_task({1.0f}, {0.0f});
  no_state.server_state = nullptr;
  r = client_state_correction(no_state, state);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("rule 'scaffold' needs the task's server_state"));

  Task not_string = scaffold_task({1.0f}, {0.0f});
  not_string.config[kClientStateKey] = int64_t{1};
  r = client_state_correction(not_string, state);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("'client_state' must be a string"));
  EXPECT_TRUE(state.empty());
}

TEST(ControlVariatesTest, LayoutAndHyperparameterErrors) {
  ArrayRecord state;
  Task mismatch = scaffold_task({1.0f, 2.0f}, {0.0f, 0.0f, 0.0f});
  auto r = client_state_correction(mismatch, state);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("task for client 7: server_state"));
  EXPECT_THAT(r.error().message(), HasSubstr("shape [3], expected [2]"));

  Task t = scaffold_task({1.0f, 2.0f}, {0.0f, 0.0f});
  ArrayRecord stale = make_vector({1.0f});
  r = client_state_correction(t, stale);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("task for client 7: stored client state"));

  ArrayRecord ok_state = make_vector({0.0f, 0.0f});
  TrainConfig training;
  auto u = update_client_state(t, ok_state, make_vector({1.0f}), 2, training);
  ASSERT_FALSE(u.ok());
  EXPECT_THAT(u.error().message(), HasSubstr("task for client 7: model delta"));

  u = update_client_state(t, ok_state, make_vector({1.0f, 1.0f}), 0, training);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(u.error().message(), HasSubstr("needs >= 1 local step, got 0"));

  t.config["lr"] = 0.0;
  u = update_client_state(t, ok_state, make_vector({1.0f, 1.0f}), 2, training);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(u.error().message(), HasSubstr("must be > 0, got 0"));
}

}  // namespace
}  // namespace cohort
