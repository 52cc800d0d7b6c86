#include "cohort/strategy/scaffold.h"

#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/strategy/task_config.h"
#include "testing/fake_host.h"

namespace cohort {
namespace {

using testing::FakeHost;
using ::testing::HasSubstr;
using testing::make_update;
using testing::make_vector;
using testing::values;

// An update from `task` ending at `end`, with control change `dc`.
Update scaffold_update(const Task& task, const std::vector<float>& end,
                       const std::vector<float>& dc, int64_t examples = 10) {
  Update u = make_update(task, end, examples);
  u.state_delta = make_vector(dc);
  return u;
}

// Replies for `task`: the client is idle again before its update arrives, as in a runtime.
Status reply(FakeHost& host, Scaffold& s, const Task& task, const std::vector<float>& end,
             const std::vector<float>& dc, int64_t examples = 10) {
  host.set_idle(task.client, true);
  return s.on_update(scaffold_update(task, end, dc, examples));
}

void expect_values(const ArrayRecord& r, const std::vector<float>& want) {
  ASSERT_EQ(r.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(r.flat()[i], want[i]) << i;
}

TEST(ScaffoldTest, TasksShareTheServerControlVariateAndNameTheRule) {
  FakeHost host;
  for (int i = 0; i < 3; ++i) host.add_client(i, 10);
  Scaffold s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  // c starts at zero with the model's layout.
  ASSERT_NE(s.control_variate(), nullptr);
  expect_values(*s.control_variate(), {0.0f, 0.0f});
  s.on_client_idle(0);
  auto tasks = host.take_tasks();
  ASSERT_EQ(tasks.size(), 3u);
  for (const Task& t : tasks) {
    // One shared record, not a copy per task.
    EXPECT_EQ(t.server_state.get(), s.control_variate().get());
    EXPECT_EQ(std::get<std::string>(t.config.at(kClientStateKey)), kScaffoldClientState);
    EXPECT_EQ(t.model.get(), s.global_model().get());
  }
}

// N = 4 clients, half sampled per round (|S| = 2 < N), uniform weighting, two rounds.
TEST(ScaffoldTest, TwoRoundsOfPartialParticipationHandComputed) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 300);
  host.add_client(2, 50);
  host.add_client(3, 50);
  Scaffold s({.round = {.fraction = 0.5, .min_clients = 1}, .server_lr = 0.5});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  s.on_client_idle(0);
  auto r1 = host.take_tasks();
  ASSERT_EQ(r1.size(), 2u);
  std::shared_ptr<const ArrayRecord> c0 = s.control_variate();

  // Round 1 from x = (1, 2): Delta_a = x - (3, 2) = (-2, 0), Delta_b = x - (1, 6) = (0, -4).
  //   x <- x - 0.5 * mean = (1, 2) - 0.5 * (-1, -2) = (1.5, 3)   (uniform: examples ignored)
  //   c <- 0 + (1/4) ((0.4, -0.8) + (1.2, 0.4)) = (0.4, -0.1)
  ASSERT_TRUE(reply(host, s, r1[0], {3.0f, 2.0f}, {0.4f, -0.8f}).ok());
  EXPECT_TRUE(host.commits.empty());
  ASSERT_TRUE(reply(host, s, r1[1], {1.0f, 6.0f}, {1.2f, 0.4f}).ok());
  ASSERT_EQ(host.commits, std::vector<ModelVersion>{1});
  expect_values(*s.global_model(), {1.5f, 3.0f});
  expect_values(*s.control_variate(), {0.4f, -0.1f});
  // The round-1 tasks still hold the c they were sent.
  EXPECT_EQ(r1[0].server_state.get(), c0.get());
  expect_values(*r1[0].server_state, {0.0f, 0.0f});

  // Round 2 started at once with the new model and the new c.
  auto r2 = host.take_tasks();
  ASSERT_EQ(r2.size(), 2u);
  EXPECT_EQ(r2[0].version, 1);
  EXPECT_EQ(r2[0].server_state.get(), s.control_variate().get());
  // From x = (1.5, 3): Delta = x - (0.5, 2) = (1, 1) and x - (-1.5, 4) = (3, -1); mean (2, 0).
  //   x <- (1.5, 3) - 0.5 * (2, 0) = (0.5, 3)
  //   c <- (0.4, -0.1) + (1/4) ((0.4, 0.4) + (-0.8, 0)) = (0.3, 0)
  ASSERT_TRUE(reply(host, s, r2[0], {0.5f, 2.0f}, {0.4f, 0.4f}).ok());
  ASSERT_TRUE(reply(host, s, r2[1], {-1.5f, 4.0f}, {-0.8f, 0.0f}).ok());
  ASSERT_EQ(host.commits, (std::vector<ModelVersion>{1, 2}));
  expect_values(*s.global_model(), {0.5f, 3.0f});
  const auto c2 = values(*s.control_variate());
  EXPECT_NEAR(c2[0], 0.3f, 1e-7);
  EXPECT_NEAR(c2[1], 0.0f, 1e-7);
}

TEST(ScaffoldTest, ExampleWeightingMatchesFedAvgModelAndKeepsUniformControlUpdate) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 300);
  Scaffold s({.round = {}, .weight_by_examples = true});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  s.on_client_idle(0);
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 2u);
  // Client 0 (100 examples) ends at (3, 2), client 1 (300) at (1, 6): the FedAvg mean (1.5, 5).
  ASSERT_TRUE(reply(host, s, t[0], {3.0f, 2.0f}, {1.0f, 0.0f}, 100).ok());
  ASSERT_TRUE(reply(host, s, t[1], {1.0f, 6.0f}, {0.0f, 2.0f}, 300).ok());
  expect_values(*s.global_model(), {1.5f, 5.0f});
  // c = (1/2) ((1, 0) + (0, 2)): not weighted by examples.
  expect_values(*s.control_variate(), {0.5f, 1.0f});
}

