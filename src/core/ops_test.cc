#include "cohort/core/ops.h"

#include <cmath>
#include <gtest/gtest.h>
#include <vector>

#include "cohort/core/parallel.h"

namespace cohort::ops {
namespace {

TEST(OpsTest, SmallHandComputed) {
  std::vector<float> x = {1, 2, 3, 4, 5};
  std::vector<float> y = {10, 20, 30, 40, 50};
  axpy(2.0f, x, y);
  EXPECT_EQ(y, (std::vector<float>{12, 24, 36, 48, 60}));
  scale(y, 0.5f);
  EXPECT_EQ(y, (std::vector<float>{6, 12, 18, 24, 30}));
  axpby(1.0f, x, -1.0f, y);  // y = x - y
  EXPECT_EQ(y, (std::vector<float>{-5, -10, -15, -20, -25}));
  std::vector<float> out(5);
  sub(x, std::vector<float>{1, 1, 1, 1, 1}, out);
  EXPECT_EQ(out, (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_DOUBLE_EQ(dot(x, x), 55.0);
  EXPECT_DOUBLE_EQ(l2_norm(std::vector<float>{3, 4}), 5.0);
  fill(out, 7.0f);
  EXPECT_EQ(out, (std::vector<float>(5, 7.0f)));
  EXPECT_TRUE(all_finite(out));
  out[3] = NAN;
  EXPECT_FALSE(all_finite(out));
}

TEST(OpsTest, WeightedSumHandComputed) {
  std::vector<float> a = {1, 2, 3}, b = {4, 5, 6}, c = {7, 8, 9};
  std::vector<const float*> in = {a.data(), b.data(), c.data()};
  std::vector<float> w = {0.5f, 0.25f, 0.25f};
  std::vector<float> out(3, -1.0f);
  weighted_sum(in, w, out);
  EXPECT_FLOAT_EQ(out[0], 0.5f * 1 + 0.25f * 4 + 0.25f * 7);
  EXPECT_FLOAT_EQ(out[1], 0.5f * 2 + 0.25f * 5 + 0.25f * 8);
  EXPECT_FLOAT_EQ(out[2], 0.5f * 3 + 0.25f * 6 + 0.25f * 9);
  std::vector<const float*> one = {a.data()};
  std::vector<float> w1 = {2.0f};
  weighted_sum(one, w1, out);
  EXPECT_EQ(out, (std::vector<float>{2, 4, 6}));
  weighted_sum({}, {}, out);
  EXPECT_EQ(out, (std::vector<float>{0, 0, 0}));
}

// Large inputs go through the thread pool; results must equal a plain serial loop, and
// reductions must not depend on how many threads ran them.
TEST(OpsTest, LargeInputsMatchSerialReference) {
  const int64_t n = 5 * kChunk + 123;
  std::vector<float> x(n), y(n), ref(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::sin(static_cast<float>(i));
    y[i] = std::cos(static_cast<float>(i));
  }
  for (int64_t i = 0; i < n; ++i) ref[i] = y[i] + 0.3f * x[i];
  axpy(0.3f, x, y);
  EXPECT_EQ(y, ref);

  std::vector<float> k0(n, 1.0f), k1(n, 2.0f), k2(n, 3.0f), k3(n, 4.0f), k4(n, 5.0f);
  std::vector<const float*> in = {k0.data(), k1.data(), k2.data(), k3.data(), k4.data()};
  std::vector<float> w = {1, 1, 1, 1, 1};
  std::vector<float> out(n);
  weighted_sum(in, w, out);
  for (int64_t i = 0; i < n; i += 997) ASSERT_EQ(out[i], 15.0f);

  double serial = 0;
  {
    // Same fixed chunking, combined in order on one thread.
    for (int64_t c = 0; c < n; c += kChunk) {
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t hi = std::min(n, c + kChunk), i = c;
      for (; i + 4 <= hi; i += 4) {
        s0 += static_cast<double>(x[i]) * x[i];
        s1 += static_cast<double>(x[i + 1]) * x[i + 1];
        s2 += static_cast<double>(x[i + 2]) * x[i + 2];
        s3 += static_cast<double>(x[i + 3]) * x[i + 3];
      }
      for (; i < hi; ++i) s0 += static_cast<double>(x[i]) * x[i];
      serial += (s0 + s1) + (s2 + s3);
    }
  }
  EXPECT_EQ(dot(x, x), serial);  // bit-identical, whatever the thread count
}

}  // namespace
}  // namespace cohort::ops
