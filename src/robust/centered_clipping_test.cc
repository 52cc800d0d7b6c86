// Centered clipping: one iteration by hand (from zero and from a previous aggregate), the bound
// on how far outliers move the centre, the plain mean for a large radius, and errors.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/rng.h"
#include "robust/rules.h"
#include "robust/rule_test_util.h"

namespace cohort::robust {
namespace {

using testing::Group;

std::unique_ptr<Rule> make(double tau, int64_t iterations = 1) {
  RuleOptions o;
  o.rule = "centered_clipping";
  o.tau = tau;
  o.iterations = iterations;
  auto r = make_centered_clipping(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

double dist(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

TEST(CenteredClippingTest, OneIterationFromZero) {
  // |(3,4)| = 5 is clipped to tau = 2 (factor 0.4), |(0,1)| = 1 is kept:
  // v = ((1.2, 1.6) + (0, 1)) / 2.
  Group g{{{3, 4}, {0, 1}}, {1, 1}, {}};
  std::vector<float> out(2);
  Outcome oc;
  ASSERT_TRUE(make(2)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_FLOAT_EQ(out[0], 0.6f);
  EXPECT_FLOAT_EQ(out[1], 1.3f);
  ASSERT_EQ(oc.influence.size(), 2u);
  EXPECT_DOUBLE_EQ(oc.influence[0], 0.4);
  EXPECT_DOUBLE_EQ(oc.influence[1], 1.0);
}

TEST(CenteredClippingTest, OneIterationFromThePreviousAggregate) {
  // Offsets from (1, 1): (3, 4) (clipped by 0.4 to (1.2, 1.6)) with weight 3, (0, 1) with
  // weight 1: v = (1, 1) + (3 (1.2, 1.6) + (0, 1)) / 4 = (1.9, 2.45).
  Group g{{{4, 5}, {1, 2}}, {3, 1}, {1, 1}};
  std::vector<float> out(2);
  Outcome oc;
  ASSERT_TRUE(make(2)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_FLOAT_EQ(out[0], 1.9f);
  EXPECT_FLOAT_EQ(out[1], 2.45f);
  EXPECT_DOUBLE_EQ(oc.influence[0], 0.4);
}

TEST(CenteredClippingTest, HugeOutliersMoveTheCentreAtMostTauTimesTheirShare) {
  Rng rng(5);
  const size_t d = 20;
  std::vector<float> prev(d);
  for (float& x : prev) x = static_cast<float>(rng.normal());
  Group g{{}, {}, prev};
  for (int i = 0; i < 8; ++i) {
    g.v.push_back(prev);  // honest inputs at the centre: offsets 0
    g.w.push_back(1);
  }
  for (int i = 0; i < 2; ++i) {
    std::vector<float> x(d);
    for (float& e : x) e = static_cast<float>(rng.normal(0, 1e6));
    g.v.push_back(x);
    g.w.push_back(1);
  }
  const double tau = 0.5, share = 2.0 / 10.0;
  std::vector<float> out(d);
  Outcome oc;
  ASSERT_TRUE(make(tau)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_LE(dist(out, prev), tau * share * (1 + 1e-5));
  EXPECT_GT(dist(out, prev), 0.5 * tau * share);
  EXPECT_LT(oc.influence[8], 1e-5);
  EXPECT_DOUBLE_EQ(oc.influence[0], 1.0);
  EXPECT_EQ(oc.stats[0].first, "clipped");
  EXPECT_EQ(oc.stats[0].second, 2);
  // More iterations: the honest inputs pull back, so still within L tau share.
  ASSERT_TRUE(make(tau, 5)->aggregate(g.inputs(), out, nullptr).ok());
  EXPECT_LE(dist(out, prev), 5 * tau * share);
}

TEST(CenteredClippingTest, LargeRadiusGivesTheWeightedMean) {
  Group g{{{1, 0, 2}, {3, 4, -2}, {0, 1, 1}}, {1, 2, 1}, {}};
  std::vector<float> out(3);
  Outcome oc;
  ASSERT_TRUE(make(1e9, 3)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_NEAR(out[0], 7.0 / 4, 1e-6);
  EXPECT_NEAR(out[1], 9.0 / 4, 1e-6);
  EXPECT_NEAR(out[2], -1.0 / 4, 1e-6);
  for (double f : oc.influence) EXPECT_EQ(f, 1.0);
}

TEST(CenteredClippingTest, LargeVectorsAreDeterministic) {
  const size_t d = 2 * 65536 + 333;
  Rng rng(2);
  Group g;
  for (int i = 0; i < 4; ++i) {
    std::vector<float> x(d);
    for (float& e : x) e = static_cast<float>(rng.normal());
    g.v.push_back(x);
    g.w.push_back(1);
  }
  std::vector<float> a(d), b(d);
  ASSERT_TRUE(make(10, 3)->aggregate(g.inputs(), a, nullptr).ok());
  ASSERT_TRUE(make(10, 3)->aggregate(g.inputs(), b, nullptr).ok());
  EXPECT_EQ(a, b);
}

TEST(CenteredClippingTest, Errors) {
  for (double tau : {0.0, -1.0, std::nan("")}) {
    RuleOptions o;
    o.tau = tau;
    auto r = make_centered_clipping(o);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("robust.tau"), std::string::npos);
  }
  RuleOptions o;
  o.iterations = 0;
  auto r = make_centered_clipping(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("robust.iterations"), std::string::npos);

  std::vector<float> out(2);
  Group bad_len{{{1, 2}, {1}}, {1, 1}, {}};
  EXPECT_EQ(make(1)->aggregate(bad_len.inputs(), out, nullptr).code(),
            StatusCode::kInvalidArgument);
  Group bad_prev{{{1, 2}}, {1}, {1, 2, 3}};
  EXPECT_EQ(make(1)->aggregate(bad_prev.inputs(), out, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(make(10)->describe(), "centered_clipping(tau=10, iterations=1)");
}

}  // namespace
}  // namespace cohort::robust
