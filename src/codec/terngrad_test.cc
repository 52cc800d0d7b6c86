#include "cohort/codec/terngrad.h"

#include <gtest/gtest.h>

#include <cmath>

#include "codec_test_util.h"

namespace cohort::codec {
namespace {

TEST(TernGradTest, ScalerIsClipTimesSigmaOrMaxAbs) {
  const std::vector<float> v = {1, -1, 1, -1, 3};
  float side = 0;
  make_terngrad(0.0)->fit(v, &side);
  EXPECT_FLOAT_EQ(side, 3.0f);
  make_terngrad(2.0)->fit(v, &side);
  const double mean = 0.6, var = (0.16 + 2.56 + 0.16 + 2.56 + 5.76) / 5;
  EXPECT_NEAR(side, 2.0 * std::sqrt(var), 1e-5);
  (void)mean;
}

TEST(TernGradTest, ValuesAreTernaryClippedAndUnbiasedBelowTheScaler) {
  auto c = make_terngrad(0.0);
  const std::vector<float> v = testing::normal_vector(64, 2);
  float s = 0;
  c->fit(v, &s);
  const int n = 4000;
  std::vector<double> mean(v.size());
  std::vector<uint8_t> bytes(static_cast<size_t>(c->encoded_bytes(64)));
  ASSERT_EQ(bytes.size(), 16u);
  std::vector<float> out(v.size());
  for (int t = 0; t < n; ++t) {
    c->encode(v, 0, nullptr, 0, static_cast<uint64_t>(t), &s, bytes.data());
    ASSERT_TRUE(c->decode(bytes.data(), &s, out).ok());
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_TRUE(out[i] == 0 || out[i] == s || out[i] == -s);
      if (out[i] != 0) {
        ASSERT_EQ(out[i] > 0, v[i] > 0);
      }
      mean[i] += out[i] / n;
    }
  }
  // Bernoulli(p) * s has standard deviation <= s / 2; the mean of n within 5 sigma.
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(mean[i], v[i], 5 * s / (2 * std::sqrt(n))) << i;

  // With clipping, values beyond the scaler always become +-s.
  auto clipped = make_terngrad(1.0);
  const std::vector<float> w = {0.1f, -0.1f, 0.1f, -0.1f, 10.0f, -10.0f};
  float cs = 0;
  clipped->fit(w, &cs);
  ASSERT_LT(cs, 10.0f);
  clipped->encode(w, 0, nullptr, 0, 3, &cs, bytes.data());
  std::vector<float> o(w.size());
  ASSERT_TRUE(clipped->decode(bytes.data(), &cs, o).ok());
  EXPECT_EQ(o[4], cs);
  EXPECT_EQ(o[5], -cs);
}

TEST(TernGradTest, RejectsCodeThreeAndBadScaler) {
  auto c = make_terngrad();
  float s = 1.0f;
  const uint8_t bytes[1] = {0x03};
  std::vector<float> out(4);
  Status st = c->decode(bytes, &s, out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("ternary"), std::string::npos);
  float bad = -1.0f;
  EXPECT_FALSE(c->check_side(&bad).ok());
  bad = NAN;
  EXPECT_FALSE(c->check_side(&bad).ok());
}

}  // namespace
}  // namespace cohort::codec
