#include "cohort/data/data_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cohort {
namespace {

using ::testing::HasSubstr;

TEST(DataConfigTest, DefaultsAreValid) { EXPECT_TRUE(DataConfig().validate().ok()); }

TEST(DataConfigTest, ValidateNamesTheKey) {
  auto message = [](DataConfig d) {
    return d.validate().message();
  };
  DataConfig d;
  d.dataset = "cifar";
  EXPECT_EQ(message(d), "data.dataset: unknown value 'cifar' (known: fashion-mnist, synthetic, text)");
  d = DataConfig();
  d.partition.alpha = -1;
  EXPECT_EQ(message(d), "data.alpha: must be > 0, got -1");
  d = DataConfig();
  d.train_limit = -5;
  EXPECT_EQ(message(d), "data.train_limit: must be >= 0, got -5");
  d = DataConfig();
  d.synthetic.num_classes = 1;
  EXPECT_EQ(message(d), "data.synthetic.classes: must be >= 2, got 1");
  d = DataConfig();
  d.holdout_fraction = 1.0;
  EXPECT_THAT(message(d), HasSubstr("data.holdout_fraction: must be < 1"));
  d = DataConfig();
  d.partition.kind = "iid";
  d.partition.size_skew = -1;
  EXPECT_EQ(message(d), "data.size_skew: must be >= 0, got -1");
  d.partition.size_skew = 0.5;
  EXPECT_TRUE(d.validate().ok());
}

TEST(DataConfigTest, SyntheticSplitsAreSeededByTheRun) {
  DataConfig d;
  d.dataset = "synthetic";
  d.synthetic.num_examples = 50;
  d.synthetic_test_examples = 20;
  auto a = load_split(d, "train", 7);
  auto b = load_split(d, "train", 7);
  auto c = load_split(d, "train", 8);
  auto t = load_split(d, "test", 7);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && t.ok());
  EXPECT_EQ((*a)->size(), 50);
  EXPECT_EQ((*t)->size(), 20);
  EXPECT_EQ((*a)->features, (*b)->features);
  EXPECT_NE((*a)->features, (*c)->features);
  EXPECT_EQ(load_split(d, "validation", 7).error().code(), StatusCode::kInvalidArgument);
}

TEST(DataConfigTest, MissingDatasetDirectoryIsNotFound) {
  DataConfig d;
  d.path = "/nonexistent/fashion";
  auto r = load_split(d, "test", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("/nonexistent/fashion"));
}

}  // namespace
}  // namespace cohort
