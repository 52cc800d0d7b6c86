// Staleness functions s(τ) shared by the asynchronous strategies: the family of FedAsync
// (Xie, Koyejo, Gupta 2019, "Asynchronous Federated Optimization", arXiv:1903.03934) plus an
// exponential decay; docs/strategies.md, "Staleness functions".
//
// τ = current global version - the version an update started from (>= 0).
//   constant     s = 1
//   polynomial   s = (τ + 1)^(-a)                    (the corrected sign; APPFL's legacy code
//                                                      had (τ+1)^a)
//   hinge        s = 1 if τ <= b else 1 / (a (τ - b) + 1)
//   exponential  s = exp(-a τ)
// Parameters in configs: `staleness` (the name), `staleness_a`, `staleness_b`.
#pragma once

#include <cstdint>
#include <string>

#include "cohort/strategy/registry.h"

namespace cohort {

struct StalenessFn {
  std::string kind = "constant";  // constant | polynomial | hinge | exponential
  double a = 0.5;
  double b = 4.0;

  double operator()(int64_t staleness) const;
  // Reads `staleness`, `staleness_a`, `staleness_b` with the given default kind; records errors
  // in `p` (unknown kind, a < 0, b < 0).
  static StalenessFn read(StrategyParams& p, const std::string& default_kind);
};

}  // namespace cohort
