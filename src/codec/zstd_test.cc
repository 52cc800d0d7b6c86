#include "cohort/codec/zstd.h"

#include <gtest/gtest.h>

#include "codec_test_util.h"

namespace cohort::codec {
namespace {

TEST(ZstdTest, RoundTripsBitExactly) {
  auto z = make_zstd(3);
  EXPECT_EQ(z->spec(), "zstd:3");
  std::string in(100000, '\0');
  Rng rng(1);
  for (size_t i = 0; i < in.size(); i += 3) in[i] = static_cast<char>(rng.uniform_int(4));
  std::string packed;
  ASSERT_TRUE(z->compress(in, &packed).ok());
  EXPECT_LT(packed.size(), in.size() / 3);
  std::vector<uint8_t> out(in.size());
  ASSERT_TRUE(z->decompress(packed, out).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), in);
}

TEST(ZstdTest, RefusesWrongSizeAndGarbage) {
  auto z = make_zstd(1);
  std::string packed;
  ASSERT_TRUE(z->compress(std::string(1000, 'x'), &packed).ok());
  std::vector<uint8_t> small(999), big(1001);
  EXPECT_EQ(z->decompress(packed, small).code(), StatusCode::kDataLoss);
  EXPECT_EQ(z->decompress(packed, big).code(), StatusCode::kDataLoss);
  std::vector<uint8_t> out(1000);
  EXPECT_EQ(z->decompress("not zstd at all", out).code(), StatusCode::kDataLoss);
  EXPECT_EQ(z->decompress(std::string_view(packed).substr(0, packed.size() / 2), out).code(),
            StatusCode::kDataLoss);
}

}  // namespace
}  // namespace cohort::codec