TEST(ScaffoldTest, ControlVariateDividesByAllClientsNotTheReceivedOnes) {
  FakeHost host;
  for (int i = 0; i < 5; ++i) host.add_client(i, 10);
  Scaffold s;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 5u);
  // Three of five reply, two are lost: mean Delta over the three, c over N = 5.
  ASSERT_TRUE(reply(host, s, t[0], {1.0f}, {1.0f}).ok());
  ASSERT_TRUE(reply(host, s, t[1], {2.0f}, {2.0f}).ok());
  ASSERT_TRUE(reply(host, s, t[2], {6.0f}, {7.0f}).ok());
  s.on_task_lost(t[3].client, 0);
  s.on_task_lost(t[4].client, 0);
  ASSERT_EQ(host.commits, std::vector<ModelVersion>{1});
  expect_values(*s.global_model(), {3.0f});     // 0 - mean(-1, -2, -6)
  expect_values(*s.control_variate(), {2.0f});  // (1 + 2 + 7) / 5
}

TEST(ScaffoldTest, RejectsMissingWrongLayoutOrNonFiniteStateDelta) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 10);
  host.add_client(2, 10);
  host.add_client(3, 10);
  Scaffold s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 1.0f})).ok());
  s.on_client_idle(0);
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 4u);

  Update empty = make_update(t[0], {2.0f, 2.0f}, 10);  // no state_delta
  Status e = s.on_update(std::move(empty));
  EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(e.message(), HasSubstr("update from client " + std::to_string(t[0].client)));
  EXPECT_THAT(e.message(), HasSubstr("state_delta is empty"));

  Status wrong = s.on_update(scaffold_update(t[1], {2.0f, 2.0f}, {1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(wrong.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.message(),
              HasSubstr("update from client " + std::to_string(t[1].client) + ": state_delta"));
  EXPECT_THAT(wrong.message(), HasSubstr("shape [3], expected [2]"));

  const float nan = std::numeric_limits<float>::quiet_NaN();
  Status bad = s.on_update(scaffold_update(t[2], {2.0f, 2.0f}, {0.0f, nan}));
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(),
              HasSubstr("update from client " + std::to_string(t[2].client) + ": state_delta"));

  // Only the valid update counts: x = (1, 1) - ((1, 1) - (3, 5)), c = (4, 8) / 4.
  ASSERT_TRUE(s.on_update(scaffold_update(t[3], {3.0f, 5.0f}, {4.0f, 8.0f})).ok());
  ASSERT_EQ(host.commits, std::vector<ModelVersion>{1});
  expect_values(*s.global_model(), {3.0f, 5.0f});
  expect_values(*s.control_variate(), {1.0f, 2.0f});
  EXPECT_EQ(host.events.back()["rejected"], 3);
}

TEST(ScaffoldTest, RoundWithoutUpdatesKeepsModelAndControlVariate) {
  FakeHost host;
  host.add_client(0, 10);
  Scaffold s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f})).ok());
  s.on_client_idle(0);
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 1u);
  const ArrayRecord* c_before = s.control_variate().get();
  host.set_idle(0, true);
  s.on_task_lost(0, 0);
  EXPECT_TRUE(host.commits.empty());
  EXPECT_EQ(s.control_variate().get(), c_before);
  expect_values(*s.global_model(), {1.0f});
}

TEST(ScaffoldTest, RegistryBuildsItAndChecksParameters) {
  auto ok = make_strategy("scaffold", {{"server_lr", 0.5},
                                       {"weighting", std::string("examples")},
                                       {"fraction", 0.2},
                                       {"min_clients", int64_t{3}}});
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_EQ((*ok)->name(), "scaffold");

  auto lr = make_strategy("scaffold", {{"server_lr", 0.0}});
  ASSERT_FALSE(lr.ok());
  EXPECT_EQ(lr.error().message(), "strategy.server_lr: must be > 0, got 0");

  auto w = make_strategy("scaffold", {{"weighting", std::string("median")}});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().message(),
            "strategy.weighting: unknown value 'median' (known: uniform, examples)");

  auto unknown = make_strategy("scaffold", {{"server_lrr", 1.0}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.error().message(),
              HasSubstr("strategy.server_lrr: unknown parameter for scaffold"));
}

}  // namespace
}  // namespace cohort
