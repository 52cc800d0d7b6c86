// FixedPoint: hand-computed encodings (clip bounds, integers, two's complement), the two
// stochastic-rounding outcomes and their frequencies, unbiasedness over many seeds, clipping
// counts, NaN, decode of sums including the out-of-range check, and the bits rule.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/rng.h"
#include "cohort/secagg/params.h"

namespace cohort::secagg {
namespace {

TEST(FixedPointTest, RequiredBits) {
  EXPECT_EQ(FixedPoint::required_bits(16, 1), 16);
  EXPECT_EQ(FixedPoint::required_bits(16, 2), 17);
  EXPECT_EQ(FixedPoint::required_bits(16, 100), 23);
  EXPECT_EQ(FixedPoint::required_bits(16, 128), 23);
  EXPECT_EQ(FixedPoint::required_bits(16, 129), 24);
  EXPECT_EQ(FixedPoint::required_bits(8, 1000000), 28);
}

TEST(FixedPointTest, BitsTooSmallAreRefused) {
  const FixedPoint fp{.range = 1.0, .input_bits = 16};
  EXPECT_TRUE(fp.validate(23, 100).ok());
  const Status s = fp.validate(22, 100);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "secagg.bits: must be >= 23 to sum 100 values of 16 bits, got 22");
  const std::vector<float> x = {0.5f};
  EXPECT_EQ(fp.encode(x, 22, 100, 1).status().message(), s.message());
  const std::vector<uint32_t> w = {0};
  EXPECT_EQ(fp.decode(w, 22, 100).status().message(), s.message());
  EXPECT_EQ((FixedPoint{.range = 0.0, .input_bits = 16}).validate(32, 1).message(),
            "secagg.range: must be > 0, got 0");
  EXPECT_EQ((FixedPoint{.range = 1.0, .input_bits = 1}).validate(32, 1).message(),
            "secagg.input_bits: must be in [2, 32], got 1");
}

// range 7, input_bits 4: Q = 7 and one unit per integer; bits 6 fits n = 4.
TEST(FixedPointTest, HandComputedWords) {
  const FixedPoint fp{.range = 7.0, .input_bits = 4};
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {0.0f, 3.0f, -3.0f, 7.0f, -7.0f, 9.5f, -100.0f, inf, -inf};
  const FixedPoint::Encoded e = *fp.encode(x, 6, 4, 42);
  // Two's complement mod 64: -3 -> 61, -7 -> 57.
  EXPECT_EQ(e.words, (std::vector<uint32_t>{0, 3, 61, 7, 57, 7, 57, 7, 57}));
  EXPECT_EQ(e.clipped, 4);
}

TEST(FixedPointTest, StochasticRoundingPicksTheNeighbouringIntegers) {
  const FixedPoint fp{.range = 7.0, .input_bits = 4};
  // -3.25: floor -4 (word 60) with probability 0.25, -3 (word 61) with probability 0.75.
  const std::vector<float> x(20000, -3.25f);
  const FixedPoint::Encoded e = *fp.encode(x, 6, 1, 7);
  int64_t down = 0;
  for (uint32_t w : e.words) {
    ASSERT_TRUE(w == 60 || w == 61) << w;
    down += w == 60;
  }
  EXPECT_NEAR(static_cast<double>(down) / x.size(), 0.25, 0.015);  // > 4 sigma
  // The same seed gives the same words; another seed other words.
  EXPECT_EQ(fp.encode(x, 6, 1, 7)->words, e.words);
  EXPECT_NE(fp.encode(x, 6, 1, 8)->words, e.words);
}

TEST(FixedPointTest, RoundingIsUnbiasedOverSeeds) {
  const FixedPoint fp{.range = 1.0, .input_bits = 8};  // Q = 127
  const std::vector<float> x = {0.3f, -0.71f, 0.0049f, -0.999f, 0.5f};
  std::vector<double> mean(x.size(), 0.0);
  const int seeds = 4000;
  for (int seed = 0; seed < seeds; ++seed) {
    const std::vector<uint32_t> w = fp.encode(x, 8, 1, static_cast<uint64_t>(seed))->words;
    const std::vector<float> back = *fp.decode(w, 8, 1);
    for (size_t i = 0; i < x.size(); ++i) mean[i] += back[i] / seeds;
  }
  // One rounding step is 1/127; the standard error of the mean is below 0.5/127/sqrt(4000).
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(mean[i], static_cast<double>(x[i]), 5 * 0.5 / 127 / std::sqrt(seeds)) << i;
  }
}

TEST(FixedPointTest, NaNIsAnError) {
  const FixedPoint fp;
  const std::vector<float> x = {0.0f, 1.0f, std::nanf("")};
  const Status s = fp.encode(x, 32, 1, 0).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "secagg: value 2 is NaN");
}

TEST(FixedPointTest, DecodeSums) {
  const FixedPoint fp{.range = 7.0, .input_bits = 4};
  // n = 4: sums lie in [-28, 28]; mod 64, -28 is 36.
  const std::vector<uint32_t> sums = {28, 36, 0, 63, 5};
  EXPECT_EQ(*fp.decode(sums, 6, 4), (std::vector<float>{28, -28, 0, -1, 5}));
  const std::vector<uint32_t> too_big = {29};
  const Status s = fp.decode(too_big, 6, 4).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.message(),
            "secagg: sum word 0 decodes to 29, outside [-28, 28] for 4 values of 4 bits");
  const std::vector<uint32_t> wide = {64};
  EXPECT_EQ(fp.decode(wide, 6, 4).status().message(), "secagg: sum word 0 = 64 is not below 2^6");
}

TEST(FixedPointTest, SumOfEncodingsDecodesToTheSum) {
  const FixedPoint fp{.range = 2.0, .input_bits = 12};  // step 2/2047
  const int n = 9;
  const int32_t bits = FixedPoint::required_bits(12, n);  // 16
  ASSERT_EQ(bits, 16);
  Rng rng(5);
  std::vector<double> want(1000, 0.0);
  std::vector<uint32_t> sum(1000, 0);
  for (int c = 0; c < n; ++c) {
    std::vector<float> x(1000);
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = static_cast<float>(rng.uniform(-2.5, 2.5));  // some clip
      want[i] += std::max(-2.0, std::min(2.0, static_cast<double>(x[i])));
    }
    const auto e = *fp.encode(x, bits, n, static_cast<uint64_t>(c));
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = (sum[i] + e.words[i]) & 0xFFFF;
  }
  const std::vector<float> got = *fp.decode(sum, bits, n);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], n * 2.0 / 2047 + 1e-5);
}

TEST(FixedPointTest, FullWidthWords) {
  const FixedPoint fp{.range = 1.0, .input_bits = 32};  // Q = 2^31 - 1, bits 32, n = 1
  const std::vector<float> x = {1.0f, -1.0f};
  const auto e = *fp.encode(x, 32, 1, 0);
  EXPECT_EQ(e.words, (std::vector<uint32_t>{0x7FFFFFFFu, 0x80000001u}));
  EXPECT_EQ(*fp.decode(e.words, 32, 1), x);
}

}  // namespace
}  // namespace cohort::secagg
