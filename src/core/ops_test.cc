#include "cohort/core/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

TEST(OpsTest, AllFiniteFindsEveryNonFiniteValueAnywhere) {
  // Finite extremes pass: the largest float, the smallest denormal, -0.
  std::vector<float> x(9000, 1.5f);
  x[0] = std::numeric_limits<float>::max();
  x[1] = -std::numeric_limits<float>::max();
  x[2] = std::numeric_limits<float>::denorm_min();
  x[3] = -0.0f;
  EXPECT_TRUE(all_finite(x));
  EXPECT_TRUE(all_finite(std::span<const float>()));
  const float bad[] = {std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::quiet_NaN(),
                       -std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::signaling_NaN()};
  // At the ends, and on both sides of the 4096-element blocks.
  for (size_t at : {size_t{0}, size_t{4095}, size_t{4096}, size_t{8191}, size_t{8192},
                    size_t{8999}}) {
    for (float v : bad) {
      std::vector<float> y = x;
      y[at] = v;
      EXPECT_FALSE(all_finite(y)) << "value " << v << " at " << at;
      // A span that ends before it does not see it.
      EXPECT_TRUE(all_finite(std::span<const float>(y).first(at))) << at;
    }
  }
}

TEST(OpsTest, MaxAbsMatchesScalarReferenceAndReportsNaN) {
  EXPECT_EQ(max_abs(std::span<const float>()), 0.0f);
  const float one[] = {-0.0f};
  EXPECT_EQ(max_abs(one), 0.0f);
  std::vector<float> x(1037);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = std::sin(static_cast<float>(i)) * (i % 7 == 0 ? -3.0f : 2.0f);
  float want = 0.0f;
  for (float v : x) want = std::max(want, std::fabs(v));
  EXPECT_EQ(max_abs(x), want);
  // The largest magnitude anywhere, negative or not, denormal or infinite.
  for (size_t at : {size_t{0}, size_t{15}, size_t{16}, size_t{1036}}) {
    std::vector<float> y = x;
    y[at] = -1e30f;
    EXPECT_EQ(max_abs(y), 1e30f) << at;
    y[at] = -std::numeric_limits<float>::infinity();
    EXPECT_EQ(max_abs(y), std::numeric_limits<float>::infinity()) << at;
    y[at] = -std::numeric_limits<float>::quiet_NaN();
    EXPECT_TRUE(std::isnan(max_abs(y))) << at;
  }
  const float tiny[] = {std::numeric_limits<float>::denorm_min(), -0.0f};
  EXPECT_EQ(max_abs(tiny), std::numeric_limits<float>::denorm_min());
}

TEST(OpsTest, SumSquaresFastAgreesWithDotUpToRounding) {
  EXPECT_EQ(sum_squares_fast(std::span<const float>()), 0.0);
  const float small[] = {1, 2, 3};  // the scalar tail alone
  EXPECT_EQ(sum_squares_fast(small), 14.0);
  for (size_t n : {size_t{16}, size_t{17}, size_t{1000}, size_t{300001}}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = std::cos(static_cast<float>(i) * 0.37f) * 3.0f;
    const double want = dot(x, x);
    EXPECT_NEAR(sum_squares_fast(x), want, 1e-12 * want) << n;
    EXPECT_EQ(sum_squares_fast(x), sum_squares_fast(x)) << n;  // deterministic
  }
}

