#include "cohort/strategy/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace cohort {

const char* known_lr_schedules() { return "constant, cosine, linear"; }

double LrSchedule::factor(int64_t round) const {
  const int64_t t = std::max<int64_t>(round, 1) - 1;
  if (t < warmup_rounds) {
    return static_cast<double>(t + 1) / static_cast<double>(warmup_rounds);
  }
  if (kind == "constant") return 1.0;
  const int64_t span = std::max<int64_t>(decay_rounds - warmup_rounds, 1);
  const double p =
      std::min(1.0, static_cast<double>(t - warmup_rounds) / static_cast<double>(span));
  const double shape = kind == "cosine" ? 0.5 * (1.0 + std::cos(std::numbers::pi * p)) : 1.0 - p;
  return min_factor + (1.0 - min_factor) * shape;
}

}  // namespace cohort
