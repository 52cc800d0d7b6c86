#include "cohort/codec/kmeans.h"

#include <gtest/gtest.h>

#include <cmath>

#include "codec_test_util.h"

namespace cohort::codec {
namespace {

TEST(KMeansTest, FindsThreeClustersAndReplacesValuesByTheirCentroid) {
  std::vector<float> v;
  Rng rng(4);
  for (int i = 0; i < 300; ++i) {
    const float centre = i % 3 == 0 ? -1.0f : i % 3 == 1 ? 0.0f : 2.0f;
    v.push_back(centre + static_cast<float>(rng.normal(0, 0.01)));
  }
  auto c = make_kmeans(3);
  std::vector<float> cent(3);
  c->fit(v, cent.data());
  EXPECT_NEAR(cent[0], -1.0, 0.01);
  EXPECT_NEAR(cent[1], 0.0, 0.01);
  EXPECT_NEAR(cent[2], 2.0, 0.01);
  std::vector<uint8_t> bytes(static_cast<size_t>(c->encoded_bytes(300)));
  EXPECT_EQ(bytes.size(), 75u);  // 2 bits per value
  c->encode(v, 0, nullptr, 0, 0, cent.data(), bytes.data());
  std::vector<float> out(v.size());
  ASSERT_TRUE(c->decode(bytes.data(), cent.data(), out).ok());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(out[i], cent[i % 3]) << i;
}

TEST(KMeansTest, RejectsSymbolsBeyondK) {
  auto c = make_kmeans(3);
  const float cent[3] = {-1, 0, 1};
  const uint8_t bytes[1] = {0x03};  // symbol 3 with k = 3
  std::vector<float> out(4);
  Status s = c->decode(bytes, cent, out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("centroid"), std::string::npos);
  const float bad[3] = {0, NAN, 1};
  EXPECT_FALSE(c->check_side(bad).ok());
}

TEST(KMeansTest, SixteenCentroidsUseFourBits) {
  auto c = make_kmeans(16);
  EXPECT_EQ(c->encoded_bytes(10), 5);
  EXPECT_EQ(make_kmeans(5)->encoded_bytes(10), 5);
  EXPECT_EQ(make_kmeans(2)->encoded_bytes(16), 2);
}

}  // namespace
}  // namespace cohort::codec
