#include "cohort/core/ops.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cohort/core/multiversion.h"
#include "cohort/core/parallel.h"


namespace cohort::ops {
namespace {

template <typename F>
void for_chunks(int64_t n, F&& f) {
  if (n < 2 * kChunk) {
    f(0, n);
    return;
  }
  kernel_pool().parallel_for(0, n, kChunk, f);
}

// Chunked deterministic reduction: a partial result per fixed chunk, combined in chunk order
// starting from `init`, the result of an empty range (one chunk: its partial result as it is,
// no allocation, no pool).
template <typename T, typename F, typename Combine>
T reduce_chunks(int64_t n, T init, F&& partial, Combine&& combine) {
  const int64_t n_chunks = (n + kChunk - 1) / kChunk;
  if (n_chunks == 0) return init;
  if (n_chunks == 1) return partial(0, n);
  std::vector<T> parts(static_cast<size_t>(n_chunks));
  for_chunks(n, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; c += kChunk) {
      parts[static_cast<size_t>(c / kChunk)] = partial(c, std::min(hi, c + kChunk));
    }
  });
  T acc = init;
  for (const T& p : parts) acc = combine(acc, p);
  return acc;
}

// The same for sums in double.
template <typename F>
double reduce_chunks(int64_t n, F&& partial) {
  return reduce_chunks(n, 0.0, std::forward<F>(partial), [](double a, double b) {
    return a + b;
  });
}

COHORT_MULTIVERSION void k_scale(float* __restrict y, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}
COHORT_MULTIVERSION void k_axpy(float a, const float* __restrict x, float* __restrict y,
                                int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
COHORT_MULTIVERSION void k_xpay(const float* __restrict x, float a, float* __restrict y,
                                int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] + a * y[i];
}
COHORT_MULTIVERSION void k_axpby(float a, const float* __restrict x, float b, float* __restrict y,
                                 int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + b * y[i];
}
COHORT_MULTIVERSION void k_sub(const float* __restrict x, const float* __restrict y,
                               float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] - y[i];
}
// Eight floats as one GCC vector; the "default" clone lowers it to two SSE registers. V8u is
// the same vector at float alignment, for loads and stores at any element offset.
typedef float V8 __attribute__((vector_size(32)));
typedef float V8u __attribute__((vector_size(32), aligned(4), may_alias));

// out[i] (+)= sum_{k<m} w[k] * in[k][off + i] for i in [0, n), inputs innermost: the running
// sum of 16 outputs stays in registers while one vector of each input streams in, so each
// output is loaded (when accumulating) and stored once per call. Every element, whether in a
// vector or in the scalar tail, sees the same operations in the same order (0 + w0 x0 + ...),
// so the result does not depend on where block or chunk boundaries fall.
COHORT_MULTIVERSION void k_weighted_group(const float* const* in, const float* w, int64_t m,
                                          int64_t off, bool accumulate, float* __restrict out,
                                          int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V8 a0 = {}, a1 = {};
    if (accumulate) {
      a0 = *reinterpret_cast<const V8u*>(out + i);
      a1 = *reinterpret_cast<const V8u*>(out + i + 8);
    }
    for (int64_t k = 0; k < m; ++k) {
      const float* x = in[k] + off + i;
      const V8 wk = V8{} + w[k];
      a0 += wk * *reinterpret_cast<const V8u*>(x);
      a1 += wk * *reinterpret_cast<const V8u*>(x + 8);
    }
    *reinterpret_cast<V8u*>(out + i) = a0;
    *reinterpret_cast<V8u*>(out + i + 8) = a1;
  }
  for (; i < n; ++i) {
    float s = accumulate ? out[i] : 0.0f;
    for (int64_t k = 0; k < m; ++k) s += w[k] * in[k][off + i];
    out[i] = s;
  }
}
COHORT_MULTIVERSION uint32_t k_max_abs_bits(const float* __restrict x, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, 4);
    b &= 0x7fffffffu;
    m = b > m ? b : m;
  }
  return m;
}

