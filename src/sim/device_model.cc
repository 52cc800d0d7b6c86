#include "cohort/sim/device_model.h"

#include <algorithm>
#include <cmath>

namespace cohort::sim {

double Distribution::sample(Rng& rng) const {
  double v = mean;
  if (kind == "normal") {
    v = rng.normal(mean, std);
  } else if (kind == "exponential") {
    v = rng.exponential(mean);
  } else if (kind == "uniform") {
    v = rng.uniform(low, high);
  } else if (kind == "lognormal") {
    v = std::exp(rng.normal(std::log(mean) - 0.5 * sigma * sigma, sigma));
  }
  return std::clamp(v, min, max);
}

Status Distribution::validate(const std::string& path) const {
  auto bad = [&](const std::string& field, const std::string& what, double got) {
    return Status::invalid_argument(path + "." + field + ": " + what + ", got " +
                                    std::to_string(got));
  };
  if (kind != "constant" && kind != "normal" && kind != "exponential" && kind != "uniform" &&
      kind != "lognormal") {
    return Status::invalid_argument(path + ".distribution: unknown value '" + kind +
                                    "' (known: constant, normal, exponential, uniform, lognormal)");
  }
  if (kind == "uniform") {
    if (!(low < high)) return bad("low", "must be < high (" + std::to_string(high) + ")", low);
  } else if (!(mean > 0) || !std::isfinite(mean)) {
    return bad("mean", "must be > 0", mean);
  }
  if (kind == "normal" && !(std >= 0)) return bad("std", "must be >= 0", std);
  if (kind == "lognormal" && !(sigma > 0)) return bad("sigma", "must be > 0", sigma);
  if (!(min <= max)) return bad("min", "must be <= max (" + std::to_string(max) + ")", min);
  return Status();
}

Status PopulationOptions::validate() const {
  if (num_clients < 1) {
    return Status::invalid_argument("clients.count: must be >= 1, got " +
                                    std::to_string(num_clients));
  }
  COHORT_RETURN_IF_ERROR(speed.validate("clients.speed"));
  COHORT_RETURN_IF_ERROR(up_mbps.validate("clients.up_mbps"));
  COHORT_RETURN_IF_ERROR(down_mbps.validate("clients.down_mbps"));
  COHORT_RETURN_IF_ERROR(latency_ms.validate("clients.latency_ms"));
  return Status();
}

Result<std::vector<DeviceProfile>> draw_population(const PopulationOptions& options,
                                                   uint64_t seed) {
  COHORT_RETURN_IF_ERROR(options.validate());
  // One stream per property, so changing e.g. the bandwidth distribution keeps the speeds.
  Rng speed_rng = Rng::derive(seed, "population.speed");
  Rng up_rng = Rng::derive(seed, "population.up");
  Rng down_rng = Rng::derive(seed, "population.down");
  Rng lat_rng = Rng::derive(seed, "population.latency");
  constexpr double kBytesPerMbit = 125000.0;
  std::vector<DeviceProfile> out(static_cast<size_t>(options.num_clients));
  for (auto& p : out) {
    p.speed = std::max(1e-9, options.speed.sample(speed_rng));
    p.up_bytes_per_s = std::max(1e-9, options.up_mbps.sample(up_rng) * kBytesPerMbit);
    p.down_bytes_per_s = std::max(1e-9, options.down_mbps.sample(down_rng) * kBytesPerMbit);
    p.latency_s = std::max(0.0, options.latency_ms.sample(lat_rng) / 1000.0);
  }
  return out;
}

}  // namespace cohort::sim
