#include "cohort/privacy/dp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cohort/core/ops.h"

namespace cohort::privacy {
namespace {

TEST(DpOptions, ValidateNamesTheKey) {
  EXPECT_TRUE(DpOptions{.noise_multiplier = 1.0}.validate().ok());
  auto msg = [](DpOptions o) { return o.validate().message(); };
  EXPECT_NE(msg({.noise_multiplier = -1}).find("privacy.dp.noise_multiplier"), std::string::npos);
  EXPECT_NE(msg({.clip_norm = 0}).find("privacy.dp.clip_norm"), std::string::npos);
  EXPECT_NE(msg({.delta = 1}).find("privacy.dp.delta"), std::string::npos);
  EXPECT_NE(msg({.target_epsilon = -3.0}).find("privacy.dp.target_epsilon"), std::string::npos);
  EXPECT_NE(msg({.side = "both"}).find("privacy.dp.side"), std::string::npos);
  EXPECT_NE(msg({.target_quantile = 1.0}).find("privacy.dp.target_quantile"), std::string::npos);
  EXPECT_NE(msg({.conversion = "pld"}).find("privacy.dp.conversion"), std::string::npos);
  EXPECT_FALSE(DpOptions{}.enabled());
  EXPECT_TRUE(DpOptions{.target_epsilon = 3.0}.enabled());
}

TEST(ClipL2, ScalesOnlyWhenAbove) {
  std::vector<float> v = {3, 4};  // norm 5
  EXPECT_DOUBLE_EQ(clip_l2(v, 10), 5.0);
  EXPECT_FLOAT_EQ(v[0], 3);
  EXPECT_DOUBLE_EQ(clip_l2(v, 1), 5.0);
  EXPECT_NEAR(v[0], 0.6, 1e-6);
  EXPECT_NEAR(v[1], 0.8, 1e-6);
  EXPECT_NEAR(ops::l2_norm(v), 1.0, 1e-6);
}

TEST(GaussianNoise, HasTheRequestedMomentsAndRepeats) {
  const NoiseSeed seed = derive_seed(7, "test");
  std::vector<float> v(200001, 0.0f);  // odd length: the last pair is half used
  add_gaussian_noise(v, 2.5, seed, 3);
  double mean = 0, sq = 0;
  for (float x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (float x : v) sq += (x - mean) * (x - mean);
  const double sd = std::sqrt(sq / static_cast<double>(v.size() - 1));
  // Standard errors: mean 2.5 / sqrt(2e5) = 0.0056, sd about 0.004.
  EXPECT_NEAR(mean, 0.0, 0.03);
  EXPECT_NEAR(sd, 2.5, 0.02);
  std::vector<float> w(v.size(), 0.0f);
  add_gaussian_noise(w, 2.5, seed, 3);
  EXPECT_EQ(v, w);  // same seed and stream: same draws
  std::vector<float> other(v.size(), 0.0f);
  add_gaussian_noise(other, 2.5, seed, 4);
  EXPECT_NE(v, other);
  // A prefix of a longer vector draws the same values (chunks are positional).
  std::vector<float> prefix(1000, 0.0f);
  add_gaussian_noise(prefix, 2.5, seed, 3);
  for (size_t i = 0; i < prefix.size(); ++i) EXPECT_EQ(prefix[i], v[i]) << i;
}

TEST(GaussianNoise, ScalarDrawsAreStandardNormal) {
  const NoiseSeed seed = derive_seed(1, "scalar");
  double s = 0, s2 = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double z = gaussian(seed, 0, static_cast<uint64_t>(i));
    s += z;
    s2 += z * z;
  }
  EXPECT_NEAR(s / n, 0.0, 0.03);
  EXPECT_NEAR(s2 / n, 1.0, 0.04);
  EXPECT_EQ(gaussian(seed, 0, 5), gaussian(seed, 0, 5));
  EXPECT_NE(gaussian(seed, 0, 5), gaussian(seed, 1, 5));
}

TEST(Seeds, DerivedRepeatRandomDoNot) {
  EXPECT_EQ(derive_seed(1, "a"), derive_seed(1, "a"));
  EXPECT_NE(derive_seed(1, "a"), derive_seed(2, "a"));
  EXPECT_NE(derive_seed(1, "a"), derive_seed(1, "b"));
  EXPECT_NE(random_seed(), random_seed());
}

TEST(AdaptiveClipping, HandComputedSteps) {
  // z = 1, sigma_b = 1: (1 - 1/4)^(-1/2) = 1.1547...
  auto z = update_noise_multiplier(1.0, 1.0);
  ASSERT_TRUE(z.ok());
  EXPECT_NEAR(*z, 1.0 / std::sqrt(0.75), 1e-12);
  Result<double> too_small = update_noise_multiplier(1.0, 0.5);
  ASSERT_FALSE(too_small.ok());
  EXPECT_NE(too_small.error().message().find("clipped_count_stddev"), std::string::npos);
  // 8 of 10 unclipped with target 0.5: b = 0.8, S <- S exp(-0.2 * 0.3).
  EXPECT_NEAR(next_clip_norm(2.0, 8, 10, 0, 10, 0.5, 0.2), 2.0 * std::exp(-0.06), 1e-12);
  // Too few unclipped: the bound grows.
  EXPECT_GT(next_clip_norm(2.0, 1, 10, 0, 10, 0.5, 0.2), 2.0);
  // Noise on the count moves b.
  EXPECT_NEAR(next_clip_norm(1.0, 5, 10, 1.0, 10, 0.5, 0.2), std::exp(-0.02), 1e-12);
  // Fewer updates than planned: centred bits, b = (3 - 4 / 2) / 10 + 1/2 = 0.6.
  EXPECT_NEAR(next_clip_norm(1.0, 3, 4, 0, 10, 0.5, 0.2), std::exp(-0.2 * 0.1), 1e-12);
}

}  // namespace
}  // namespace cohort::privacy
