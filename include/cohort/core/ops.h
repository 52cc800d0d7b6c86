// Vector kernels over flat float32 buffers: what strategies and aggregation are made of.
//
// Every kernel works in place on std::span views (usually ArrayRecord::flat()), is
// vectorised (compiled for AVX2 with a generic fallback chosen at load time), and splits
// large inputs across kernel_pool() threads. Reductions (dot, norms) sum fixed-size chunks in
// double precision and combine them in chunk order, so their result is bit-identical for any
// number of threads. Spans of different sizes are a programming error (checked with assert
// in debug builds; callers validate remote input with ArrayRecord::check_same_layout first).
//
// Thread safety: kernels may run concurrently on disjoint outputs.
#pragma once

#include <cstdint>
#include <span>

namespace cohort::ops {

// Elements per parallel chunk. Inputs shorter than two chunks run on the calling thread.
inline constexpr int64_t kChunk = 1 << 16;

void fill(std::span<float> y, float value);
void copy(std::span<const float> x, std::span<float> y);
// y <- a * y
void scale(std::span<float> y, float a);
// y <- y + a * x
void axpy(float a, std::span<const float> x, std::span<float> y);
// y <- a * x + b * y
void axpby(float a, std::span<const float> x, float b, std::span<float> y);
// y <- x + a * y: axpy with the roles swapped, rounded as axpy rounds (x + a*y is y + a*x of
// axpy), so a step written into the step's own buffer equals one written into a copy.
void xpay(std::span<const float> x, float a, std::span<float> y);
// out <- x - y
void sub(std::span<const float> x, std::span<const float> y, std::span<float> out);
// out <- sum_k weights[k] * inputs[k]   (every input has out.size() elements). Reads each
// input once and writes out once: the aggregation kernel of FedAvg-style strategies.
void weighted_sum(std::span<const float* const> inputs, std::span<const float> weights,
                  std::span<float> out);

// Sum of x[i] * y[i], accumulated in double.
double dot(std::span<const float> x, std::span<const float> y);
// The one-thread kernels under dot and a squared distance, for callers that split the work
// themselves (robust rules sum per fixed chunk for thread-count-independent results):
// sum x[i] * y[i] and sum (x[i] - y[i])^2 over n elements, in double, four accumulators.
double dot_serial(const float* x, const float* y, int64_t n);
double squared_distance_serial(const float* x, const float* y, int64_t n);
// sqrt(sum x[i]^2), accumulated in double.
double l2_norm(std::span<const float> x);
// sum x[i]^2 in double, about four times faster than dot(x, x) and equal to it only up to
// rounding (another order of the sums); deterministic. For statistics that need no bit-exact
// agreement with dot (the deployment's per-frame statistics of a spooled upload).
double sum_squares_fast(std::span<const float> x);
// True when every element is finite.
bool all_finite(std::span<const float> x);
// max |x[i]| (0 for an empty span); NaN when an element is NaN.
float max_abs(std::span<const float> x);
// sum_squares_fast (the same sum, bit for bit) and max_abs in one pass over memory (each
// chunk's two passes run while it is in cache), in parallel over chunks: an infinite or NaN max_abs
// tells that an element is not finite. For the checks of a whole model or frame (a commit, a
// spooled upload's frames).
struct Magnitudes {
  double sum_squares = 0.0;
  float max_abs = 0.0f;
};
Magnitudes magnitudes(std::span<const float> x);

}  // namespace cohort::ops
