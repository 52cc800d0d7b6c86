// The coordinate-wise kernel behind median and trimmed mean (defined in trimmed_mean.cc):
// per coordinate, order the n inputs' values by (value, input index), keep the ranks
// [lo, n - lo) and write the plain (unweighted) mean of the kept values, summed in double in
// input order. lo = floor(beta * n) is the trimmed mean (scipy.stats.trim_mean); lo =
// (n - 1) / 2 is the median (numpy.median: the middle value, or the mean of the two middle
// ones). Ties are broken by input index, so which input is "kept" is well defined.
//
// Multithreaded on kernel_pool() over fixed chunks of coordinates; per-chunk counters are
// added in chunk order, so every output is identical for any number of threads. Values are
// expected finite (admission rejects NaN and Inf); a NaN makes its coordinate's result
// unspecified, never unsafe. Internal to cohort_robust.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cohort::robust {

struct TrimStats {
  // Per input: in how many coordinates its value was kept (when requested).
  std::vector<int64_t> kept;
  // Per input: squared L2 distance to the output (when requested).
  std::vector<double> sq_dist;
};

// REQUIRES: vectors not empty, all of out.size() values; 0 <= lo and 2 lo < n.
void coordinate_trimmed_mean(const std::vector<std::span<const float>>& vectors, int64_t lo,
                             std::span<float> out, bool want_kept, bool want_sq_dist,
                             TrimStats* stats);

}  // namespace cohort::robust
