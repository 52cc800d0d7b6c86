#include "cohort/robust/contribution.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

namespace cohort::robust {
namespace {

// A utility of plain doubles (never fails).
Utility game(std::function<double(const std::vector<int>&)> f) {
  return [f = std::move(f)](const std::vector<int>& s) -> Result<double> {
    return f(s);
  };
}

bool has(const std::vector<int>& s, int i) { return std::find(s.begin(), s.end(), i) != s.end(); }

ContributionOptions options(int64_t evaluations, double truncation = 0.0) {
  ContributionOptions o;
  o.evaluations = evaluations;
  o.truncation = truncation;
  return o;
}

// Shapley values by averaging marginals over all n! orders (independent of the library).
std::vector<double> brute_force_shapley(int n, const std::function<double(std::vector<int>)>& u) {
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> sum(static_cast<size_t>(n), 0.0);
  int64_t count = 0;
  do {
    std::vector<int> prefix;
    for (int i : order) {
      std::vector<int> with = prefix;
      with.push_back(i);
      std::sort(with.begin(), with.end());
      sum[static_cast<size_t>(i)] += u(with) - u(prefix);
      prefix = with;
    }
    ++count;
  } while (std::next_permutation(order.begin(), order.end()));
  for (double& v : sum) v /= static_cast<double>(count);
  return sum;
}

// An accuracy-like game on 12 players: diminishing returns in the summed quality, a bonus for
// a complementary pair, a null player (11) and two identical players (3, 4).
double accuracy_game(const std::vector<int>& s) {
  static const double kQuality[12] = {0.9, 0.5, 0.3, 0.7, 0.7, 0.2, 0.6, 0.1, 0.4, 0.8, 0.25, 0.0};
  double q = 0.0;
  for (int i : s) q += kQuality[i];
  double u = 0.2 + 0.7 * (1.0 - std::exp(-q));
  if (has(s, 1) && has(s, 2)) u += 0.05;
  return u;
}

TEST(ContributionOptionsTest, Validates) {
  EXPECT_TRUE(check_contribution_options(ContributionOptions{}).ok());
  ContributionOptions o;
  for (const char* m : {"none", "loo", "shapley"}) {
    o.method = m;
    EXPECT_TRUE(check_contribution_options(o).ok()) << m;
  }
  o.method = "banzhaf";
  const Status bad_method = check_contribution_options(o);
  EXPECT_EQ(bad_method.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_method.message(),
            "contribution.method: unknown 'banzhaf' (known: none, loo, shapley)");
  o = ContributionOptions{};
  o.evaluations = 0;
  EXPECT_EQ(check_contribution_options(o).message(),
            "contribution.evaluations: must be >= 1, got 0");
  o = ContributionOptions{};
  o.truncation = -0.5;
  EXPECT_EQ(check_contribution_options(o).message(),
            "contribution.truncation: must be >= 0, got -0.5");
  o.truncation = std::nan("");
  EXPECT_EQ(check_contribution_options(o).code(), StatusCode::kInvalidArgument);
  o.truncation = std::numeric_limits<double>::infinity();
  EXPECT_EQ(check_contribution_options(o).code(), StatusCode::kInvalidArgument);
  o.truncation = 0.0;
  EXPECT_TRUE(check_contribution_options(o).ok());
}

TEST(ContributionTest, BadOptionsAndPlayerCountAreErrors) {
  const Utility u = game([](const std::vector<int>& s) {
    return static_cast<double>(s.size());
  });
  ContributionOptions o;
  o.evaluations = 0;
  Result<ContributionResult> s = shapley(3, u, o, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "contribution.evaluations: must be >= 1, got 0");
  Result<ContributionResult> l = leave_one_out(3, u, o);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(shapley(-1, u, ContributionOptions{}, 1).ok());
  EXPECT_FALSE(leave_one_out(-1, u, ContributionOptions{}).ok());
}

TEST(ContributionTest, UtilityErrorsPropagate) {
  const Status boom = Status::unavailable("validation set gone");
  // Fails on a subset met late in the walk, so both exact and Monte-Carlo reach it.
  const Utility u = [&](const std::vector<int>& s) -> Result<double> {
    if (s.size() == 2) return boom;
    return static_cast<double>(s.size());
  };
  for (int64_t evaluations : {int64_t{1000}, int64_t{20}}) {  // exact (n = 5), Monte-Carlo
    Result<ContributionResult> r = shapley(5, u, options(evaluations), 7);
    ASSERT_FALSE(r.ok()) << evaluations;
    EXPECT_EQ(r.error(), boom);
  }
  const Utility loo_fail = [&](const std::vector<int>& s) -> Result<double> {
    if (s.size() == 4 && !has(s, 2)) return boom;
    return static_cast<double>(s.size());
  };
  Result<ContributionResult> l = leave_one_out(5, loo_fail, options(10));
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error(), boom);
  // A NaN utility is an error, not a NaN value.
  const Utility nan_u = game([](const std::vector<int>& s) {
    return s.size() == 1 ? std::nan("") : 1.0;
  });
  Result<ContributionResult> n = shapley(3, nan_u, options(100), 1);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code(), StatusCode::kInvalidArgument);
}

