#include "cohort/runtime/bandwidth.h"

#include <algorithm>
#include <cmath>

namespace cohort::runtime {

void BandwidthMeter::add(double start, double end, int64_t bytes, bool initial) {
  if (bytes <= 0 || !std::isfinite(start) || !std::isfinite(end)) return;
  const auto b = static_cast<double>(bytes);
  total_ += b;
  auto put = [&](int64_t second, double amount) {
    double& v = per_second_[second];
    v += amount;
    peak_ = std::max(peak_, v);
    if (initial) return;
    double& w = sync_per_second_[second];
    w += amount;
    sync_peak_ = std::max(sync_peak_, w);
  };
  if (!(end > start)) {
    put(static_cast<int64_t>(std::floor(start)), b);
    return;
  }
  const double rate = b / (end - start);
  for (auto s = static_cast<int64_t>(std::floor(start)); static_cast<double>(s) < end; ++s) {
    const double lo = std::max(start, static_cast<double>(s));
    const double hi = std::min(end, static_cast<double>(s + 1));
    if (hi > lo) put(s, rate * (hi - lo));
  }
}

}  // namespace cohort::runtime
