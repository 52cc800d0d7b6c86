// Coordinate-wise trimmed mean: scipy.stats.trim_mean's documented example, hand-computed
// groups with ties, influence as the kept fraction, beta validation, and agreement with a
// sort-per-coordinate reference on random data in both kernel paths.
#include <algorithm>
#include <cmath>
#include <numeric>
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

std::unique_ptr<Rule> trimmed(double beta) {
  RuleOptions o;
  o.rule = "trimmed_mean";
  o.beta = beta;
  auto r = make_rule(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

// Per coordinate: order by (value, index), keep ranks [lo, n - lo), average them summed in
// input order (the rule's documented order, so the comparison is exact); counts kept values.
std::vector<float> reference(const Vectors& v, double beta, std::vector<int64_t>* kept) {
  const size_t n = v.size();
  const auto lo = static_cast<size_t>(std::floor(beta * static_cast<double>(n)));
  std::vector<float> out(v[0].size());
  kept->assign(n, 0);
  std::vector<size_t> idx(n);
  std::vector<char> keep(n);
  for (size_t t = 0; t < out.size(); ++t) {
    std::iota(idx.begin(), idx.end(), size_t{0});
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return v[a][t] < v[b][t];
    });
    std::fill(keep.begin(), keep.end(), 0);
    for (size_t p = lo; p < n - lo; ++p) keep[idx[p]] = 1;
    double s = 0;
    for (size_t i = 0; i < n; ++i) {
      if (keep[i] != 0) {
        s += v[i][t];
        ++(*kept)[i];
      }
    }
    out[t] = static_cast<float>(s / static_cast<double>(n - 2 * lo));
  }
  return out;
}

// scipy.stats.trim_mean's documentation: trim_mean(np.arange(20), 0.1) == 9.5 (2 cut at each
// end, the mean of 2..17).
TEST(TrimmedMeanTest, ScipyExample) {
  Vectors v;
  for (int i = 0; i < 20; ++i) v.push_back({static_cast<float>(i)});
  std::vector<float> out(1);
  Outcome o;
  ASSERT_TRUE(trimmed(0.1)->aggregate(inputs_of(v), out, &o).ok());
  EXPECT_EQ(out[0], 9.5f);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(o.influence[i], i >= 2 && i < 18 ? 1.0 : 0.0) << i;
}

TEST(TrimmedMeanTest, HandComputedWithTiesAndInfluence) {
  // beta = 0.2, n = 5: one cut at each end.
  //   coordinate 0: 1 2 3 4 100 -> (2 + 3 + 4) / 3 = 3; inputs 0 and 4 dropped;
  //   coordinate 1: 5 5 5 5 5   -> 5; ties by index: inputs 0 and 4 dropped;
  //   coordinate 2: 7 -1 0 2 9  -> (7 + 0 + 2) / 3 = 3; inputs 1 and 4 dropped;
  //   coordinate 3: 0 0 1 1 -3  -> (0 + 0 + 1) / 3; ranks by (value, index): 4, 0, 1, 2, 3.
  const Vectors v = {{1, 5, 7, 0}, {2, 5, -1, 0}, {3, 5, 0, 1}, {4, 5, 2, 1}, {100, 5, 9, -3}};
  std::vector<float> out(4);
  Outcome o;
  ASSERT_TRUE(trimmed(0.2)->aggregate(inputs_of(v, {1, 2, 3, 4, 5}), out, &o).ok());
  EXPECT_EQ(out, (std::vector<float>{3, 5, 3, static_cast<float>(1.0 / 3.0)}));
  // Kept in: input 0: coordinates 2, 3; 1: 0, 1, 3; 2: all four; 3: 0, 1, 2; 4: none.
  EXPECT_EQ(o.influence, (std::vector<double>{0.5, 0.75, 1.0, 0.75, 0.0}));
}

TEST(TrimmedMeanTest, BetaZeroIsThePlainMean) {
  const Vectors v = {{1, 2}, {2, 4}, {6, 0}};
  std::vector<float> out(2);
  Outcome o;
  ASSERT_TRUE(trimmed(0.0)->aggregate(inputs_of(v, {1, 1, 5}), out, &o).ok());
  EXPECT_EQ(out, (std::vector<float>{3, 2}));
  EXPECT_EQ(o.influence, (std::vector<double>{1, 1, 1}));
  // Small groups cut nothing either: floor(0.1 * 3) = 0.
  ASSERT_TRUE(trimmed(0.1)->aggregate(inputs_of(v), out, &o).ok());
  EXPECT_EQ(out, (std::vector<float>{3, 2}));
}