// magnitudes: sum_squares_fast's sum bit for bit and max_abs, over sizes below one chunk and
// across several (the parallel path), with a NaN or infinity anywhere showing in max_abs.
TEST(OpsTest, MagnitudesAreSumSquaresFastAndMaxAbsInOnePass) {
  const Magnitudes none = magnitudes({});
  EXPECT_EQ(none.sum_squares, 0.0);
  EXPECT_EQ(none.max_abs, 0.0f);
  for (size_t n : {size_t{3}, size_t{4097}, static_cast<size_t>(kChunk),
                   static_cast<size_t>(3 * kChunk + 77)}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = std::sin(static_cast<float>(i) * 0.11f) * 2.0f;
    x[n / 2] = -7.5f;
    const Magnitudes m = magnitudes(x);
    EXPECT_EQ(m.sum_squares, sum_squares_fast(x)) << n;
    EXPECT_EQ(m.max_abs, 7.5f) << n;
    for (size_t at : {size_t{0}, n - 1}) {
      std::vector<float> y = x;
      y[at] = -std::numeric_limits<float>::infinity();
      EXPECT_EQ(magnitudes(y).max_abs, std::numeric_limits<float>::infinity()) << n;
      y[at] = std::numeric_limits<float>::quiet_NaN();
      EXPECT_TRUE(std::isnan(magnitudes(y).max_abs)) << n;
    }
  }
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

// sum_k w[k] * x_k[i] in double, and sum_k |w[k] * x_k[i]| for the float rounding bound.
struct Expected {
  double value;
  double magnitude;
};
Expected expected_sum(const std::vector<std::vector<float>>& xs, const std::vector<float>& w,
                      size_t i) {
  Expected e{0, 0};
  for (size_t k = 0; k < xs.size(); ++k) {
    e.value += static_cast<double>(w[k]) * xs[k][i];
    e.magnitude += std::abs(static_cast<double>(w[k]) * xs[k][i]);
  }
  return e;
}

std::vector<std::vector<float>> make_inputs(size_t k, size_t n) {
  std::vector<std::vector<float>> xs(k, std::vector<float>(n));
  for (size_t c = 0; c < k; ++c) {
    for (size_t i = 0; i < n; ++i) xs[c][i] = std::sin(0.37f * static_cast<float>(i) + c);
  }
  return xs;
}

// Every input count through the one-group path (k <= 12) and the grouped, blocked path
// (k = 13: groups 6+7; k = 25: 8+8+9; k = 30: 10+10+10), on sizes that are not a multiple of
// the 16-float tile or of the block, small (one thread) and large (several chunks).
TEST(OpsTest, WeightedSumMatchesDoubleReferenceForManyInputCounts) {
  for (size_t n : {size_t{1}, size_t{15}, size_t{17}, size_t{8192 + 5},
                   static_cast<size_t>(2 * kChunk + 8192 * 3 + 11)}) {
    for (size_t k : {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 25, 30}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " k=" + std::to_string(k));
      std::vector<std::vector<float>> xs = make_inputs(k, n);
      std::vector<const float*> in;
      std::vector<float> w;
      for (size_t c = 0; c < k; ++c) {
        in.push_back(xs[c].data());
        w.push_back(0.5f + 0.25f * static_cast<float>(c % 5));
      }
      std::vector<float> out(n, 123.0f);  // must be overwritten, not accumulated into
      weighted_sum(in, w, out);
      const size_t step = n > 100000 ? 37 : 1;
      for (size_t i = 0; i < n; i += step) {
        Expected e = expected_sum(xs, w, i);
        ASSERT_NEAR(out[i], e.value, 4e-6 * e.magnitude + 1e-30) << "at index " << i;
      }
      Expected last = expected_sum(xs, w, n - 1);
      ASSERT_NEAR(out[n - 1], last.value, 4e-6 * last.magnitude + 1e-30);
    }
  }
}

// Where block, chunk and tile boundaries fall must not change any element: the same inputs
// seen through spans shifted by a few floats (misaligned, boundaries elsewhere) give
// bit-identical results.
TEST(OpsTest, WeightedSumDoesNotDependOnBoundariesOrAlignment) {
  const size_t n = 2 * kChunk + 8192 + 29, shift = 3;
  for (size_t k : {3, 10, 13}) {
    SCOPED_TRACE("k=" + std::to_string(k));
    std::vector<std::vector<float>> xs = make_inputs(k, n);
    std::vector<const float*> in, in_shifted;
    std::vector<float> w;
    for (size_t c = 0; c < k; ++c) {
      in.push_back(xs[c].data());
      in_shifted.push_back(xs[c].data() + shift);
      w.push_back(1.0f / static_cast<float>(c + 3));
    }
    std::vector<float> full(n), part(n - shift + 1);
    weighted_sum(in, w, full);
    // Output misaligned by one float relative to the inputs.
    weighted_sum(in_shifted, w, std::span<float>(part).subspan(1));
    for (size_t i = shift; i < n; ++i) ASSERT_EQ(full[i], part[i - shift + 1]) << "at " << i;
  }
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