TEST(ContributionTest, ZeroAndOnePlayer) {
  int calls = 0;
  const Utility u = [&](const std::vector<int>& s) -> Result<double> {
    ++calls;
    return s.empty() ? 0.25 : 0.75;
  };
  Result<ContributionResult> r0 = shapley(0, u, ContributionOptions{}, 1);
  ASSERT_TRUE(r0.ok());
  EXPECT_TRUE(r0->values.empty());
  EXPECT_EQ(r0->evaluations, 0);
  EXPECT_EQ(calls, 0);
  Result<ContributionResult> l0 = leave_one_out(0, u, ContributionOptions{});
  ASSERT_TRUE(l0.ok());
  EXPECT_TRUE(l0->values.empty());
  EXPECT_EQ(calls, 0);

  for (int64_t evaluations : {int64_t{1}, int64_t{64}}) {
    Result<ContributionResult> r1 = shapley(1, u, options(evaluations, 0.5), 1);
    ASSERT_TRUE(r1.ok());
    ASSERT_EQ(r1->values.size(), 1u);
    EXPECT_DOUBLE_EQ(r1->values[0], 0.5);
    EXPECT_EQ(r1->evaluations, 2);
    EXPECT_TRUE(r1->exact);
  }
  Result<ContributionResult> l1 = leave_one_out(1, u, options(1));
  ASSERT_TRUE(l1.ok());
  EXPECT_DOUBLE_EQ(l1->values[0], 0.5);
  EXPECT_EQ(l1->evaluations, 2);
  EXPECT_TRUE(l1->exact);
}

TEST(ContributionTest, ExactAdditiveGameGivesIndividualWorths) {
  const std::vector<double> worth = {0.1, -0.3, 0.25, 0.0, 0.6};
  const Utility u = game([&](const std::vector<int>& s) {
    double v = 0.5;
    for (int i : s) v += worth[static_cast<size_t>(i)];
    return v;
  });
  Result<ContributionResult> r = shapley(5, u, options(30), 3);  // 2^5 - 2 = 30: exact
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->exact);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->permutations, 0);
  EXPECT_EQ(r->evaluations, 32);
  for (size_t i = 0; i < worth.size(); ++i) EXPECT_NEAR(r->values[i], worth[i], 1e-12) << i;
  EXPECT_EQ(r->values[3], 0.0);  // null player: exactly 0
}