TEST(TrimmedMeanTest, ResistsOneHugeOutlier) {
  const Vectors v = {{0.9f, 1.0f}, {1.0f, 1.1f}, {1.0f, 0.9f}, {1.1f, 1.0f}, {1e30f, -1e30f}};
  std::vector<float> out(2);
  Outcome o;
  ASSERT_TRUE(trimmed(0.2)->aggregate(inputs_of(v), out, &o).ok());
  EXPECT_NEAR(out[0], (1.0 + 1.0 + 1.1) / 3, 1e-6);
  EXPECT_NEAR(out[1], (0.9 + 1.0 + 1.0) / 3, 1e-6);
  EXPECT_EQ(o.influence[4], 0.0);
}

TEST(TrimmedMeanTest, BetaErrors) {
  RuleOptions o;
  o.rule = "trimmed_mean";
  o.beta = 0.6;
  EXPECT_EQ(make_rule(o).status().message(), "robust.beta: must be in [0, 0.5), got 0.6");
  o.beta = 0.5;
  EXPECT_EQ(make_rule(o).status().message(), "robust.beta: must be in [0, 0.5), got 0.5");
  o.beta = -0.1;
  EXPECT_EQ(make_rule(o).status().code(), StatusCode::kInvalidArgument);
  o.beta = std::nan("");
  EXPECT_EQ(make_rule(o).status().code(), StatusCode::kInvalidArgument);
  // Any beta < 0.5 leaves at least one value: floor(beta * n) < n / 2 even for the largest
  // double below 0.5 (beta * n never rounds up to n / 2).
  auto rule = trimmed(std::nextafter(0.5, 0.0));
  for (size_t n : {1u, 2u, 3u, 6u, 1000001u}) EXPECT_TRUE(rule->check(n).ok()) << n;
  EXPECT_EQ(rule->check(0).message(), "trimmed_mean: no updates to aggregate");
  EXPECT_EQ(trimmed(0.1)->describe(), "trimmed_mean(beta=0.1)");
}

TEST(TrimmedMeanTest, InputErrors) {
  std::vector<float> out(2);
  EXPECT_EQ(trimmed(0.1)->aggregate(inputs_of({{1, 2}, {1}}), out, nullptr).message(),
            "trimmed_mean: update 1 has 1 values, expected 2");
  EXPECT_EQ(trimmed(0.1)->aggregate(inputs_of({{1, 2}, {1, 2}}, {0, 0}), out, nullptr).message(),
            "trimmed_mean: weight of update 0 must be positive and finite, got 0");
}

// Both kernel paths (up to 128 inputs: rank compares; above: nth_element), lengths over several
// parallel chunks and not a multiple of the block or the vector width, continuous and heavily
// tied values: output and kept counts equal the reference exactly, and are bit-identical when
// the kernels run inline on one thread (from inside a pool worker).
TEST(TrimmedMeanTest, MatchesReferenceOnRandomDataForAnyThreadCount) {
  Rng rng(5);
  const size_t d = 33'001;  // three parallel chunks, the last one short
  for (size_t n : {2u, 5u, 21u, 129u}) {
    for (double beta : {0.1, 0.3}) {
      for (bool ties : {false, true}) {
        Vectors v(n, std::vector<float>(d));
        for (auto& x : v) {
          for (float& y : x) {
            y = ties ? static_cast<float>(rng.uniform_int(4))
                     : static_cast<float>(rng.normal(0, 1));
          }
        }
        std::vector<int64_t> kept;
        const std::vector<float> want = reference(v, beta, &kept);
        auto rule = trimmed(beta);
        std::vector<float> out(d), out_inline(d);
        Outcome o, o_inline;
        ASSERT_TRUE(rule->aggregate(inputs_of(v), out, &o).ok());
        ASSERT_TRUE(kernel_pool()
                        .submit([&](size_t) {
                          return rule->aggregate(inputs_of(v), out_inline, &o_inline);
                        })
                        .get()
                        .ok());
        const std::string what = "n = " + std::to_string(n) + ", beta = " + std::to_string(beta) +
                                 ", ties = " + std::to_string(ties);
        EXPECT_EQ(out, want) << what;
        EXPECT_EQ(out_inline, out) << what;
        for (size_t i = 0; i < n; ++i) {
          EXPECT_EQ(o.influence[i], static_cast<double>(kept[i]) / static_cast<double>(d)) << what;
        }
        EXPECT_EQ(o_inline.influence, o.influence) << what;
      }
    }
  }
}

}  // namespace
}  // namespace cohort::robust
