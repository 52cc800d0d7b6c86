// FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization"): FedAvg aggregation followed
// by an Adam step on the server (the update rule is in fedopt.h).
//
// Defaults and bias correction follow Flower's FedAdam (flwr.server.strategy): server_lr
// (Flower's eta) 0.1, beta_1 0.9, beta_2 0.99, tau 1e-9, m = v = 0 initially, and the step
// size of round t is Adam's bias-corrected
//     eta_t = server_lr * sqrt(1 - beta_2^(t+1)) / (1 - beta_1^(t+1)),
// with Flower's exponent t + 1 (t = the round number, counting rounds in which no update
// arrived, as Flower's server_round does). With tau this small the first steps move every
// coordinate by about eta_t, so small models want server_lr around 0.01 - 0.03.
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <string>

#include "cohort/strategy/fedopt.h"

namespace cohort {

struct FedAdamOptions {
  RoundOptions round;
  // Flower's eta (> 0).
  double server_lr = 0.1;
  // [0, 1).
  double beta_1 = 0.9;
  // [0, 1).
  double beta_2 = 0.99;
  // > 0.
  double tau = 1e-9;
};

class FedAdam : public FedOpt {
 public:
  explicit FedAdam(FedAdamOptions options = {});
  // Parameters: the RoundOptions keys, server_lr (> 0), beta_1 and beta_2 ([0, 1)),
  // tau (> 0). InvalidArgument naming the key for a bad value.
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedadam"; }

 protected:
  double step_size() const override;
};

}  // namespace cohort
