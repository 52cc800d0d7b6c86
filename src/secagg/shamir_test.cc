// Shamir sharing over GF(2^61 - 1): field arithmetic against 128-bit reference values, limb
// packing, reconstruction from exactly t, more than t and fewer than t shares, a corrupted
// share, and the byte form of a share.
#include "secagg/shamir.h"

#include <sodium.h>

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

namespace cohort::secagg::shamir {
namespace {

Secret random_secret() {
  Secret s;
  randombytes_buf(s.data(), s.size());
  return s;
}

std::vector<uint64_t> range_xs(uint64_t n) {
  std::vector<uint64_t> xs(n);
  for (uint64_t i = 0; i < n; ++i) xs[i] = i + 1;
  return xs;
}

TEST(ShamirTest, FieldArithmetic) {
  ASSERT_GE(sodium_init(), 0);
  EXPECT_EQ(mul_mod(kPrime - 1, kPrime - 1), 1u);  // (-1)^2
  EXPECT_EQ(mul_mod(uint64_t{1} << 60, 4), 2u);    // 2^62 = 2 (mod 2^61 - 1)
  EXPECT_EQ(add_mod(kPrime - 1, 5), 4u);
  EXPECT_EQ(sub_mod(3, 5), kPrime - 2);
  for (uint64_t a : {uint64_t{1}, uint64_t{2}, uint64_t{12345}, kPrime - 1, uint64_t{1} << 40}) {
    EXPECT_EQ(mul_mod(a, inverse(a)), 1u) << a;
  }
  // Against a direct 128-bit remainder.
  const uint64_t a = 0x1234567890abcdefULL % kPrime, b = 0x0fedcba987654321ULL % kPrime;
  const auto want = static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) % kPrime);
  EXPECT_EQ(mul_mod(a, b), want);
}

TEST(ShamirTest, LimbsRoundTrip) {
  Secret s{};
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(i + 1);
  const auto limbs = to_limbs(s);
  EXPECT_EQ(limbs[0], 0x07060504030201ULL);  // bytes 1..7, little-endian
  EXPECT_EQ(limbs[4], 0x201f1e1dULL);        // the last 4 bytes
  EXPECT_EQ(*from_limbs(limbs), s);
  auto bad = limbs;
  bad[4] = uint64_t{1} << 32;
  EXPECT_EQ(from_limbs(bad).status().code(), StatusCode::kDataLoss);
}

TEST(ShamirTest, ExactlyTSharesReconstruct) {
  ASSERT_GE(sodium_init(), 0);
  for (int32_t t : {1, 2, 3, 7}) {
    const Secret secret = random_secret();
    const auto xs = range_xs(10);
    auto shares = *split(secret, t, xs);
    ASSERT_EQ(shares.size(), 10u);
    // Several subsets of exactly t shares, including the last ones.
    for (size_t start = 0; start + t <= shares.size(); start += 3) {
      std::span<const Share> subset(shares.data() + start, static_cast<size_t>(t));
      EXPECT_EQ(*combine(subset, t), secret) << "t = " << t << ", start " << start;
    }
  }
}

TEST(ShamirTest, MoreThanTSharesGiveTheSameSecret) {
  const Secret secret = random_secret();
  auto shares = *split(secret, 4, range_xs(9));
  EXPECT_EQ(*combine(shares, 4), secret);
  std::reverse(shares.begin(), shares.end());
  EXPECT_EQ(*combine(std::span<const Share>(shares.data(), 6), 4), secret);
}

TEST(ShamirTest, NonConsecutiveXs) {
  const Secret secret = random_secret();
  const std::vector<uint64_t> xs = {3, 17, 40, 41, 99};
  auto shares = *split(secret, 3, xs);
  const std::vector<Share> pick = {shares[4], shares[0], shares[2]};
  EXPECT_EQ(*combine(pick, 3), secret);
}

TEST(ShamirTest, FewerThanTSharesAreRefused) {
  auto shares = *split(random_secret(), 5, range_xs(6));
  const Result<Secret> r = combine(std::span<const Share>(shares.data(), 4), 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "shamir: 4 shares, need at least 5");
}

TEST(ShamirTest, CorruptedShareChangesTheSecret) {
  const Secret secret = random_secret();
  auto shares = *split(secret, 3, range_xs(5));
  shares[1].y[2] = add_mod(shares[1].y[2], 1);
  // All five, or exactly three including the bad one: wrong (or not a secret at all).
  for (std::span<const Share> subset :
       {std::span<const Share>(shares), std::span<const Share>(shares.data(), 3)}) {
    const Result<Secret> r = combine(subset, 3);
    if (r.ok()) {
      EXPECT_NE(*r, secret);
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    }
  }
  // Leaving the bad share out recovers the secret.
  std::vector<Share> rest = {shares[0], shares[2], shares[3], shares[4]};
  EXPECT_EQ(*combine(rest, 3), secret);
}

TEST(ShamirTest, SplitAndCombineErrors) {
  const Secret secret = random_secret();
  EXPECT_EQ(split(secret, 4, range_xs(3)).status().message(),
            "shamir: threshold 4 must be in [1, 3]");
  EXPECT_EQ(split(secret, 2, std::vector<uint64_t>{1, 2, 2}).status().message(),
            "shamir: x-coordinate 2 appears twice");
  EXPECT_EQ(split(secret, 2, std::vector<uint64_t>{0, 1}).status().message(),
            "shamir: x-coordinate 0 is not in [1, 2^61 - 1)");
  auto shares = *split(secret, 2, range_xs(3));
  shares[1].x = shares[0].x;
  EXPECT_EQ(combine(shares, 2).status().message(), "shamir: x-coordinate 1 appears twice");
}

TEST(ShamirTest, ShareBytes) {
  auto shares = *split(random_secret(), 2, range_xs(2));
  const ShareBytes b = to_bytes(shares[1]);
  EXPECT_EQ(*from_bytes(2, b), shares[1]);
  ShareBytes bad = b;
  for (int i = 16; i < 24; ++i) bad[i] = 0xff;  // limb 2 = 2^64 - 1
  EXPECT_EQ(from_bytes(2, bad).status().message(), "limb 2 is not below 2^61 - 1");
}

}  // namespace
}  // namespace cohort::secagg::shamir
