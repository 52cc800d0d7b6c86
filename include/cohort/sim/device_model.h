// Device models: how fast each simulated client computes and how fast its link is.
//
// Heterogeneity lives here, never in strategies. Every client's profile is drawn once from
// the configured distributions with a seeded Rng (Rng::derive(seed, "population")), so the
// same seed gives the same population for every strategy compared on it.
//
// Units: speed in local optimiser steps per virtual second; bandwidth in megabits per second
// (1 Mbit/s = 125000 bytes/s); latency in milliseconds (one way).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/rng.h"
#include "cohort/core/status.h"

namespace cohort::sim {

// A scalar distribution, drawn from then clamped to [min, max].
struct Distribution {
  // constant: `mean`; normal: N(mean, std) truncated by clamping; exponential: mean `mean`;
  // uniform: U[low, high]; lognormal: exp(N(ln(mean) - sigma^2/2, sigma)) (so its mean is
  // `mean`).
  std::string kind = "constant";
  double mean = 1.0;
  double std = 0.0;
  double low = 0.0;
  double high = 1.0;
  double sigma = 0.5;
  double min = 1e-6;
  double max = 1e300;

  double sample(Rng& rng) const;
  // InvalidArgument naming `path` and the field ("clients.speed.mean: must be > 0").
  Status validate(const std::string& path) const;

  static Distribution constant(double v) {
    Distribution d;
    d.mean = v;
    return d;
  }
};

struct PopulationOptions {
  int64_t num_clients = 20;
  Distribution speed = Distribution::constant(100.0);      // steps / virtual second
  Distribution up_mbps = Distribution::constant(20.0);     // uplink
  Distribution down_mbps = Distribution::constant(100.0);  // downlink
  Distribution latency_ms = Distribution::constant(20.0);  // one way, per transfer
  Status validate() const;
};

struct DeviceProfile {
  double speed = 1.0;             // steps per virtual second
  double up_bytes_per_s = 1.0;
  double down_bytes_per_s = 1.0;
  double latency_s = 0.0;
};

// One profile per client, drawn in client order from Rng::derive(seed, "population").
Result<std::vector<DeviceProfile>> draw_population(const PopulationOptions& options,
                                                   uint64_t seed);

}  // namespace cohort::sim