COHORT_MULTIVERSION double k_dot(const float* __restrict x, const float* __restrict y, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += static_cast<double>(x[i]) * y[i];
    s1 += static_cast<double>(x[i + 1]) * y[i + 1];
    s2 += static_cast<double>(x[i + 2]) * y[i + 2];
    s3 += static_cast<double>(x[i + 3]) * y[i + 3];
  }
  for (; i < n; ++i) s0 += static_cast<double>(x[i]) * y[i];
  return (s0 + s1) + (s2 + s3);
}

// sum x[i]^2 in double, sixteen running sums: four times the throughput of k_dot (whose four
// scalar sums are bound by the latency of their adds), in a different order, so its result
// may differ from dot(x, x) in the last bits.
typedef float V4f __attribute__((vector_size(16), aligned(4), may_alias));
typedef double V4d __attribute__((vector_size(32)));
COHORT_MULTIVERSION double k_sum_squares(const float* __restrict x, int64_t n) {
  V4d a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const V4d d0 = __builtin_convertvector(*reinterpret_cast<const V4f*>(x + i), V4d);
    const V4d d1 = __builtin_convertvector(*reinterpret_cast<const V4f*>(x + i + 4), V4d);
    const V4d d2 = __builtin_convertvector(*reinterpret_cast<const V4f*>(x + i + 8), V4d);
    const V4d d3 = __builtin_convertvector(*reinterpret_cast<const V4f*>(x + i + 12), V4d);
    a0 += d0 * d0;
    a1 += d1 * d1;
    a2 += d2 * d2;
    a3 += d3 * d3;
  }
  const V4d a = (a0 + a1) + (a2 + a3);
  double s = (a[0] + a[1]) + (a[2] + a[3]);
  for (; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

COHORT_MULTIVERSION double k_sq_dist(const float* __restrict x, const float* __restrict y,
                                     int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const double d0 = static_cast<double>(x[i]) - y[i];
    const double d1 = static_cast<double>(x[i + 1]) - y[i + 1];
    const double d2 = static_cast<double>(x[i + 2]) - y[i + 2];
    const double d3 = static_cast<double>(x[i + 3]) - y[i + 3];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - y[i];
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

}  // namespace

double dot_serial(const float* x, const float* y, int64_t n) { return k_dot(x, y, n); }

double squared_distance_serial(const float* x, const float* y, int64_t n) {
  return k_sq_dist(x, y, n);
}

void fill(std::span<float> y, float value) {
  for_chunks(static_cast<int64_t>(y.size()), [&](int64_t lo, int64_t hi) {
    std::fill(y.data() + lo, y.data() + hi, value);
  });
}

void copy(std::span<const float> x, std::span<float> y) {
  assert(x.size() == y.size());
  for_chunks(static_cast<int64_t>(y.size()), [&](int64_t lo, int64_t hi) {
    std::memcpy(y.data() + lo, x.data() + lo, static_cast<size_t>(hi - lo) * sizeof(float));
  });
}

void scale(std::span<float> y, float a) {
  for_chunks(static_cast<int64_t>(y.size()), [&](int64_t lo, int64_t hi) {
    k_scale(y.data() + lo, a, hi - lo);
  });
}

void axpy(float a, std::span<const float> x, std::span<float> y) {
  assert(x.size() == y.size());
  for_chunks(static_cast<int64_t>(y.size()), [&](int64_t lo, int64_t hi) {
    k_axpy(a, x.data() + lo, y.data() + lo, hi - lo);
  });
}

void axpby(float a, std::span<const float> x, float b, std::span<float> y) {
  assert(x.size() == y.size());
  for_chunks(static_cast<int64_t>(y.size()), [&](int64_t lo, int64_t hi) {
    k_axpby(a, x.data() + lo, b, y.data() + lo, hi - lo);
  });
}

void xpay(std::span<const float> x, float a, std::span<float> y) {
  assert(x.size() == y.size());
  for_chunks(static_cast<int64_t>(y.size()), [&](int64_t lo, int64_t hi) {
    k_xpay(x.data() + lo, a, y.data() + lo, hi - lo);
  });
}

void sub(std::span<const float> x, std::span<const float> y, std::span<float> out) {
  assert(x.size() == y.size() && x.size() == out.size());
  for_chunks(static_cast<int64_t>(out.size()), [&](int64_t lo, int64_t hi) {
    k_sub(x.data() + lo, y.data() + lo, out.data() + lo, hi - lo);
  });
}

void weighted_sum(std::span<const float* const> inputs, std::span<const float> weights,
                  std::span<float> out) {
  assert(inputs.size() == weights.size());
  const auto k = static_cast<int64_t>(inputs.size());
  if (k == 0) {
    fill(out, 0.0f);
    return;
  }
  // All inputs in one pass when there are few: each input is read once, out written once,
  // with nothing in between. With many inputs, that many concurrent streams defeat the
  // hardware prefetchers, so they are split into near-equal groups of at most kMaxGroup,
  // applied one after another to a cache-resident block of out (which then round-trips
  // through L1/L2 once per group, not through memory). The grouping depends only on k.
  constexpr int64_t kMaxGroup = 12;
  constexpr int64_t kBlock = 8192;
  const int64_t groups = (k + kMaxGroup - 1) / kMaxGroup;
  for_chunks(static_cast<int64_t>(out.size()), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; b += (groups == 1 ? hi - lo : kBlock)) {
      const int64_t n = groups == 1 ? hi - lo : std::min(hi, b + kBlock) - b;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t first = g * k / groups, last = (g + 1) * k / groups;
        k_weighted_group(inputs.data() + first, weights.data() + first, last - first, b, g > 0,
                         out.data() + b, n);
      }
    }
  });
}

