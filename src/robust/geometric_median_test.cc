// Geometric median (smoothed Weiszfeld, RFA): hand cases, the Weiszfeld optimality condition on
// random data, robustness to a far outlier, stopping, and option / input errors.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/rng.h"
#include "robust/rules.h"
#include "robust/rule_test_util.h"

namespace cohort::robust {
namespace {

using testing::Group;
using testing::inputs_of;
using testing::Vectors;

std::unique_ptr<Rule> make(int64_t max_iterations = 100, double tolerance = 1e-6,
                           double nu = 1e-6) {
  RuleOptions o;
  o.rule = "geometric_median";
  o.max_iterations = max_iterations;
  o.tolerance = tolerance;
  o.nu = nu;
  auto r = make_geometric_median(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

TEST(GeometricMedianTest, CollinearPointsGiveTheMiddleOne) {
  // On a line the geometric median is the (weighted) median point: 1 of {0, 1, 10}, although
  // the mean is 11/3.
  Group g{{{0, 0, 0}, {1, 2, -1}, {10, 20, -10}}, {1, 1, 1}};
  std::vector<float> out(3);
  Outcome oc;
  ASSERT_TRUE(make(1000, 0)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_NEAR(out[0], 1, 1e-3);
  EXPECT_NEAR(out[1], 2, 2e-3);
  EXPECT_NEAR(out[2], -1, 1e-3);
  ASSERT_EQ(oc.influence.size(), 3u);
  EXPECT_NEAR(oc.influence[1], 1.0, 1e-9);
}

TEST(GeometricMedianTest, WeightAboveHalfWins) {
  Group g{{{0, 0}, {3, 4}}, {3, 1}};
  std::vector<float> out(2);
  ASSERT_TRUE(make(1000, 0)->aggregate(g.inputs(), out, nullptr).ok());
  EXPECT_NEAR(out[0], 0, 1e-4);
  EXPECT_NEAR(out[1], 0, 1e-4);
}

TEST(GeometricMedianTest, FixedPointHasZeroSumOfUnitVectors) {
  // The geometric median z of points not containing it satisfies
  // sum_i a_i (z - v_i) / |z - v_i| = 0.
  Rng rng(7);
  Group g;
  for (int i = 0; i < 9; ++i) {
    std::vector<float> x(6);
    for (float& e : x) e = static_cast<float>(rng.normal(0, 3));
    g.v.push_back(x);
    g.w.push_back(rng.uniform(0.5, 2));
  }
  std::vector<float> out(6);
  Outcome oc;
  ASSERT_TRUE(make(3000, 0)->aggregate(g.inputs(), out, &oc).ok());
  double total = 0;
  for (double w : g.w) total += w;
  std::vector<double> grad(6, 0.0);
  for (size_t i = 0; i < g.v.size(); ++i) {
    double n2 = 0;
    for (size_t j = 0; j < 6; ++j) n2 += (out[j] - g.v[i][j]) * (out[j] - g.v[i][j]);
    const double n = std::sqrt(n2);
    ASSERT_GT(n, 1e-3);
    for (size_t j = 0; j < 6; ++j) grad[j] += g.w[i] / total * (out[j] - g.v[i][j]) / n;
  }
  double gn = 0;
  for (double x : grad) gn += x * x;
  EXPECT_LT(std::sqrt(gn), 1e-3);
  EXPECT_EQ(oc.stats[0].first, "iterations");
}

TEST(GeometricMedianTest, OneFarOutlierBarelyMovesIt) {
  Rng rng(3);
  Group g;
  std::vector<double> mean(8, 0.0);
  for (int i = 0; i < 9; ++i) {
    std::vector<float> x(8);
    for (size_t j = 0; j < 8; ++j) {
      x[j] = 1.0f + static_cast<float>(rng.normal(0, 0.1));
      mean[j] += x[j] / 9;
    }
    g.v.push_back(x);
    g.w.push_back(1);
  }
  g.v.push_back(std::vector<float>(8, 1e6f));
  g.w.push_back(1);
  std::vector<float> out(8);
  Outcome oc;
  ASSERT_TRUE(make()->aggregate(g.inputs(), out, &oc).ok());
  for (size_t j = 0; j < 8; ++j) EXPECT_NEAR(out[j], mean[j], 0.1) << j;
  EXPECT_LT(oc.influence[9], 1e-4);
  for (int i = 0; i < 9; ++i) EXPECT_GT(oc.influence[static_cast<size_t>(i)], 0.3);
}

TEST(GeometricMedianTest, StopsWhenTheObjectiveStopsImproving) {
  Group same{{{1, 2}, {1, 2}, {1, 2}}, {1, 2, 3}};
  std::vector<float> out(2);
  Outcome oc;
  ASSERT_TRUE(make(50)->aggregate(same.inputs(), out, &oc).ok());
  EXPECT_FLOAT_EQ(out[0], 1);
  EXPECT_FLOAT_EQ(out[1], 2);
  ASSERT_EQ(oc.stats[0].first, "iterations");
  EXPECT_EQ(oc.stats[0].second, 1);
  Group g{{{0, 0}, {1, 0}, {0, 1}, {5, 5}}, {1, 1, 1, 1}};
  ASSERT_TRUE(make(3)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_EQ(oc.stats[0].second, 3);
}

TEST(GeometricMedianTest, LargeVectorsAreDeterministic) {
  // Several kernel chunks: the same result twice, and close to the median of a shifted copy.
  const size_t d = 3 * 65536 + 101;
  Rng rng(11);
  Group g;
  for (int i = 0; i < 5; ++i) {
    std::vector<float> x(d);
    for (float& e : x) e = static_cast<float>(rng.normal());
    g.v.push_back(x);
    g.w.push_back(1 + i);
  }
  std::vector<float> a(d), b(d);
  ASSERT_TRUE(make(5)->aggregate(g.inputs(), a, nullptr).ok());
  ASSERT_TRUE(make(5)->aggregate(g.inputs(), b, nullptr).ok());
  EXPECT_EQ(a, b);
}

TEST(GeometricMedianTest, Errors) {
  RuleOptions o;
  o.max_iterations = 0;
  auto r = make_geometric_median(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("robust.max_iterations"), std::string::npos);
  o = RuleOptions();
  o.tolerance = -1;
  r = make_geometric_median(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("robust.tolerance"), std::string::npos);
  o = RuleOptions();
  o.nu = 0;
  r = make_geometric_median(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("robust.nu"), std::string::npos);

  Group g{{{1, 2}, {1, 2, 3}}, {1, 1}};
  std::vector<float> out(2);
  const Status s = make()->aggregate(g.inputs(), out, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make()->describe(), "geometric_median(max_iterations=100, tolerance=1e-06, nu=1e-06)");
}

}  // namespace
}  // namespace cohort::robust
