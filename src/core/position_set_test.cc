#include "cohort/core/position_set.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "cohort/core/rng.h"

namespace cohort {
namespace {

// The reference: the set's positions listed in order.
std::vector<size_t> listed(const std::vector<bool>& in) {
  std::vector<size_t> out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i]) out.push_back(i);
  }
  return out;
}

void expect_matches(const PositionSet& s, const std::vector<bool>& in) {
  const std::vector<size_t> ref = listed(in);
  ASSERT_EQ(s.count(), static_cast<int64_t>(ref.size()));
  for (size_t k = 0; k < ref.size(); ++k) {
    EXPECT_EQ(s.select(static_cast<int64_t>(k)), ref[k]) << "k = " << k;
  }
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(s.contains(i), in[i]);
}

TEST(PositionSetTest, ResetFillsAllOrNone) {
  for (size_t n : {0, 1, 63, 64, 65, 511, 512, 513, 5000}) {
    PositionSet s;
    s.reset(n, true);
    expect_matches(s, std::vector<bool>(n, true));
    if (n > 3) {
      s.set(2, false);  // the tree counts what the fill set
      std::vector<bool> in(n, true);
      in[2] = false;
      expect_matches(s, in);
    }
    s.reset(n, false);
    expect_matches(s, std::vector<bool>(n, false));
  }
}

TEST(PositionSetTest, SelectSortedAgreesWithSelect) {
  Rng rng(11);
  for (size_t n : {1, 64, 700, 20000}) {
    std::vector<bool> in(n);
    for (size_t i = 0; i < n; ++i) in[i] = rng.uniform() < 0.3;
    in[n - 1] = true;  // the last position too
    PositionSet s;
    s.assign(in);
    // Samples from one pick (the descents) to every position (the pass), repeats included.
    for (uint64_t k : {uint64_t{1}, uint64_t{5}, static_cast<uint64_t>(s.count())}) {
      std::vector<uint64_t> ks;
      for (uint64_t j = 0; j < k; ++j)
        ks.push_back(rng.uniform_int(static_cast<uint64_t>(s.count())));
      ks.push_back(static_cast<uint64_t>(s.count()) - 1);
      std::sort(ks.begin(), ks.end());
      std::vector<size_t> out(ks.size());
      s.select_sorted(ks, out);
      for (size_t j = 0; j < ks.size(); ++j) {
        EXPECT_EQ(out[j], s.select(static_cast<int64_t>(ks[j]))) << n << " " << ks[j];
      }
    }
  }
}

TEST(PositionSetTest, EmptyAndFull) {
  PositionSet s;
  s.reset(0);
  EXPECT_EQ(s.count(), 0);
  s.reset(5);
  EXPECT_EQ(s.count(), 0);
  s.assign(std::vector<bool>(5, true));
  EXPECT_EQ(s.count(), 5);
  for (int64_t k = 0; k < 5; ++k) EXPECT_EQ(s.select(k), static_cast<size_t>(k));
}

TEST(PositionSetTest, HandPickedPositions) {
  PositionSet s;
  s.reset(10);
  s.set(7, true);
  s.set(2, true);
  s.set(9, true);
  s.set(2, true);  // already in: no change
  EXPECT_EQ(s.count(), 3);
  EXPECT_EQ(s.select(0), 2u);
  EXPECT_EQ(s.select(1), 7u);
  EXPECT_EQ(s.select(2), 9u);
  s.set(7, false);
  s.set(0, true);
  EXPECT_EQ(s.count(), 3);
  EXPECT_EQ(s.select(0), 0u);
  EXPECT_EQ(s.select(1), 2u);
  EXPECT_EQ(s.select(2), 9u);
}

// Random toggles against the listed reference, for sizes around powers of two.
TEST(PositionSetTest, RandomTogglesMatchTheList) {
  for (size_t n : {1u, 2u, 3u, 7u, 8u, 9u, 63u, 64u, 65u, 100u, 511u, 512u, 513u, 1000u, 1024u,
                   4097u, 70000u}) {
    Rng rng(n);
    std::vector<bool> in(n);
    for (size_t i = 0; i < n; ++i) in[i] = rng.uniform() < 0.5;
    PositionSet s;
    s.assign(in);
    expect_matches(s, in);
    for (int t = 0; t < 500; ++t) {
      const size_t p = static_cast<size_t>(rng.uniform_int(n));
      const bool v = rng.uniform() < 0.5;
      in[p] = v;
      s.set(p, v);
    }
    expect_matches(s, in);
  }
}

// Sparse and dense sets over many blocks, positions at block and word edges.
TEST(PositionSetTest, BlockAndWordEdges) {
  const size_t n = 3 * 512 + 70;
  std::vector<bool> in(n, false);
  for (size_t p : {0u, 63u, 64u, 511u, 512u, 1023u, 1024u, 1535u, 1536u, 1605u}) in[p] = true;
  PositionSet s;
  s.assign(in);
  expect_matches(s, in);
  s.set(1605, false);
  s.set(511, false);
  in[1605] = false;
  in[511] = false;
  expect_matches(s, in);
  std::vector<bool> full(n, true);
  s.assign(full);
  expect_matches(s, full);
  for (size_t p = 0; p < n; p += 3) {
    full[p] = false;
    s.set(p, false);
  }
  expect_matches(s, full);
}

}  // namespace
}  // namespace cohort
