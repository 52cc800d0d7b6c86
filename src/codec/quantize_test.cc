#include "cohort/codec/quantize.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "bits.h"
#include "codec_test_util.h"

namespace cohort::codec {
namespace {

std::vector<float> roundtrip(const ValueCodec& c, std::span<const float> v, uint64_t seed,
                             int64_t first = 0) {
  std::vector<uint8_t> bytes(static_cast<size_t>(c.encoded_bytes(static_cast<int64_t>(v.size()))));
  c.encode(v, first, nullptr, 0, seed, nullptr, bytes.data());
  std::vector<float> out(v.size());
  Status s = c.decode(bytes.data(), nullptr, out);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

class QuantizeTest : public ::testing::TestWithParam<int> {};

TEST_P(QuantizeTest, SizeIsScalesPlusPackedCodes) {
  const int bits = GetParam();
  auto c = make_quantizer(bits, 64);
  EXPECT_EQ(c->encoded_bytes(1000), 4 * 16 + (1000 * bits + 7) / 8);
  EXPECT_EQ(c->spec(), "int" + std::to_string(bits) + ":64");
}

TEST_P(QuantizeTest, ErrorIsBelowOneStepOfItsBlock) {
  const int bits = GetParam();
  const float s = static_cast<float>((1 << (bits - 1)) - 1);
  auto c = make_quantizer(bits, 64);
  const std::vector<float> v = testing::normal_vector(1001, 3);  // a partial last block
  const std::vector<float> out = roundtrip(*c, v, 42);
  for (size_t b = 0; b < v.size(); b += 64) {
    float m = 0;
    for (size_t i = b; i < std::min(v.size(), b + 64); ++i) m = std::max(m, std::fabs(v[i]));
    for (size_t i = b; i < std::min(v.size(), b + 64); ++i) {
      EXPECT_LT(std::fabs(out[i] - v[i]), m / s * 1.0001f) << i;
      // Every decoded value is a level of its block.
      const float level = out[i] / (m / s);
      EXPECT_NEAR(level, std::round(level), 1e-3) << i;
      EXPECT_LE(std::fabs(level), s + 1e-3) << i;
    }
  }
}

TEST_P(QuantizeTest, IsUnbiased) {
  // The mean of many independent decodes converges to the input: each decode's error at an
  // element has variance <= step^2 / 4, so the mean of N has standard deviation <= step / (2
  // sqrt(N)); 5 of those bound every element of 256.
  const int bits = GetParam();
  const float s = static_cast<float>((1 << (bits - 1)) - 1);
  auto c = make_quantizer(bits, 256);
  const std::vector<float> v = testing::normal_vector(256, 5);
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  const int n = 4000;
  std::vector<double> mean(v.size());
  for (int t = 0; t < n; ++t) {
    const std::vector<float> out = roundtrip(*c, v, 1000 + static_cast<uint64_t>(t));
    for (size_t i = 0; i < v.size(); ++i) mean[i] += out[i] / n;
  }
  const double tol = 5.0 * (m / s) / (2.0 * std::sqrt(n));
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(mean[i], v[i], tol) << i;
}

TEST_P(QuantizeTest, DeterministicGivenSeedAndElement) {
  auto c = make_quantizer(GetParam(), 64);
  const std::vector<float> v = testing::normal_vector(640, 9);
  std::vector<uint8_t> a(static_cast<size_t>(c->encoded_bytes(640))), b(a.size()), d(a.size());
  c->encode(v, 0, nullptr, 0, 7, nullptr, a.data());
  c->encode(v, 0, nullptr, 0, 7, nullptr, b.data());
  c->encode(v, 0, nullptr, 0, 8, nullptr, d.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, d);
  // The same element under the same seed draws the same number whoever encodes it: the second
  // half encoded on its own equals the second half of the whole.
  std::vector<uint8_t> half(static_cast<size_t>(c->encoded_bytes(320)));
  c->encode(std::span<const float>(v).subspan(320), 320, nullptr, 0, 7, nullptr, half.data());
  std::vector<float> whole(640), second(320);
  ASSERT_TRUE(c->decode(a.data(), nullptr, whole).ok());
  ASSERT_TRUE(c->decode(half.data(), nullptr, second).ok());
  for (size_t i = 0; i < 320; ++i) EXPECT_EQ(whole[320 + i], second[i]) << i;
}

TEST_P(QuantizeTest, ZeroBlockDecodesToZero) {
  auto c = make_quantizer(GetParam(), 8);
  const std::vector<float> v(20, 0.0f);
  for (float x : roundtrip(*c, v, 1)) EXPECT_EQ(x, 0.0f);
}

TEST_P(QuantizeTest, RejectsBadScaleAndCode) {
  const int bits = GetParam();
  auto c = make_quantizer(bits, 8);
  const std::vector<float> v = testing::normal_vector(8, 1);
  std::vector<uint8_t> bytes(static_cast<size_t>(c->encoded_bytes(8)));
  c->encode(v, 0, nullptr, 0, 1, nullptr, bytes.data());
  std::vector<float> out(8);
  std::vector<uint8_t> bad = bytes;
  detail::store_f32(bad.data(), -1.0f);
  Status s = c->decode(bad.data(), nullptr, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("scale"), std::string::npos) << s.message();
  bad = bytes;
  bad[4] = 0xff;  // the first code(s): all ones is 2s + 1 or more
  s = c->decode(bad.data(), nullptr, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("out of range"), std::string::npos) << s.message();
}

TEST_P(QuantizeTest, DecodesOnlyFiniteValuesEvenAtTheLargestScale) {
  // decodes_finite(): the payload skips its own check, so the codec must refuse what would
  // overflow. A block scaled to the largest float with the extreme codes: s * (scale / s) may
  // round past it. Whatever the rounding, the decode is finite or an error naming the value.
  const int bits = GetParam();
  auto c = make_quantizer(bits, 8);
  EXPECT_TRUE(c->decodes_finite());
  const float big = std::numeric_limits<float>::max();
  const std::vector<float> v = {big, -big, big, -big, 0.0f, big, -big, big};
  std::vector<uint8_t> bytes(static_cast<size_t>(c->encoded_bytes(8)));
  c->encode(v, 0, nullptr, 0, 1, nullptr, bytes.data());
  std::vector<float> out(8);
  Status s = c->decode(bytes.data(), nullptr, out);
  if (s.ok()) {
    for (float x : out) EXPECT_TRUE(std::isfinite(x)) << x;
  } else {
    EXPECT_NE(s.message().find("non-finite"), std::string::npos) << s.message();
  }
  // An ordinary large scale decodes, every value within a step of the input.
  const std::vector<float> w = {3e37f, -1e37f, 2e37f, 0.0f, -3e37f, 1e30f, 5e36f, -7e36f};
  c->encode(w, 0, nullptr, 0, 2, nullptr, bytes.data());
  ASSERT_TRUE(c->decode(bytes.data(), nullptr, out).ok());
  const float step = 3e37f / static_cast<float>((1 << (bits - 1)) - 1);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_LE(std::fabs(out[i] - w[i]), step * 1.0001f) << i;
}

INSTANTIATE_TEST_SUITE_P(Bits, QuantizeTest, ::testing::Values(8, 4, 2));

}  // namespace
}  // namespace cohort::codec
