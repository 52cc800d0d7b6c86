#include "cohort/data/shards.h"

#include <algorithm>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cohort {
namespace {

std::shared_ptr<const Dataset> labelled(int64_t n, int64_t classes) {
  auto d = std::make_shared<Dataset>();
  d->name = "toy";
  d->sample_shape = {1};
  d->num_classes = classes;
  for (int64_t i = 0; i < n; ++i) {
    d->features.push_back(static_cast<float>(i));
    d->labels.push_back(static_cast<int32_t>(i % classes));
  }
  return d;
}

TEST(ShardsTest, EveryExampleOnceAndHoldoutInsideTheClient) {
  auto data = labelled(400, 4);
  DataConfig cfg;
  cfg.partition = {.kind = "dirichlet", .alpha = 0.5, .min_size = 5};
  cfg.holdout_fraction = 0.25;
  auto all = make_client_data(data, 8, cfg, 3);
  ASSERT_TRUE(all.ok()) << all.error().to_string();
  ASSERT_EQ(all->size(), 8u);
  std::set<int64_t> seen;
  for (const ClientData& c : *all) {
    for (int64_t i : c.examples())
      EXPECT_TRUE(seen.insert(i).second) << "example " << i << " twice";
    EXPECT_EQ(c.train.size() + c.holdout.size(), static_cast<int64_t>(c.examples().size()));
    EXPECT_EQ(c.holdout.size(), static_cast<int64_t>(0.25 * c.examples().size()));
    EXPECT_TRUE(std::is_sorted(c.train.indices.begin(), c.train.indices.end()));
    std::vector<int64_t> merged = c.train.indices;
    merged.insert(merged.end(), c.holdout.indices.begin(), c.holdout.indices.end());
    std::sort(merged.begin(), merged.end());
    EXPECT_EQ(merged, c.examples());
  }
  EXPECT_EQ(seen.size(), 400u);
}

TEST(ShardsTest, OneClientMatchesTheWholePopulation) {
  auto data = labelled(300, 3);
  DataConfig cfg;
  cfg.holdout_fraction = 0.1;
  auto all = make_client_data(data, 6, cfg, 11);
  ASSERT_TRUE(all.ok());
  for (int64_t i = 0; i < 6; ++i) {
    auto one = client_data(data, i, 6, cfg, 11);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(one->train.indices, (*all)[static_cast<size_t>(i)].train.indices) << i;
    EXPECT_EQ(one->holdout.indices, (*all)[static_cast<size_t>(i)].holdout.indices) << i;
  }
  // Another seed, another split.
  auto other = make_client_data(data, 6, cfg, 12);
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)[0].examples(), (*all)[0].examples());
  EXPECT_EQ(client_data(data, 6, 6, cfg, 11).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client_data(data, -1, 6, cfg, 11).error().code(), StatusCode::kInvalidArgument);
}

TEST(ShardsTest, HoldoutKeepsOneTrainingExample) {
  std::vector<int64_t> train, holdout;
  split_holdout({4, 9}, 0.99, Rng(1), &train, &holdout);
  EXPECT_EQ(train.size(), 1u);
  EXPECT_EQ(holdout.size(), 1u);
  split_holdout({4, 9, 12}, 0.0, Rng(1), &train, &holdout);
  EXPECT_EQ(train, (std::vector<int64_t>{4, 9, 12}));
  EXPECT_TRUE(holdout.empty());
}

}  // namespace
}  // namespace cohort
