// What the benchmarks of bench/ share: deterministic buffer contents, the benchmark models'
// layouts, timing and statistics, argument checks and resident-memory readers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "bench.h"
#include "cohort/core/array_record.h"
#include "cohort/core/status.h"

namespace cohort::bench {

using Clock = std::chrono::steady_clock;

// ---- contents --------------------------------------------------------------------------------

// Deterministic, cheap to generate contents (no randomness needed: the kernels' speed does not
// depend on the values, and the checks recompute them from (client, index)). Inline: it runs
// once per element inside timed loops.
inline float pattern(int64_t client, int64_t i) {
  const uint64_t h =
      (static_cast<uint64_t>(i) * 2654435761u + static_cast<uint64_t>(client) * 40503u) % 1024u;
  return static_cast<float>(h) * (1.0f / 1024.0f) - 0.5f;
}

// x[i] = pattern(client, i), written on the kernel pool's threads as well, so pages are
// faulted in before timing.
void fill_pattern(std::span<float> x, int64_t client);

// ---- layouts ---------------------------------------------------------------------------------

// The kernel benchmarks' model: eight tensors like a small network's layers (the Python
// baseline uses the same split); kernels see one flat buffer either way.
Result<std::shared_ptr<const ArrayLayout>> bench_layout(int64_t params);

// The deployment benchmarks' model: "dense.weight" plus a 1000-float "dense.bias" (when
// params > 1000), as it travels on the wire.
Result<std::shared_ptr<const ArrayLayout>> dense_layout(int64_t params);

// ---- timing and statistics -------------------------------------------------------------------

double seconds_since(Clock::time_point t0);
// Median of `v` (REQUIRES: not empty).
double median(std::vector<double> v);
// The p-quantile (0 < p <= 1, nearest rank) of ascending `sorted`; 0 when empty.
double percentile(const std::vector<double>& sorted, double p);

// InvalidArgument "<flag> must be >= <min>, got <v>" when v < min.
Status check_positive(const char* flag, int64_t v, int64_t min);

// ---- resident memory (Linux) -----------------------------------------------------------------

// Peak resident size of this process so far (getrusage ru_maxrss).
int64_t peak_rss_bytes();
// "VmHWM" / "VmRSS" / ... of /proc/self/status in bytes (-1 when unavailable).
int64_t proc_status_bytes(const char* key);
// Resident now (VmRSS), or the peak so far where /proc is unavailable.
int64_t current_rss_bytes();

// ---- CPU time (Linux) ------------------------------------------------------------------------

// User + system CPU seconds of every thread of this process so far (getrusage).
double self_cpu_seconds();
// The same for another process, from /proc/PID/stat (clock-tick resolution; -1 if unreadable).
double process_cpu_seconds(pid_t pid);

// ---- registration ----------------------------------------------------------------------------

// `cohort bench fedavg-round` (bench/fedavg_round.cc), registered by add_kernel_benchmarks.
void add_fedavg_round_benchmark(CLI::App* bench, const Guard& guard);

}  // namespace cohort::bench