double dot(std::span<const float> x, std::span<const float> y) {
  assert(x.size() == y.size());
  return reduce_chunks(static_cast<int64_t>(x.size()), [&](int64_t lo, int64_t hi) {
    return k_dot(x.data() + lo, y.data() + lo, hi - lo);
  });
}

double l2_norm(std::span<const float> x) { return std::sqrt(dot(x, x)); }

double sum_squares_fast(std::span<const float> x) {
  return reduce_chunks(static_cast<int64_t>(x.size()), [&](int64_t lo, int64_t hi) {
    return k_sum_squares(x.data() + lo, hi - lo);
  });
}

float max_abs(std::span<const float> x) {
  // On the bit patterns with the sign cleared: non-negative floats order as unsigned integers,
  // infinity is 0x7f800000 and every NaN lies above it, so one integer max (which vectorizes,
  // unlike std::max on floats) gives both the largest magnitude and whether any NaN was seen.
  // This runs on every frame of every spooled upload.
  const uint32_t m = k_max_abs_bits(x.data(), static_cast<int64_t>(x.size()));
  return m > 0x7f800000u ? std::numeric_limits<float>::quiet_NaN() : std::bit_cast<float>(m);
}

Magnitudes magnitudes(std::span<const float> x) {
  // Per chunk (256 KB, in L2 between its two passes) a sum of squares, as sum_squares_fast's,
  // and the largest magnitude's bit pattern (max_abs's).
  struct Partial {
    double sum_squares = 0.0;
    uint32_t max_bits = 0;
  };
  const Partial p = reduce_chunks(
      static_cast<int64_t>(x.size()), Partial{},
      [&](int64_t lo, int64_t hi) {
        return Partial{k_sum_squares(x.data() + lo, hi - lo),
                       k_max_abs_bits(x.data() + lo, hi - lo)};
      },
      [](const Partial& a, const Partial& b) {
        return Partial{a.sum_squares + b.sum_squares, std::max(a.max_bits, b.max_bits)};
      });
  return {p.sum_squares, p.max_bits > 0x7f800000u ? std::numeric_limits<float>::quiet_NaN()
                                                  : std::bit_cast<float>(p.max_bits)};
}

bool all_finite(std::span<const float> x) {
  // An integer test of the exponent bits (all ones: infinite or NaN), OR-ed over blocks: the
  // loop vectorizes, unlike a float test with an early exit (an update's admission checks
  // every element of every update: this was 10% of a simulation's time).
  constexpr size_t kBlock = 4096;
  for (size_t lo = 0; lo < x.size(); lo += kBlock) {
    const size_t hi = std::min(x.size(), lo + kBlock);
    uint32_t bad = 0;
    for (size_t i = lo; i < hi; ++i) {
      bad |= static_cast<uint32_t>((std::bit_cast<uint32_t>(x[i]) & 0x7f800000u) == 0x7f800000u);
    }
    if (bad != 0) return false;
  }
  return true;
}

}  // namespace cohort::ops