TEST(ContributionTest, ExactGloveGame) {
  // Player 0 holds a left glove, players 1 and 2 a right glove; a pair is worth 1.
  const Utility u = game([](const std::vector<int>& s) {
    return has(s, 0) && (has(s, 1) || has(s, 2)) ? 1.0 : 0.0;
  });
  Result<ContributionResult> r = shapley(3, u, ContributionOptions{}, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->exact);
  EXPECT_NEAR(r->values[0], 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(r->values[1], 1.0 / 6.0, 1e-15);
  EXPECT_NEAR(r->values[2], 1.0 / 6.0, 1e-15);
  EXPECT_EQ(r->values[1], r->values[2]);
}

TEST(ContributionTest, ExactMajorityGame) {
  const Utility u = game([](const std::vector<int>& s) {
    return s.size() >= 2 ? 1.0 : 0.0;
  });
  Result<ContributionResult> r = shapley(3, u, ContributionOptions{}, 1);
  ASSERT_TRUE(r.ok());
  for (double v : r->values) EXPECT_NEAR(v, 1.0 / 3.0, 1e-15);
  // Weighted majority [quota 3; weights 2, 1, 1]: Shapley values 2/3, 1/6, 1/6.
  const Utility w = game([](const std::vector<int>& s) {
    int votes = 0;
    for (int i : s) votes += i == 0 ? 2 : 1;
    return votes >= 3 ? 1.0 : 0.0;
  });
  Result<ContributionResult> rw = shapley(3, w, ContributionOptions{}, 1);
  ASSERT_TRUE(rw.ok());
  EXPECT_NEAR(rw->values[0], 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(rw->values[1], 1.0 / 6.0, 1e-15);
  EXPECT_NEAR(rw->values[2], 1.0 / 6.0, 1e-15);
}

TEST(ContributionTest, ExactMatchesBruteForcePermutations) {
  // A 4-player game with interactions, a null player (3) and no structure to exploit.
  const auto f = [](const std::vector<int>& s) {
    double v = 0.1;
    if (has(s, 0)) v += 0.3;
    if (has(s, 1)) v += 0.2;
    if (has(s, 0) && has(s, 1)) v -= 0.15;
    if (has(s, 2)) v += has(s, 0) ? 0.4 : 0.05;
    if (s.size() >= 3 && !has(s, 3)) v += 0.07;
    if (s.size() == 4) v += 0.07;  // keeps player 3 null: its presence never changes v
    return v;
  };
  const std::vector<double> expected = brute_force_shapley(4, f);
  Result<ContributionResult> r = shapley(4, game(f), options(14), 9);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->exact);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(r->values[i], expected[i], 1e-12) << i;
  EXPECT_EQ(r->values[3], 0.0);
  // Efficiency.
  const double total = std::accumulate(r->values.begin(), r->values.end(), 0.0);
  EXPECT_NEAR(total, f({0, 1, 2, 3}) - f({}), 1e-12);
}

TEST(ContributionTest, ExactEfficiencyAndSymmetryOnTwelvePlayers) {
  Result<ContributionResult> r = shapley(12, game(accuracy_game), options(4094), 1);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->exact);
  EXPECT_EQ(r->evaluations, 4096);
  const double total = std::accumulate(r->values.begin(), r->values.end(), 0.0);
  EXPECT_NEAR(total, accuracy_game({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) - accuracy_game({}),
              1e-12);
  EXPECT_NEAR(r->values[3], r->values[4], 1e-15);  // identical players
  EXPECT_EQ(r->values[11], 0.0);                   // null player
  EXPECT_GT(r->values[0], r->values[9]);           // more quality, more value
  EXPECT_GT(r->values[9], r->values[3]);
}

TEST(ContributionTest, MonteCarloApproximatesExactOnTwelvePlayers) {
  const Result<ContributionResult> exact = shapley(12, game(accuracy_game), options(4094), 1);
  ASSERT_TRUE(exact.ok() && exact->exact);
  const double gain = accuracy_game({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) - accuracy_game({});
  for (uint64_t seed : {1u, 2u, 3u}) {
    const Result<ContributionResult> mc = shapley(12, game(accuracy_game), options(2000), seed);
    ASSERT_TRUE(mc.ok());
    EXPECT_FALSE(mc->exact);
    EXPECT_TRUE(mc->complete);
    EXPECT_GT(mc->permutations, 100);
    EXPECT_LE(mc->evaluations, 2002);
    double total = 0.0, squares = 0.0;
    for (int i = 0; i < 12; ++i) {
      // Over 200 seeds the error's RMS is about 0.0042 (0.6% of the gain), its worst 0.019:
      // each value within 3% of the gain (about 5 RMS), their RMS within 1%.
      const double error = mc->values[i] - exact->values[i];
      EXPECT_NEAR(error, 0.0, 0.03 * gain) << "seed " << seed << " i " << i;
      squares += error * error;
      total += mc->values[i];
    }
    EXPECT_LT(std::sqrt(squares / 12), 0.01 * gain) << "seed " << seed;
    // Untruncated permutations each sum to U(all) - U(empty) exactly.
    EXPECT_NEAR(total, gain, 1e-12);
    EXPECT_EQ(mc->values[11], 0.0);  // the null player's marginals are all 0
  }
  // With truncation (biased, but still close).
  const Result<ContributionResult> tmc = shapley(12, game(accuracy_game), options(2000, 0.01), 1);
  ASSERT_TRUE(tmc.ok());
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(tmc->values[i], exact->values[i], 0.03 * gain) << i;
  EXPECT_NEAR(tmc->values[11], 0.0, 1e-12);
}

TEST(ContributionTest, TruncationSavesEvaluations) {
  // Saturating utility: after a few players the prefix is within 1% of the full group.
  const auto f = [](const std::vector<int>& s) {
    return 1.0 - std::exp(-1.5 * static_cast<double>(s.size()));
  };
  const Result<ContributionResult> plain = shapley(16, game(f), options(300, 0.0), 5);
  const Result<ContributionResult> truncated = shapley(16, game(f), options(300, 0.01), 5);
  ASSERT_TRUE(plain.ok() && truncated.ok());
  // Same budget, more permutations: each truncated walk needs fewer evaluations.
  EXPECT_GT(truncated->permutations, 3 * plain->permutations);
  // A truncated walk's marginals sum to U(prefix) - U(empty), within 1% of the gain.
  const double gain = f(std::vector<int>(16)) - f({});
  const double total = std::accumulate(truncated->values.begin(), truncated->values.end(), 0.0);
  EXPECT_LE(std::abs(total - gain), 0.01 * gain);
  EXPECT_LT(total, gain);

  // n = 10 (1022 subsets) with a budget of 1000: untruncated walks spend it all; truncated
  // walks only ever reach subsets of at most 4 players (385 of them), then run on the cache.
  int plain_calls = 0, truncated_calls = 0;
  const auto counting = [&](int* calls) {
    return [&f, calls](const std::vector<int>& s) -> Result<double> {
      ++*calls;
      return f(s);
    };
  };
  const Result<ContributionResult> p = shapley(10, counting(&plain_calls), options(1000, 0.0), 2);
  const Result<ContributionResult> t =
      shapley(10, counting(&truncated_calls), options(1000, 0.01), 2);
  ASSERT_TRUE(p.ok() && t.ok());
  EXPECT_EQ(p->evaluations, plain_calls);
  EXPECT_EQ(t->evaluations, truncated_calls);
  EXPECT_EQ(plain_calls, 1002);
  EXPECT_LE(truncated_calls, 2 + 385);
}

TEST(ContributionTest, BetweenRoundTruncationReturnsZeros) {
  int calls = 0;
  const Utility u = [&](const std::vector<int>& s) -> Result<double> {
    ++calls;
    return s.size() == 12 ? 0.9001 : 0.9 + 0.01 * static_cast<double>(s.size() % 3);
  };
  const Result<ContributionResult> r = shapley(12, u, options(64, 0.01), 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->evaluations, 2);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(r->permutations, 0);
  EXPECT_FALSE(r->exact);
  EXPECT_EQ(r->values, std::vector<double>(12, 0.0));
  // Without truncation the round is evaluated.
  const Result<ContributionResult> r0 = shapley(12, u, options(64, 0.0), 1);
  ASSERT_TRUE(r0.ok());
  EXPECT_GT(r0->evaluations, 2);
}

TEST(ContributionTest, CacheEvaluatesEachSubsetOnce) {
  std::map<std::vector<int>, int> calls;
  const Utility u = [&](const std::vector<int>& s) -> Result<double> {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    ++calls[s];
    return accuracy_game(s);
  };
  // n = 8 with 150 of 254 subsets: Monte-Carlo with many repeated prefixes.
  const Result<ContributionResult> r = shapley(8, u, options(150), 4);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->exact);
  for (const auto& [subset, count] : calls) EXPECT_EQ(count, 1);
  EXPECT_EQ(r->evaluations, static_cast<int64_t>(calls.size()));
  EXPECT_LE(r->evaluations, 152);
  EXPECT_GE(r->evaluations, 140);  // the budget was (nearly) spent
  // More permutations than 150 / 7 evaluations could walk without the cache.
  EXPECT_GT(r->permutations, 150 / 7);
}

TEST(ContributionTest, MonteCarloWithMoreThanSixtyFourPlayers) {
  // Bitset keys span two words; additive game: every permutation's marginal is the worth.
  const int n = 70;
  std::map<std::vector<int>, int> calls;
  const Utility u = [&](const std::vector<int>& s) -> Result<double> {
    ++calls[s];
    double v = 0.0;
    for (int i : s) v += 0.01 * (i % 7);
    return v;
  };
  const Result<ContributionResult> r = shapley(n, u, options(500), 11);
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->permutations, 7);
  for (const auto& [subset, count] : calls) EXPECT_EQ(count, 1);
  for (int i = 0; i < n; ++i) EXPECT_NEAR(r->values[i], 0.01 * (i % 7), 1e-12) << i;
}

