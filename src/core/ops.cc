#include "cohort/core/ops.h"

#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

#include "cohort/core/parallel.h"

// Hot loops are compiled twice (AVX2+FMA and baseline x86-64) and the loader picks one.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define COHORT_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define COHORT_MULTIVERSION
#endif

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

// Chunked deterministic reduction: partial sums per fixed chunk, added in chunk order.
template <typename F>
double reduce_chunks(int64_t n, F&& partial) {
  const int64_t n_chunks = (n + kChunk - 1) / kChunk;
  if (n_chunks <= 1) return n > 0 ? partial(0, n) : 0.0;
  std::vector<double> parts(static_cast<size_t>(n_chunks));
  for_chunks(n, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; c += kChunk) {
      parts[static_cast<size_t>(c / kChunk)] = partial(c, std::min(hi, c + kChunk));
    }
  });
  double s = 0;
  for (double p : parts) s += p;
  return s;
}

COHORT_MULTIVERSION void k_scale(float* __restrict y, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}
COHORT_MULTIVERSION void k_axpy(float a, const float* __restrict x, float* __restrict y,
                                int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
COHORT_MULTIVERSION void k_axpby(float a, const float* __restrict x, float b,
                                 float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + b * y[i];
}
COHORT_MULTIVERSION void k_sub(const float* __restrict x, const float* __restrict y,
                               float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] - y[i];
}
COHORT_MULTIVERSION void k_weighted2(const float* __restrict a, float wa,
                                     const float* __restrict b, float wb, float* __restrict out,
                                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = wa * a[i] + wb * b[i];
}
COHORT_MULTIVERSION void k_weighted2_acc(const float* __restrict a, float wa,
                                         const float* __restrict b, float wb,
                                         float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += wa * a[i] + wb * b[i];
}
COHORT_MULTIVERSION void k_scaled_copy(const float* __restrict a, float wa,
                                       float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = wa * a[i];
}
COHORT_MULTIVERSION double k_dot(const float* __restrict x, const float* __restrict y,
                                 int64_t n) {
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

}  // namespace

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
  for_chunks(static_cast<int64_t>(y.size()),
             [&](int64_t lo, int64_t hi) { k_scale(y.data() + lo, a, hi - lo); });
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

void sub(std::span<const float> x, std::span<const float> y, std::span<float> out) {
  assert(x.size() == y.size() && x.size() == out.size());
  for_chunks(static_cast<int64_t>(out.size()), [&](int64_t lo, int64_t hi) {
    k_sub(x.data() + lo, y.data() + lo, out.data() + lo, hi - lo);
  });
}

void weighted_sum(std::span<const float* const> inputs, std::span<const float> weights,
                  std::span<float> out) {
  assert(inputs.size() == weights.size());
  const size_t k = inputs.size();
  // Work cache-block by cache-block: each block of `out` stays in L1/L2 while the inputs
  // stream through it two at a time, so every input is read once and out written once.
  constexpr int64_t kBlock = 4096;
  for_chunks(static_cast<int64_t>(out.size()), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; b += kBlock) {
      const int64_t n = std::min(hi, b + kBlock) - b;
      float* o = out.data() + b;
      if (k == 0) {
        std::fill(o, o + n, 0.0f);
        continue;
      }
      size_t j = 0;
      if (k >= 2) {
        k_weighted2(inputs[0] + b, weights[0], inputs[1] + b, weights[1], o, n);
        j = 2;
      } else {
        k_scaled_copy(inputs[0] + b, weights[0], o, n);
        j = 1;
      }
      for (; j + 2 <= k; j += 2) {
        k_weighted2_acc(inputs[j] + b, weights[j], inputs[j + 1] + b, weights[j + 1], o, n);
      }
      if (j < k) k_axpy(weights[j], inputs[j] + b, o, n);
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

bool all_finite(std::span<const float> x) {
  for (float v : x) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

}  // namespace cohort::ops
