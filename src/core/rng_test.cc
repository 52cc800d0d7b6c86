#include "cohort/core/rng.h"

#include <cmath>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

namespace cohort {
namespace {

TEST(RngTest, SameSeedSameStream) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
  }
  EXPECT_NE(Rng(42).next_u64(), c.next_u64());
  EXPECT_NE(Rng::derive(1, "partition").next_u64(), Rng::derive(1, "speeds").next_u64());
  EXPECT_EQ(Rng::derive(1, "task", 3, 4).next_u64(), Rng::derive(1, "task", 3, 4).next_u64());
}

TEST(RngTest, DistributionMoments) {
  Rng r(7);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0, se = 0, sg = 0;
  for (int i = 0; i < n; ++i) {
    su += r.uniform();
    double z = r.normal(2.0, 3.0);
    sn += z;
    sn2 += z * z;
    se += r.exponential(5.0);
    sg += r.gamma(0.5);
  }
  EXPECT_NEAR(su / n, 0.5, 0.01);
  EXPECT_NEAR(sn / n, 2.0, 0.05);
  EXPECT_NEAR(std::sqrt(sn2 / n - (sn / n) * (sn / n)), 3.0, 0.05);
  EXPECT_NEAR(se / n, 5.0, 0.1);
  EXPECT_NEAR(sg / n, 0.5, 0.02);
}

TEST(RngTest, DirichletSumsToOne) {
  Rng r(3);
  std::vector<double> alpha(10, 0.1);
  for (int t = 0; t < 100; ++t) {
    auto p = r.dirichlet(alpha);
    EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-9);
    for (double v : p) EXPECT_GE(v, 0.0);
  }
}

TEST(RngTest, UniformIntAndSampling) {
  Rng r(9);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i) counts[r.uniform_int(6)]++;
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
  auto s = r.sample_without_replacement(10, 4);
  EXPECT_EQ(std::set<uint64_t>(s.begin(), s.end()).size(), 4u);
  for (auto v : s) EXPECT_LT(v, 10u);
}

TEST(RngTest, SparseSamplingPicksWhatTheDenseShuffleWould) {
  // The reference: a partial Fisher-Yates over the whole index array.
  auto dense = [](Rng& r, uint64_t n, uint64_t k) {
    std::vector<uint64_t> idx(n);
    for (uint64_t i = 0; i < n; ++i) idx[i] = i;
    for (uint64_t i = 0; i < k && i < n; ++i) std::swap(idx[i], idx[i + r.uniform_int(n - i)]);
    idx.resize(std::min(k, n));
    return idx;
  };
  for (auto [n, k] : std::vector<std::pair<uint64_t, uint64_t>>{
           {1000000, 1000}, {1000, 1}, {1000, 124}, {1000, 125}, {1000, 999}, {50, 50}, {7, 0}}) {
    Rng a(42), b(42);
    EXPECT_EQ(a.sample_without_replacement(n, k), dense(b, n, k)) << n << " " << k;
    EXPECT_EQ(a.next_u64(), b.next_u64());  // the same draws consumed
  }
}

TEST(RngTest, StateRoundTrip) {
  Rng a(11);
  a.normal();  // leaves a spare
  Rng b(0);
  b.set_state(a.state());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.normal(), b.normal());
}

}  // namespace
}  // namespace cohort