TEST(ContributionTest, PartialPermutationIsDiscarded) {
  // n = 6, budget 7: the first permutation needs 5 new subsets, the second cannot finish.
  const std::vector<double> worth = {1, 2, 3, 4, 5, 6};
  const Utility u = game([&](const std::vector<int>& s) {
    double v = 0.0;
    for (int i : s) v += worth[static_cast<size_t>(i)];
    return v * v;  // not additive: marginals depend on the order
  });
  const Result<ContributionResult> r = shapley(6, u, options(7), 3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->permutations, 1);
  EXPECT_EQ(r->evaluations, 9);  // the partial walk's evaluations are counted
  const double total = std::accumulate(r->values.begin(), r->values.end(), 0.0);
  EXPECT_NEAR(total, 21.0 * 21.0, 1e-9);  // one whole permutation: sums to U(all) - U(empty)
  // Too small a budget for any permutation: no values, not complete.
  const Result<ContributionResult> none = shapley(6, u, options(3), 3);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->permutations, 0);
  EXPECT_FALSE(none->complete);
  EXPECT_EQ(none->values, std::vector<double>(6, 0.0));
}

TEST(ContributionTest, DeterministicForASeed) {
  const auto run = [](uint64_t seed) {
    return shapley(12, game(accuracy_game), options(300, 0.01), seed);
  };
  const Result<ContributionResult> a = run(42), b = run(42), c = run(43);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->values, b->values);
  EXPECT_EQ(a->evaluations, b->evaluations);
  EXPECT_EQ(a->permutations, b->permutations);
  EXPECT_NE(a->values, c->values);
}

