// FedAdagrad (Reddi et al. 2021, "Adaptive Federated Optimization"): FedAvg aggregation
// followed by an Adagrad step on the server (the update rule is in fedopt.h): v sums every
// round's Delta_bar^2, so the per-coordinate step shrinks as updates accumulate.
//
// Defaults follow Flower's FedAdagrad: server_lr (Flower's eta) 0.1, tau 1e-9, v = 0
// initially, and no first-moment averaging (Flower fixes beta_1 = 0, so m = Delta_bar).
// Cohort lets beta_1 be set (the paper's Algorithm 2 has it); beta_2 does not exist for
// Adagrad and is rejected as an unknown parameter.
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <string>

#include "cohort/strategy/fedopt.h"

namespace cohort {

struct FedAdagradOptions {
  RoundOptions round;
  // Flower's eta (> 0).
  double server_lr = 0.1;
  // [0, 1); 0 = no first-moment averaging (Flower).
  double beta_1 = 0.0;
  // > 0.
  double tau = 1e-9;
};

class FedAdagrad : public FedOpt {
 public:
  explicit FedAdagrad(FedAdagradOptions options = {});
  // Parameters: the RoundOptions keys, server_lr (> 0), beta_1 ([0, 1)), tau (> 0).
  // InvalidArgument naming the key for a bad value.
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedadagrad"; }
};

}  // namespace cohort
