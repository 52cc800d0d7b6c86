// Krum and multi-Krum: Flower's published test vectors, hand-computed groups, the n > 2f + 2
// bound, and agreement with a direct pairwise-distance reference on random data.
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

std::unique_ptr<Rule> krum(int64_t f, bool multi = false, int64_t m = 0) {
  RuleOptions o;
  o.rule = multi ? "multi_krum" : "krum";
  o.f = f;
  o.m = m;
  auto r = make_rule(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

double stat(const Outcome& o, const std::string& name) {
  for (const auto& [k, v] : o.stats) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no stat " << name;
  return -1;
}

// Flower's Krum test (framework/py/flwr/server/strategy/krum_test.py, test_aggregate_fit):
// [0.2]*4, [0.7]*4, [1.0]*4 with 5 examples each give [0.7]*4. Flower runs it with
// num_malicious_clients = 1, which Cohort refuses (Krum's guarantee needs n > 2f + 2); f = 0
// gives the same num_closest = max(1, n - f - 2) = 1, so the same scores: 1.0, 0.36, 0.36,
// and the tie goes to the lower index, as numpy.argmin.
TEST(KrumTest, FlowerKrumVector) {
  const Vectors v = {{0.2f, 0.2f, 0.2f, 0.2f}, {0.7f, 0.7f, 0.7f, 0.7f}, {1.0f, 1.0f, 1.0f, 1.0f}};
  std::vector<float> out(4);
  Outcome o;
  ASSERT_TRUE(krum(0)->aggregate(inputs_of(v, {5, 5, 5}), out, &o).ok());
  for (float x : out) EXPECT_EQ(x, 0.7f);
  EXPECT_EQ(o.influence, (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(stat(o, "selected"), 1);
  EXPECT_EQ(stat(o, "first_selected"), 1);
}

// Flower's multi-Krum test (framework/py/flwr/server/strategy/multikrum_test.py,
// test_aggregate_fit): [0.2]*4, [0.5]*4, [1.0]*4, num_clients_to_keep = 2 give [0.35]*4 (the
// example-weighted mean of the first two). f = 0 for the reason above.
TEST(KrumTest, FlowerMultiKrumVector) {
  const Vectors v = {{0.2f, 0.2f, 0.2f, 0.2f}, {0.5f, 0.5f, 0.5f, 0.5f}, {1.0f, 1.0f, 1.0f, 1.0f}};
  std::vector<float> out(4);
  Outcome o;
  ASSERT_TRUE(krum(0, true, 2)->aggregate(inputs_of(v, {5, 5, 5}), out, &o).ok());
  for (float x : out) EXPECT_FLOAT_EQ(x, 0.35f);
  EXPECT_EQ(o.influence, (std::vector<double>{1, 1, 0}));
  EXPECT_EQ(stat(o, "selected"), 2);
}

// 1-D points 0, 1, 2, 3, 100 with f = 1: num_closest = 2, squared distances give the scores
//   0: 1 + 4 = 5   1: 1 + 1 = 2   2: 1 + 1 = 2   3: 1 + 4 = 5   100: 97^2 + 98^2 = 19013.
const Vectors kLine = {{0}, {1}, {2}, {3}, {100}};

TEST(KrumTest, HandComputedKrumRejectsTheOutlier) {
  std::vector<float> out(1);
  Outcome o;
  ASSERT_TRUE(krum(1)->aggregate(inputs_of(kLine), out, &o).ok());
  EXPECT_EQ(out[0], 1.0f);  // scores 2 and 2: the lower index
  EXPECT_EQ(o.influence, (std::vector<double>{0, 1, 0, 0, 0}));
  EXPECT_DOUBLE_EQ(stat(o, "best_score"), 2.0);
}

TEST(KrumTest, HandComputedMultiKrumIsWeighted) {
  const std::vector<double> w = {1, 2, 3, 4, 100};
  std::vector<float> out(1);
  Outcome o;
  // m = 0: n - f = 4 lowest scores, inputs 0..3: (0*1 + 1*2 + 2*3 + 3*4) / 10 = 2.
  ASSERT_TRUE(krum(1, true)->aggregate(inputs_of(kLine, w), out, &o).ok());
  EXPECT_FLOAT_EQ(out[0], 2.0f);
  EXPECT_EQ(o.influence, (std::vector<double>{1, 1, 1, 1, 0}));
  // m = 2: inputs 1 and 2: (1*2 + 2*3) / 5 = 1.6.
  ASSERT_TRUE(krum(1, true, 2)->aggregate(inputs_of(kLine, w), out, &o).ok());
  EXPECT_FLOAT_EQ(out[0], 1.6f);
  EXPECT_EQ(o.influence, (std::vector<double>{0, 1, 1, 0, 0}));
}

TEST(KrumTest, NeedsMoreThanTwoFPlusTwo) {
  const Vectors v = {{0}, {1}, {2}, {3}};
  std::vector<float> out(1);
  const Status s = krum(1)->aggregate(inputs_of(v), out, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "krum: needs more than 2f + 2 = 4 updates per group (robust.f = 1), got 4");
  EXPECT_EQ(krum(2, true)->check(6).message(),
            "multi_krum: needs more than 2f + 2 = 6 updates per group (robust.f = 2), got 6");
  EXPECT_TRUE(krum(1)->check(5).ok());
  EXPECT_EQ(krum(1, true, 7)->check(5).message(),
            "multi_krum: robust.m = 7 is more than the 5 updates of the group");
}

TEST(KrumTest, OptionErrors) {
  RuleOptions o;
  o.rule = "krum";
  o.f = -1;
  EXPECT_EQ(make_rule(o).status().message(), "robust.f: must be >= 0, got -1");
  o.rule = "multi_krum";
  o.f = 1;
  o.m = -2;
  EXPECT_EQ(make_rule(o).status().message(), "robust.m: must be >= 0, got -2");
}

TEST(KrumTest, InputErrors) {
  const Vectors v = {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4}};
  std::vector<float> out(2);
  EXPECT_EQ(krum(1)->aggregate(inputs_of(v), out, nullptr).message(),
            "krum: update 4 has 1 values, expected 2");
  const Vectors ok = {{0}, {1}, {2}, {3}, {4}};
  std::vector<float> out1(1);
  EXPECT_EQ(krum(1)->aggregate(inputs_of(ok, {1, 1, 0, 1, 1}), out1, nullptr).message(),
            "krum: weight of update 2 must be positive and finite, got 0");
}

TEST(KrumTest, Describe) {
  EXPECT_EQ(krum(1)->describe(), "krum(f=1)");
  EXPECT_EQ(krum(2, true)->describe(), "multi_krum(f=2, m=n-f)");
  EXPECT_EQ(krum(2, true, 3)->describe(), "multi_krum(f=2, m=3)");
}

// Scores from direct pairwise distances in double, summed as Flower sums them.
std::vector<double> reference_scores(const Vectors& v, int64_t f) {
  const size_t n = v.size();
  std::vector<double> score(n, 0.0);
  const size_t num_closest =
      static_cast<size_t>(std::max<int64_t>(1, static_cast<int64_t>(n) - f - 2));
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> row;
    for (size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double d = 0;
      for (size_t t = 0; t < v[i].size(); ++t) {
        const double e = static_cast<double>(v[i][t]) - v[j][t];
        d += e * e;
      }
      row.push_back(d);
    }
    std::sort(row.begin(), row.end());
    for (size_t c = 0; c < num_closest; ++c) score[i] += row[c];
  }
  return score;
}

// Random groups longer than several parallel chunks (and not a multiple of one): the
// selection and score match the direct computation; the outcome is bit-identical whether the
// kernels run on every kernel thread or inline on one (from inside a pool worker).
TEST(KrumTest, MatchesReferenceOnRandomDataForAnyThreadCount) {
  Rng rng(7);
  const size_t n = 9, d = 100'003;
  Vectors v(n, std::vector<float>(d));
  for (size_t i = 0; i < n; ++i) {
    const double centre = i == 3 ? 3.0 : 0.0;  // one shifted input
    for (float& x : v[i]) x = static_cast<float>(rng.normal(centre, 1.0));
  }
  std::vector<double> w(n);
  for (double& x : w) x = rng.uniform(1, 10);
  const int64_t f = 2;
  const std::vector<double> ref = reference_scores(v, f);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return ref[a] < ref[b];
  });
  for (bool multi : {false, true}) {
    auto rule = krum(f, multi);
    std::vector<float> out(d), out_inline(d);
    Outcome o, o_inline;
    ASSERT_TRUE(rule->aggregate(inputs_of(v, w), out, &o).ok());
    ASSERT_TRUE(kernel_pool()
                    .submit([&](size_t) {
                      return rule->aggregate(inputs_of(v, w), out_inline, &o_inline);
                    })
                    .get()
                    .ok());
    EXPECT_EQ(out, out_inline);
    EXPECT_EQ(o.influence, o_inline.influence);
    EXPECT_EQ(o.stats, o_inline.stats);
    EXPECT_NEAR(stat(o, "best_score"), ref[order[0]], 1e-9 * ref[order[0]]);
    EXPECT_EQ(stat(o, "first_selected"), static_cast<double>(order[0]));
    EXPECT_EQ(o.influence[3], 0.0);  // the shifted input is never selected
    const size_t m = multi ? n - f : 1;
    double total = 0;
    for (size_t c = 0; c < m; ++c) total += w[order[c]];
    for (size_t t = 0; t < d; t += 997) {
      double want = 0;
      for (size_t c = 0; c < m; ++c) want += w[order[c]] / total * v[order[c]][t];
      EXPECT_NEAR(out[t], want, 1e-5) << t;
    }
  }
}

}  // namespace
}  // namespace cohort::robust
