#include "cohort/codec/sparsify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "codec_test_util.h"

namespace cohort::codec {
namespace {

TEST(SparsifyTest, KFromFractionOrCount) {
  SparsifyOptions o;
  o.fraction = 0.01;
  EXPECT_EQ(o.k(1000), 10);
  EXPECT_EQ(o.k(50), 1);  // ceil, at least one
  o.fraction = 0;
  o.count = 5000;
  EXPECT_EQ(o.k(1000), 1000);  // capped
  EXPECT_EQ(o.spec(), "topk:5000");
  o.error_feedback = false;
  EXPECT_EQ(o.spec(), "topk:5000:noef");
}

TEST(SparsifyTest, TopKKeepsExactlyTheKLargestMagnitudes) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    const std::vector<float> v = testing::normal_vector(5000, seed);
    for (int64_t k : {1, 17, 500, 4999, 5000}) {
      const std::vector<uint32_t> idx = select_topk(v, k);
      ASSERT_EQ(static_cast<int64_t>(idx.size()), k);
      EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()));
      std::vector<float> mags;
      for (float x : v) mags.push_back(std::fabs(x));
      std::sort(mags.begin(), mags.end(), std::greater<float>());
      const float kth = mags[static_cast<size_t>(k - 1)];
      std::set<uint32_t> kept(idx.begin(), idx.end());
      for (uint32_t i = 0; i < v.size(); ++i) {
        if (std::fabs(v[i]) > kth) {
          EXPECT_TRUE(kept.count(i)) << i;
        }
        if (std::fabs(v[i]) < kth) {
          EXPECT_FALSE(kept.count(i)) << i;
        }
      }
    }
  }
}

TEST(SparsifyTest, TopKBreaksTiesByLowerIndex) {
  const std::vector<float> v = {1, -3, 2, 3, -3, 0.5};
  EXPECT_EQ(select_topk(v, 2), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(select_topk(v, 4), (std::vector<uint32_t>{1, 2, 3, 4}));
}

TEST(SparsifyTest, RandKIsDistinctSortedSeededAndUniform) {
  for (int64_t k : {10, 800}) {  // Floyd's algorithm and the partial shuffle
    const std::vector<uint32_t> a = select_randk(1000, k, 5);
    EXPECT_EQ(static_cast<int64_t>(a.size()), k);
    EXPECT_TRUE(std::adjacent_find(a.begin(), a.end(), std::greater_equal<uint32_t>()) == a.end());
    EXPECT_EQ(a, select_randk(1000, k, 5));
    EXPECT_NE(a, select_randk(1000, k, 6));
  }
  // Each of 10 elements is picked by about k/n of the draws.
  std::vector<int> hits(10);
  const int draws = 20000;
  for (int t = 0; t < draws; ++t) {
    for (uint32_t i : select_randk(10, 3, static_cast<uint64_t>(t))) ++hits[i];
  }
  for (int h : hits) EXPECT_NEAR(h, draws * 0.3, draws * 0.3 * 0.05);
}

}  // namespace
}  // namespace cohort::codec
