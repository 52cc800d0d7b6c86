// The public harness drives registered strategies by name, as a user's test would.
#include "cohort/strategy/harness.h"

#include <gtest/gtest.h>

#include "cohort/strategy/registry.h"

namespace cohort::harness {
namespace {

TEST(HarnessTest, FedAvgRoundByNameHandComputed) {
  ManualHost host;
  for (ClientId c = 0; c < 3; ++c) host.add_client(c, 100);
  Result<std::unique_ptr<Strategy>> s = make_strategy("fedavg", {});
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  ASSERT_TRUE((*s)->start(&host, make_vector({0.0f, 0.0f})).ok());
  std::vector<Task> tasks = open_round(host, **s, {0, 1, 2});
  ASSERT_EQ(tasks.size(), 3u);
  // Deltas (1, -2), (2, 0), (3, 2) with 100, 100, 200 examples: weighted mean (2.25, 0.5);
  // server lr 1: the model moves to -(2.25, 0.5).
  const std::vector<std::vector<float>> d = {{1, -2}, {2, 0}, {3, 2}};
  const std::vector<int64_t> n = {100, 100, 200};
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(deliver_delta(host, **s, tasks[i], d[i], n[i]).ok());
  EXPECT_EQ(host.commits, std::vector<ModelVersion>{1});
  EXPECT_EQ(values(*(*s)->global_model()), (std::vector<float>{-2.25f, -0.5f}));
  // The clients became idle again and the next round opened with all three.
  EXPECT_EQ(host.take_tasks().size(), 3u);
}

TEST(HarnessTest, RejectedUpdateIsLeftOutOfTheRound) {
  ManualHost host;
  host.add_client(4, 10);
  host.add_client(9, 10);
  EXPECT_EQ(host.client_ids(), (std::vector<ClientId>{4, 9}));
  Result<std::unique_ptr<Strategy>> s = make_strategy("fedavg", {});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->start(&host, make_vector({1.0f})).ok());
  std::vector<Task> tasks = open_round(host, **s, {4, 9});
  ASSERT_EQ(tasks.size(), 2u);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(deliver_delta(host, **s, tasks[0], std::vector<float>{nan}, 10).ok());
  EXPECT_TRUE(host.commits.empty());
  // Client 4's task is settled by its rejection: client 9's update closes the round alone.
  ASSERT_TRUE(deliver_delta(host, **s, tasks[1], std::vector<float>{0.5f}, 10).ok());
  EXPECT_EQ(host.commits, std::vector<ModelVersion>{1});
  EXPECT_EQ(values(*(*s)->global_model()), std::vector<float>{0.5f});
}

}  // namespace
}  // namespace cohort::harness
