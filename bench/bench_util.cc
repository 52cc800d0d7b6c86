#include "bench_util.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"

namespace cohort::bench {

void fill_pattern(std::span<float> x, int64_t client) {
  kernel_pool().parallel_for(0, static_cast<int64_t>(x.size()), ops::kChunk,
                             [&](int64_t lo, int64_t hi) {
                               for (int64_t i = lo; i < hi; ++i) x[i] = pattern(client, i);
                             });
}

Result<std::shared_ptr<const ArrayLayout>> bench_layout(int64_t params) {
  constexpr int64_t kLayers = 8;
  std::vector<ArraySpec> specs;
  for (int64_t l = 0; l < kLayers; ++l) {
    int64_t n = params / kLayers;
    if (l == kLayers - 1) n += params - kLayers * (params / kLayers);
    specs.push_back({"layer" + std::to_string(l), {n}});
  }
  return ArrayLayout::create(std::move(specs));
}

Result<std::shared_ptr<const ArrayLayout>> dense_layout(int64_t params) {
  std::vector<ArraySpec> specs;
  const int64_t bias = params > 1000 ? 1000 : 0;
  specs.push_back({"dense.weight", {params - bias}});
  if (bias > 0) specs.push_back({"dense.bias", {bias}});
  return ArrayLayout::create(std::move(specs));
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i =
      static_cast<size_t>(std::clamp(std::ceil(p * static_cast<double>(sorted.size())) - 1, 0.0,
                                     static_cast<double>(sorted.size() - 1)));
  return sorted[i];
}

Status check_positive(const char* flag, int64_t v, int64_t min) {
  if (v < min) {
    return Status::invalid_argument(std::string(flag) + " must be >= " + std::to_string(min) +
                                    ", got " + std::to_string(v));
  }
  return Status();
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

int64_t proc_status_bytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) == 0) return std::atoll(line.c_str() + prefix.size()) * 1024;
  }
  return -1;
}

int64_t current_rss_bytes() {
  const int64_t resident = proc_status_bytes("VmRSS");
  return resident >= 0 ? resident : peak_rss_bytes();
}

double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec);
  };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

double process_cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return -1;
  // Fields after the command name (in parentheses, which may hold spaces): state is field 3,
  // utime and stime fields 14 and 15.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(stat.substr(close + 1));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i >= 14) ticks += std::atof(field.c_str());
  }
  const long hz = sysconf(_SC_CLK_TCK);
  return hz > 0 ? ticks / static_cast<double>(hz) : -1;
}

}  // namespace cohort::bench
