#include "cohort/strategy/fedavg.h"

#include <gtest/gtest.h>

#include "testing/fake_host.h"

namespace cohort {
namespace {

using testing::FakeHost;
using testing::make_update;
using testing::make_vector;
using testing::values;

TEST(FedAvgTest, WeightedMeanOfSampledClientsHandComputed) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 300);
  FedAvg s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 2.0f})).ok());
  s.on_client_idle(0);
  auto tasks = host.take_tasks();
  ASSERT_EQ(tasks.size(), 2u);  // fraction 1.0: both clients
  EXPECT_EQ(tasks[0].version, 0);
  // Client 0 ends at (3, 2), client 1 at (1, 6): mean weighted 1:3 = (1.5, 5).
  ASSERT_TRUE(s.on_update(make_update(tasks[0], {3.0f, 2.0f}, 100)).ok());
  EXPECT_TRUE(host.commits.empty());  // round still waiting for client 1
  ASSERT_TRUE(s.on_update(make_update(tasks[1], {1.0f, 6.0f}, 300)).ok());
  ASSERT_EQ(host.commits, std::vector<ModelVersion>{1});
  EXPECT_EQ(s.version(), 1);
  auto w = values(*s.global_model());
  EXPECT_FLOAT_EQ(w[0], 1.5f);
  EXPECT_FLOAT_EQ(w[1], 5.0f);
}

TEST(FedAvgTest, SamplesFractionWithMinimum) {
  FakeHost host;
  for (int i = 0; i < 10; ++i) host.add_client(i, 10);
  FedAvg s({.round = {.fraction = 0.3, .min_clients = 2}});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  EXPECT_EQ(host.take_tasks().size(), 3u);

  FakeHost host2;
  for (int i = 0; i < 10; ++i) host2.add_client(i, 10);
  FedAvg s2({.round = {.fraction = 0.05, .min_clients = 2}});
  ASSERT_TRUE(s2.start(&host2, make_vector({0.0f})).ok());
  s2.on_client_idle(0);
  EXPECT_EQ(host2.take_tasks().size(), 2u);
}

TEST(FedAvgTest, WaitsForMinClients) {
  FakeHost host;
  host.add_client(0, 10);
  FedAvg s({.round = {.fraction = 1.0, .min_clients = 2}});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  EXPECT_TRUE(host.dispatched.empty());
  host.add_client(1, 10);
  s.on_client_idle(1);
  EXPECT_EQ(host.dispatched.size(), 2u);
}

TEST(FedAvgTest, OneClientTakesItsModel) {
  FakeHost host;
  host.add_client(7, 5);
  FedAvg s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f, 1.0f})).ok());
  s.on_client_idle(7);
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 1u);
  ASSERT_TRUE(s.on_update(make_update(t[0], {4.0f, -2.0f}, 5)).ok());
  EXPECT_EQ(values(*s.global_model()), (std::vector<float>{4.0f, -2.0f}));
}

TEST(FedAvgTest, AllTasksLostKeepsModelAndStartsNextRound) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 10);
  FedAvg s;
  ASSERT_TRUE(s.start(&host, make_vector({1.0f})).ok());
  s.on_client_idle(0);
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 2u);
  s.on_task_lost(0, 0);
  host.set_idle(0, true);
  s.on_task_lost(1, 0);
  EXPECT_TRUE(host.commits.empty());
  EXPECT_EQ(s.version(), 0);
  EXPECT_EQ(values(*s.global_model()), std::vector<float>{1.0f});
  ASSERT_FALSE(host.events.empty());
  EXPECT_EQ(host.events.back()["received"], 0);
  EXPECT_EQ(host.events.back()["lost"], 2);
  // Client 0 was idle again, so round 2 started with it.
  EXPECT_EQ(s.current_round(), 2);
  EXPECT_EQ(host.take_tasks().size(), 1u);
}

TEST(FedAvgTest, DeadlineClosesRoundAndLateUpdateIsRejected) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 30);
  FedAvg s({.round = {.fraction = 1.0, .min_clients = 1, .round_deadline_s = 5.0}});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  auto t = host.take_tasks();
  ASSERT_EQ(host.timers.size(), 1u);
  TimerId deadline = host.timers.begin()->first;
  ASSERT_TRUE(s.on_update(make_update(t[0], {2.0f}, 10)).ok());
  s.on_timer(deadline);
  ASSERT_EQ(host.commits.size(), 1u);
  EXPECT_EQ(values(*s.global_model()), std::vector<float>{2.0f});
  EXPECT_EQ(host.events.back()["timed_out"], 1);
  Status late = s.on_update(make_update(t[1], {100.0f}, 30));
  EXPECT_EQ(late.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.late_updates(), 1);
  EXPECT_EQ(values(*s.global_model()), std::vector<float>{2.0f});
}

TEST(FedAvgTest, BadUpdatesRejectedOthersKept) {
  FakeHost host;
  for (int i = 0; i < 4; ++i) host.add_client(i, 10);
  FedAvg s;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f, 0.0f})).ok());
  s.on_client_idle(0);
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 4u);
  // Wrong shape.
  Update wrong;
  wrong.client = 0;
  wrong.base_version = 0;
  wrong.delta = make_vector({1.0f, 2.0f, 3.0f});
  wrong.num_examples = 10;
  Status s0 = s.on_update(std::move(wrong));
  EXPECT_EQ(s0.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s0.message().find("shape"), std::string::npos);
  // NaN.
  Status s1 = s.on_update(make_update(t[1], {NAN, 0.0f}, 10));
  EXPECT_EQ(s1.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s1.message().find("NaN"), std::string::npos);
  // Zero examples.
  Status s2 = s.on_update(make_update(t[2], {1.0f, 1.0f}, 0));
  EXPECT_EQ(s2.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s2.message().find("num_examples"), std::string::npos);
  // The good one alone defines the new model.
  ASSERT_TRUE(s.on_update(make_update(t[3], {3.0f, -1.0f}, 10)).ok());
  EXPECT_EQ(values(*s.global_model()), (std::vector<float>{3.0f, -1.0f}));
  EXPECT_EQ(host.events.back()["rejected"], 3);
}

TEST(FedAvgTest, RejectsEmptyInitialModel) {
  FakeHost host;
  FedAvg s;
  EXPECT_EQ(s.start(&host, ArrayRecord()).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
