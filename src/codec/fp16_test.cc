#include "cohort/codec/fp16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "codec_test_util.h"

namespace cohort::codec {
namespace {

TEST(Fp16Test, EveryFiniteHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // Inf / NaN
    const float f = half_to_float(static_cast<uint16_t>(h));
    EXPECT_EQ(float_to_half(f), h) << h;
  }
}

TEST(Fp16Test, RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -10);  // spacing of halves in [1, 2)
  EXPECT_EQ(half_to_float(float_to_half(1.0f + ulp / 2)), 1.0f);             // tie -> even
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 3 * ulp / 2)), 1.0f + 2 * ulp);  // tie -> even
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 0.6f * ulp)), 1.0f + ulp);
  EXPECT_EQ(half_to_float(float_to_half(-2.5f)), -2.5f);
}

TEST(Fp16Test, SaturatesAndKeepsSubnormals) {
  EXPECT_EQ(half_to_float(float_to_half(1e6f)), 65504.0f);
  EXPECT_EQ(half_to_float(float_to_half(-70000.0f)), -65504.0f);
  EXPECT_EQ(half_to_float(float_to_half(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(float_to_half(std::ldexp(1.0f, -26))), 0.0f);
  EXPECT_EQ(half_to_float(float_to_half(3 * std::ldexp(1.0f, -20))), 3 * std::ldexp(1.0f, -20));
}

TEST(Fp16Test, RelativeErrorWithinHalfAnUlp) {
  const std::vector<float> v = testing::normal_vector(100000, 7);
  auto codec = make_fp16();
  std::vector<uint8_t> bytes(static_cast<size_t>(codec->encoded_bytes(100000)));
  ASSERT_EQ(bytes.size(), 200000u);
  codec->encode(v, 0, nullptr, 0, 1, nullptr, bytes.data());
  std::vector<float> out(v.size());
  ASSERT_TRUE(codec->decode(bytes.data(), nullptr, out).ok());
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::fabs(v[i]) < 6.1e-5f) {
      EXPECT_LE(std::fabs(out[i] - v[i]), std::ldexp(1.0f, -25)) << i;  // subnormal spacing / 2
    } else {
      EXPECT_LE(std::fabs(out[i] - v[i]), std::fabs(v[i]) * std::ldexp(1.0f, -11)) << i;
    }
  }
}

}  // namespace
}  // namespace cohort::codec
