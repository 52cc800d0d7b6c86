// Coordinate-wise median: Flower's FedMedian test vector, numpy's even-count convention,
// resistance to an outlier, distance influence, and agreement with a sort-per-coordinate
// reference on random data in both kernel paths (rank compares and nth_element).
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/parallel.h"
#include "cohort/core/rng.h"
#include "rules.h"
#include "rule_test_util.h"

namespace cohort::robust {
namespace {

using testing::Group;
using testing::inputs_of;
using testing::Vectors;

std::unique_ptr<Rule> median_rule() {
  RuleOptions o;
  o.rule = "median";
  return std::move(make_rule(o)).value();
}

// numpy.median per coordinate, in double, rounded once to float.
std::vector<float> reference_median(const Vectors& v) {
  const size_t n = v.size();
  std::vector<float> out(v[0].size());
  std::vector<float> col(n);
  for (size_t t = 0; t < out.size(); ++t) {
    for (size_t i = 0; i < n; ++i) col[i] = v[i][t];
    std::sort(col.begin(), col.end());
    out[t] = n % 2 == 1
                 ? col[n / 2]
                 : static_cast<float>((static_cast<double>(col[n / 2 - 1]) + col[n / 2]) / 2);
  }
  return out;
}

// Flower's FedMedian test (framework/py/flwr/server/strategy/fedmedian_test.py,
// test_aggregate_fit): [0.2]*4, [1.0]*4, [0.5]*4 give [0.5]*4.
TEST(MedianTest, FlowerVector) {
  const Vectors v = {{0.2f, 0.2f, 0.2f, 0.2f}, {1.0f, 1.0f, 1.0f, 1.0f}, {0.5f, 0.5f, 0.5f, 0.5f}};
  std::vector<float> out(4);
  ASSERT_TRUE(median_rule()->aggregate(inputs_of(v, {5, 5, 5}), out, nullptr).ok());
  for (float x : out) EXPECT_EQ(x, 0.5f);
}

TEST(MedianTest, EvenCountAveragesTheMiddleTwoAndIgnoresWeights) {
  // Per coordinate: {1, 3, 10, 2} -> (2 + 3) / 2; {-1, -1, 4, 0} -> (-1 + 0) / 2.
  const Vectors v = {{1, -1}, {3, -1}, {10, 4}, {2, 0}};
  std::vector<float> out(2);
  ASSERT_TRUE(median_rule()->aggregate(inputs_of(v, {100, 1, 1, 1}), out, nullptr).ok());
  EXPECT_EQ(out, (std::vector<float>{2.5f, -0.5f}));
}

TEST(MedianTest, OneAndTwoInputs) {
  std::vector<float> out(2);
  ASSERT_TRUE(median_rule()->aggregate(inputs_of({{1, 2}}), out, nullptr).ok());
  EXPECT_EQ(out, (std::vector<float>{1, 2}));
  ASSERT_TRUE(median_rule()->aggregate(inputs_of({{1, 2}, {2, 6}}), out, nullptr).ok());
  EXPECT_EQ(out, (std::vector<float>{1.5f, 4}));
}

TEST(MedianTest, ResistsOneHugeOutlier) {
  const Vectors v = {{2.0f, 4.0f}, {2.1f, 3.9f}, {1.9f, 4.1f}, {2.0f, 4.0f}, {-5e30f, 9e30f}};
  std::vector<float> out(2);
  Outcome o;
  ASSERT_TRUE(median_rule()->aggregate(inputs_of(v), out, &o).ok());
  EXPECT_EQ(out, (std::vector<float>{2.0f, 4.0f}));
  // Distances to (2, 4): 0, 0.1414, 0.1414, 0, ~1e31; median distance 0.1414.
  EXPECT_EQ(o.influence[0], 1.0);
  EXPECT_NEAR(o.influence[1], 1.0, 1e-6);
  EXPECT_EQ(o.influence[3], 1.0);
  EXPECT_LT(o.influence[4], 1e-30);
}

TEST(MedianTest, InfluenceIsDistanceInfluence) {
  Rng rng(3);
  Vectors v(7, std::vector<float>(5000));
  for (size_t i = 0; i < v.size(); ++i) {
    for (float& x : v[i]) x = static_cast<float>(rng.normal(0, 1.0 + static_cast<double>(i)));
  }
  const Inputs in = inputs_of(v);
  std::vector<float> out(5000);
  Outcome o;
  ASSERT_TRUE(median_rule()->aggregate(in, out, &o).ok());
  const std::vector<double> want = distance_influence(in, out);
  ASSERT_EQ(o.influence.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(o.influence[i], want[i], 1e-12) << i;
  EXPECT_EQ(o.influence[0], 1.0);  // the least spread input is closest
  EXPECT_LT(o.influence[6], 1.0);
}

TEST(MedianTest, InputErrors) {
  std::vector<float> out(2);
  EXPECT_EQ(median_rule()->aggregate(inputs_of({{1, 2}, {1, 2, 3}}), out, nullptr).message(),
            "median: update 1 has 3 values, expected 2");
  EXPECT_EQ(median_rule()->aggregate(inputs_of({{1, 2}, {1, 2}}, {1, -1}), out, nullptr).message(),
            "median: weight of update 1 must be positive and finite, got -1");
  EXPECT_EQ(median_rule()->aggregate(Inputs{}, out, nullptr).message(),
            "median: no updates to aggregate");
}

// Sizes around the rank kernel's limit (128 inputs; above it nth_element), lengths longer than
// several parallel chunks and not a multiple of the block or the vector width, continuous
// values and heavily tied integer values; every result equals the reference exactly, and is
// bit-identical when the kernels run inline on one thread (from inside a pool worker).
TEST(MedianTest, MatchesReferenceOnRandomDataForAnyThreadCount) {
  Rng rng(11);
  const size_t d = 33'001;  // three parallel chunks, the last one short
  auto rule = median_rule();
  for (size_t n : {3u, 4u, 10u, 17u, 129u}) {
    for (bool ties : {false, true}) {
      Vectors v(n, std::vector<float>(d));
      for (auto& x : v) {
        for (float& y : x) {
          y = ties ? static_cast<float>(rng.uniform_int(5)) - 2.0f
                   : static_cast<float>(rng.normal(0, 1));
        }
      }
      const std::vector<float> want = reference_median(v);
      std::vector<float> out(d), out_inline(d);
      Outcome o, o_inline;
      ASSERT_TRUE(rule->aggregate(inputs_of(v), out, &o).ok());
      ASSERT_TRUE(kernel_pool()
                      .submit([&](size_t) {
                        return rule->aggregate(inputs_of(v), out_inline, &o_inline);
                      })
                      .get()
                      .ok());
      EXPECT_EQ(out, want) << "n = " << n << ", ties = " << ties;
      EXPECT_EQ(out_inline, out) << "n = " << n;
      EXPECT_EQ(o_inline.influence, o.influence) << "n = " << n;
    }
  }
}

}  // namespace
}  // namespace cohort::robust
