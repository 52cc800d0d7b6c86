#include "cohort/codec/bf16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "codec_test_util.h"

namespace cohort::codec {
namespace {

TEST(Bf16Test, EveryFiniteBf16RoundTripsExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7f80) == 0x7f80) continue;  // Inf / NaN
    EXPECT_EQ(float_to_bf16(bf16_to_float(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Bf16Test, RoundsToNearestEvenAndSaturates) {
  const float ulp = std::ldexp(1.0f, -7);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + ulp / 2)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3 * ulp / 2)), 1.0f + 2 * ulp);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 0.6f * ulp)), 1.0f + ulp);
  const float big = bf16_to_float(float_to_bf16(std::numeric_limits<float>::max()));
  EXPECT_TRUE(std::isfinite(big));
  EXPECT_GT(big, 3e38f);
}

TEST(Bf16Test, RelativeErrorWithinHalfAnUlp) {
  const std::vector<float> v = testing::normal_vector(50000, 11, 100.0);
  auto codec = make_bf16();
  std::vector<uint8_t> bytes(static_cast<size_t>(codec->encoded_bytes(50000)));
  codec->encode(v, 0, nullptr, 0, 1, nullptr, bytes.data());
  std::vector<float> out(v.size());
  ASSERT_TRUE(codec->decode(bytes.data(), nullptr, out).ok());
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_LE(std::fabs(out[i] - v[i]), std::fabs(v[i]) * std::ldexp(1.0f, -8)) << i;
  }
}

}  // namespace
}  // namespace cohort::codec
