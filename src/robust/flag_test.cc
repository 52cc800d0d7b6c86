// Flag aggregator: collinear inputs give their direction, an orthogonal outlier is left out,
// the subspace of all inputs reproduces them, determinism for a seed, zero inputs, and errors.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/rng.h"
#include "robust/rules.h"
#include "robust/rule_test_util.h"

namespace cohort::robust {
namespace {

using testing::Group;

std::unique_ptr<Rule> make(int64_t r, int64_t iterations, double lambda = 0) {
  RuleOptions o;
  o.rule = "flag";
  o.flag_r = r;
  o.flag_iterations = iterations;
  o.flag_lambda = lambda;
  auto rule = make_flag(o);
  EXPECT_TRUE(rule.ok()) << rule.status().to_string();
  return std::move(rule).value();
}

double stat(const Outcome& oc, const std::string& name) {
  for (const auto& [k, v] : oc.stats) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no stat " << name;
  return 0;
}

std::vector<float> random_unit(size_t d, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> u(d);
  double n = 0;
  for (float& x : u) {
    x = static_cast<float>(rng.normal());
    n += static_cast<double>(x) * x;
  }
  for (float& x : u) x = static_cast<float>(x / std::sqrt(n));
  return u;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

TEST(FlagTest, CollinearInputsGiveTheirDirectionAtTheMedianNorm) {
  const size_t d = 10;
  const std::vector<float> u = random_unit(d, 3);
  Group g;
  for (float c : {1.0f, 2.0f, 3.0f, 5.0f}) {
    std::vector<float> x(d);
    for (size_t j = 0; j < d; ++j) x[j] = c * u[j];
    g.v.push_back(x);
    g.w.push_back(1);
  }
  for (int64_t r : {1, 2}) {
    std::vector<float> out(d);
    Outcome oc;
    ASSERT_TRUE(make(r, 3)->aggregate(g.inputs(), out, &oc).ok());
    for (size_t j = 0; j < d; ++j) EXPECT_NEAR(out[j], 2.5 * u[j], 1e-5) << r << " " << j;
    ASSERT_EQ(oc.influence.size(), 4u);
    for (double f : oc.influence) EXPECT_NEAR(f, 1.0, 1e-6);
    EXPECT_EQ(stat(oc, "rank"), 1);  // the data spans one dimension even for r = 2
    EXPECT_GE(stat(oc, "iterations"), 1);
  }
}

TEST(FlagTest, TwoLinesAndAnOrthogonalOne) {
  // Lines e1, e1, e2: the flag median of dimension 1 is e1; the output averages the three
  // projections, (e1 + e1 + 0) / 3, at the median norm 1.
  Group g{{{1, 0}, {1, 0}, {0, 1}}, {1, 1, 1}};
  std::vector<float> out(2);
  Outcome oc;
  ASSERT_TRUE(make(1, 20)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_NEAR(std::fabs(out[0]), 2.0 / 3, 1e-4);
  EXPECT_NEAR(out[1], 0, 1e-4);
  EXPECT_NEAR(oc.influence[0], 1, 1e-4);
  EXPECT_NEAR(oc.influence[2], 0, 1e-4);
}

TEST(FlagTest, OrthogonalOutlierGetsLowInfluence) {
  const size_t d = 50;
  Rng rng(9);
  Group g;
  std::vector<float> e1(d, 0.0f), e2(d, 0.0f);
  e1[0] = 1;
  e2[1] = 1;
  for (int i = 0; i < 6; ++i) {
    std::vector<float> x(d);
    for (size_t j = 0; j < d; ++j) x[j] = static_cast<float>(e1[j] + rng.normal(0, 0.02));
    for (float& v : x) v *= static_cast<float>(1 + i);  // norms 1 .. 6
    g.v.push_back(x);
    g.w.push_back(1);
  }
  std::vector<float> outlier(d, 0.0f);
  outlier[1] = 100;
  g.v.push_back(outlier);
  g.w.push_back(1);
  for (double lambda : {0.0, 1.0}) {
    std::vector<float> out(d);
    Outcome oc;
    ASSERT_TRUE(make(1, 10, lambda)->aggregate(g.inputs(), out, &oc).ok());
    std::vector<float> mean(d, 0.0f);
    for (const auto& x : g.v) {
      for (size_t j = 0; j < d; ++j) mean[j] += x[j] / 7;
    }
    EXPECT_LT(cosine(mean, e1), 0.5);  // the plain mean is dragged towards e2
    EXPECT_GT(std::fabs(cosine(out, e1)), 0.99) << lambda;
    EXPECT_LT(std::fabs(cosine(out, e2)), 0.05) << lambda;
    EXPECT_LT(oc.influence[6], 0.05) << lambda;
    for (int i = 0; i < 6; ++i) EXPECT_GT(oc.influence[static_cast<size_t>(i)], 0.9) << lambda;
    // The output has an update's scale: the median norm (4) times the mean projection.
    double n = 0;
    for (float x : out) n += static_cast<double>(x) * x;
    EXPECT_NEAR(std::sqrt(n), 4.0 * 6 / 7, 0.1) << lambda;
  }
}

TEST(FlagTest, FullRankSubspaceReproducesTheInputs) {
  // With r = p the subspace contains every input: Y Y^T x_i = x_i, so the output is the median
  // norm times the weighted mean of the unit inputs, and every influence is 1.
  Group g{{{1, 0, 0, 2}, {0, 3, 0, 0}, {1, 1, 1, 1}}, {1, 2, 1}};
  std::vector<float> out(4);
  Outcome oc;
  ASSERT_TRUE(make(3, 2)->aggregate(g.inputs(), out, &oc).ok());
  std::vector<double> expect(4, 0.0);
  const double scale = std::sqrt(5.0);  // the median of the norms sqrt(5), 3, 2
  for (size_t i = 0; i < 3; ++i) {
    double n = 0;
    for (float x : g.v[i]) n += x * x;
    for (size_t j = 0; j < 4; ++j) expect[j] += scale * g.w[i] / 4 * g.v[i][j] / std::sqrt(n);
  }
  for (size_t j = 0; j < 4; ++j) EXPECT_NEAR(out[j], expect[j], 1e-5) << j;
  for (double f : oc.influence) EXPECT_NEAR(f, 1.0, 1e-6);
}

TEST(FlagTest, DeterministicForASeed) {
  const size_t d = 2 * 65536 + 77;  // several kernel chunks
  Rng rng(4);
  Group g;
  for (int i = 0; i < 5; ++i) {
    std::vector<float> x(d);
    for (float& e : x) e = static_cast<float>(rng.normal());
    g.v.push_back(x);
    g.w.push_back(1 + 0.5 * i);
  }
  g.seed = 42;
  for (int64_t iterations : {1, 3}) {
    std::vector<float> a(d), b(d);
    Outcome oa, ob;
    ASSERT_TRUE(make(2, iterations, 0.5)->aggregate(g.inputs(), a, &oa).ok());
    ASSERT_TRUE(make(2, iterations, 0.5)->aggregate(g.inputs(), b, &ob).ok());
    EXPECT_EQ(a, b);
    EXPECT_EQ(oa.influence, ob.influence);
    for (double f : oa.influence) {
      EXPECT_GE(f, 0.0);
      EXPECT_LE(f, 1.0);
    }
  }
}

TEST(FlagTest, LargeCollinearInputs) {
  const size_t d = 3 * 65536 + 5;
  const std::vector<float> u = random_unit(d, 8);
  Group g;
  for (float c : {2.0f, 1.0f, 4.0f}) {
    std::vector<float> x(d);
    for (size_t j = 0; j < d; ++j) x[j] = c * u[j];
    g.v.push_back(x);
    g.w.push_back(1);
  }
  std::vector<float> out(d);
  ASSERT_TRUE(make(1, 2)->aggregate(g.inputs(), out, nullptr).ok());
  double err = 0;
  for (size_t j = 0; j < d; ++j) err = std::max(err, std::fabs(out[j] - 2.0 * u[j]));
  EXPECT_LT(err, 1e-6);
}

TEST(FlagTest, ZeroInputHasNoInfluence) {
  Group g{{{0, 0, 0}, {1, 1, 0}, {2, 2, 0}}, {1, 1, 1}};
  std::vector<float> out(3);
  Outcome oc;
  ASSERT_TRUE(make(1, 5)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_EQ(oc.influence[0], 0.0);
  EXPECT_NEAR(oc.influence[1], 1.0, 1e-6);
  // Median norm sqrt(2), mean projection (0 + 2 u) / 3 with u = (1, 1, 0) / sqrt(2).
  EXPECT_NEAR(std::fabs(out[0]), 2.0 / 3, 1e-5);
  EXPECT_NEAR(std::fabs(out[1]), 2.0 / 3, 1e-5);
  EXPECT_EQ(out[2], 0.0f);
  Group zeros{{{0, 0}, {0, 0}}, {1, 1}};
  std::vector<float> z(2, 5.0f);
  ASSERT_TRUE(make(1, 3)->aggregate(zeros.inputs(), z, &oc).ok());
  EXPECT_EQ(z, std::vector<float>(2, 0.0f));
}

TEST(FlagTest, Errors) {
  auto rule = make(3, 1);
  const Status s = rule->check(2);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("robust.flag_r"), std::string::npos) << s.message();
  EXPECT_TRUE(rule->check(3).ok());
  Group g{{{1, 0}, {0, 1}}, {1, 1}};
  std::vector<float> out(2);
  EXPECT_EQ(rule->aggregate(g.inputs(), out, nullptr).code(), StatusCode::kInvalidArgument);

  RuleOptions o;
  o.flag_r = 0;
  auto r = make_flag(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("robust.flag_r"), std::string::npos);
  o = RuleOptions();
  o.flag_lambda = -0.5;
  r = make_flag(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("robust.flag_lambda"), std::string::npos);
  o = RuleOptions();
  o.flag_iterations = 0;
  r = make_flag(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("robust.flag_iterations"), std::string::npos);

  Group bad{{{1, 0}, {0, 1, 2}}, {1, 1}};
  EXPECT_EQ(make(1, 1)->aggregate(bad.inputs(), out, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make(1, 1)->describe(), "flag(r=1, lambda=0, iterations=1)");
}

}  // namespace
}  // namespace cohort::robust