TEST(ContributionTest, LeaveOneOut) {
  // U = 0.5 + 0.1 x0 + 0.2 x1 + 0.3 x2, plus 0.25 when both 0 and 1 are present.
  int calls = 0;
  const Utility u = [&](const std::vector<int>& s) -> Result<double> {
    ++calls;
    double v = 0.5;
    if (has(s, 0)) v += 0.1;
    if (has(s, 1)) v += 0.2;
    if (has(s, 2)) v += 0.3;
    if (has(s, 0) && has(s, 1)) v += 0.25;
    return v;
  };
  const Result<ContributionResult> r = leave_one_out(3, u, ContributionOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->exact);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->evaluations, 4);
  EXPECT_EQ(calls, 4);
  EXPECT_NEAR(r->values[0], 0.35, 1e-12);
  EXPECT_NEAR(r->values[1], 0.45, 1e-12);
  EXPECT_NEAR(r->values[2], 0.3, 1e-12);
  // Budget for two players: the third reports 0.
  calls = 0;
  const Result<ContributionResult> part = leave_one_out(3, u, options(2));
  ASSERT_TRUE(part.ok());
  EXPECT_FALSE(part->exact);
  EXPECT_FALSE(part->complete);
  EXPECT_EQ(part->evaluations, 3);
  EXPECT_EQ(calls, 3);
  EXPECT_NEAR(part->values[0], 0.35, 1e-12);
  EXPECT_NEAR(part->values[1], 0.45, 1e-12);
  EXPECT_EQ(part->values[2], 0.0);
}

}  // namespace
}  // namespace cohort::robust
