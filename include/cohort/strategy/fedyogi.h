// FedYogi (Reddi et al. 2021, "Adaptive Federated Optimization"): FedAvg aggregation followed
// by a Yogi step on the server (the update rule is in fedopt.h). Yogi's second moment moves
// towards Delta_bar^2 by an additive (1 - beta_2) * Delta_bar^2, so v cannot collapse after
// one large update the way Adam's does.
//
// Defaults follow Flower's FedYogi: server_lr (Flower's eta) 0.01, beta_1 0.9, beta_2 0.99,
// tau 1e-3, m = v = 0 initially, no bias correction.
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <string>

#include "cohort/strategy/fedopt.h"

namespace cohort {

struct FedYogiOptions {
  RoundOptions round;
  // Flower's eta (> 0).
  double server_lr = 0.01;
  // [0, 1).
  double beta_1 = 0.9;
  // [0, 1).
  double beta_2 = 0.99;
  // > 0.
  double tau = 1e-3;
};

class FedYogi : public FedOpt {
 public:
  explicit FedYogi(FedYogiOptions options = {});
  // Parameters: the RoundOptions keys, server_lr (> 0), beta_1 and beta_2 ([0, 1)),
  // tau (> 0). InvalidArgument naming the key for a bad value.
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedyogi"; }
};

}  // namespace cohort
