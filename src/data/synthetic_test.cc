#include "cohort/data/synthetic.h"

#include <cmath>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cohort {
namespace {

using ::testing::HasSubstr;

Dataset make(const SyntheticOptions& o, uint64_t salt = 0) {
  auto r = make_synthetic(o, salt);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : Dataset{};
}

// Per-class average of the examples: k x dim, row-major.
std::vector<double> class_means(const Dataset& ds) {
  const int64_t d = ds.sample_numel();
  std::vector<double> sum(static_cast<size_t>(ds.num_classes * d), 0.0);
  std::vector<int64_t> count(static_cast<size_t>(ds.num_classes), 0);
  for (int64_t i = 0; i < ds.size(); ++i) {
    const int32_t y = ds.labels[static_cast<size_t>(i)];
    count[static_cast<size_t>(y)]++;
    for (int64_t j = 0; j < d; ++j) sum[static_cast<size_t>(y * d + j)] += ds.example(i)[j];
  }
  for (int64_t c = 0; c < ds.num_classes; ++c)
    for (int64_t j = 0; j < d; ++j)
      sum[static_cast<size_t>(c * d + j)] /= static_cast<double>(count[static_cast<size_t>(c)]);
  return sum;
}

TEST(Synthetic, ShapesAndBalancedLabels) {
  SyntheticOptions o{.num_examples = 1001, .dim = 7, .num_classes = 4};
  const Dataset ds = make(o);
  EXPECT_EQ(ds.name, "synthetic");
  EXPECT_EQ(ds.size(), 1001);
  EXPECT_EQ(ds.sample_shape, (std::vector<int64_t>{7}));
  EXPECT_EQ(ds.num_classes, 4);
  EXPECT_EQ(ds.features.size(), 1001u * 7u);
  EXPECT_TRUE(ds.validate().ok());
  std::vector<int> counts(4, 0);
  for (int32_t y : ds.labels) counts[static_cast<size_t>(y)]++;
  EXPECT_EQ(counts, (std::vector<int>{251, 250, 250, 250}));
  // Shuffled: the first 8 labels are not the cyclic 0,1,2,3,0,1,2,3.
  EXPECT_NE(std::vector<int32_t>(ds.labels.begin(), ds.labels.begin() + 8),
            (std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 3}));
}

TEST(Synthetic, DeterministicPerSeedAndSalt) {
  SyntheticOptions o{.num_examples = 300, .dim = 5, .num_classes = 3, .seed = 17};
  const Dataset a = make(o), b = make(o);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.labels, b.labels);
  const Dataset salted = make(o, 1);
  EXPECT_NE(a.features, salted.features);
  o.seed = 18;
  const Dataset other = make(o);
  EXPECT_NE(a.features, other.features);
}

TEST(Synthetic, NoiseFreeExamplesSitOnTheClassMeans) {
  SyntheticOptions o{.num_examples = 40, .dim = 6, .num_classes = 5, .noise = 0.0, .seed = 2};
  const Dataset ds = make(o);
  const std::vector<double> mu = class_means(ds);
  for (int64_t i = 0; i < ds.size(); ++i) {
    const int32_t y = ds.labels[static_cast<size_t>(i)];
    for (int64_t j = 0; j < 6; ++j)
      EXPECT_EQ(ds.example(i)[j], static_cast<float>(mu[static_cast<size_t>(y * 6 + j)]));
  }
  // Distinct classes have distinct means.
  for (int a = 0; a < 5; ++a)
    for (int b = a + 1; b < 5; ++b)
      EXPECT_NE(mu[static_cast<size_t>(a * 6)], mu[static_cast<size_t>(b * 6)]);

  // Same seed, other salt and size: the very same means.
  o.num_examples = 13;
  const Dataset small = make(o, 7);
  for (int64_t i = 0; i < small.size(); ++i) {
    const int32_t y = small.labels[static_cast<size_t>(i)];
    for (int64_t j = 0; j < 6; ++j)
      EXPECT_EQ(small.example(i)[j], static_cast<float>(mu[static_cast<size_t>(y * 6 + j)]));
  }
}

TEST(Synthetic, MeanNormsFollowSeparation) {
  // E|mu|^2 = separation^2; average over many classes.
  SyntheticOptions o{.num_examples = 400,
                     .dim = 50,
                     .num_classes = 400,
                     .separation = 3.0,
                     .noise = 0.0,
                     .seed = 4};
  const std::vector<double> mu = class_means(make(o));
  double sq = 0;
  for (double v : mu) sq += v * v;
  EXPECT_NEAR(sq / 400.0, 9.0, 0.5);
}

TEST(Synthetic, TrainAndTestSaltsShareTheTask) {
  SyntheticOptions o{.num_examples = 4000,
                     .dim = 10,
                     .num_classes = 4,
                     .separation = 4.0,
                     .noise = 1.0,
                     .seed = 9};
  const Dataset train = make(o, 0);
  o.num_examples = 2000;
  const Dataset test = make(o, 1);
  const std::vector<double> mu_train = class_means(train), mu_test = class_means(test);
  // Each class mean is estimated from >= 500 examples of unit noise: error ~ 1/sqrt(500).
  for (size_t i = 0; i < mu_train.size(); ++i) EXPECT_NEAR(mu_train[i], mu_test[i], 0.2) << i;

  // A nearest-train-mean classifier transfers to the test split.
  int correct = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    int best = -1;
    double best_d = 1e300;
    for (int c = 0; c < 4; ++c) {
      double dist = 0;
      for (int j = 0; j < 10; ++j) {
        const double diff = test.example(i)[j] - mu_train[static_cast<size_t>(c * 10 + j)];
        dist += diff * diff;
      }
      if (dist < best_d) {
        best_d = dist;
        best = c;
      }
    }
    correct += best == test.labels[static_cast<size_t>(i)];
  }
  EXPECT_GT(correct, 1800);  // > 90%

  // A different seed is a different task.
  o.seed = 10;
  const std::vector<double> mu_other = class_means(make(o, 1));
  double diff = 0;
  for (size_t i = 0; i < mu_train.size(); ++i) diff += std::abs(mu_train[i] - mu_other[i]);
  EXPECT_GT(diff / static_cast<double>(mu_train.size()), 0.3);
}

TEST(Synthetic, BadOptionsNameTheKey) {
  auto expect_bad = [](SyntheticOptions o, const std::string& key) {
    auto r = make_synthetic(o);
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.error().message(), HasSubstr(key));
  };
  expect_bad({.num_examples = 0}, "data.synthetic.num_examples");
  expect_bad({.dim = 0}, "data.synthetic.dim");
  expect_bad({.num_classes = 0}, "data.synthetic.classes");
  expect_bad({.separation = -1.0}, "data.synthetic.separation");
  expect_bad({.noise = std::nan("")}, "data.synthetic.noise");
  expect_bad({.num_examples = int64_t{1} << 40}, "data.synthetic.num_examples");
}

}  // namespace
}  // namespace cohort
