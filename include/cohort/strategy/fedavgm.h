// FedAvgM: FedAvg with server momentum (Hsu, Qi, Brown 2019, "Measuring the Effects of
// Non-Identical Data Distribution for Federated Visual Classification", arXiv:1909.06335;
// docs/strategies.md, "fedavgm").
//
// Each round averages the clients' pseudo-gradients as FedAvg does (Delta_bar, example-
// weighted over the clients that replied; Delta = w_start - w_end, see docs/strategies.md,
// "Sign convention"), then takes one heavy-ball SGD step on the server:
//     v <- beta * v + Delta_bar          (v = 0 before the first aggregation)
//     w <- w - server_lr * v
// This is Flower's FedAvgM (PyTorch SGD convention, no dampening, no Nesterov): Flower sets
// v = Delta_bar on the first aggregation, which is the same thing. server_momentum = 0 and
// server_lr = 1 is plain FedAvg. Flower defaults server_momentum to 0 (momentum off); Cohort
// defaults to 0.9 so that "fedavgm" with no parameters actually uses momentum.
//
// State: the momentum buffer v, one ArrayRecord the size of the model, allocated at start and
// updated in place. A round in which no update arrived leaves both w and v unchanged.
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <string>

#include "cohort/strategy/fedavg.h"

namespace cohort {

struct FedAvgMOptions {
  RoundOptions round;
  // Server learning rate eta (> 0).
  double server_lr = 1.0;
  // Server momentum beta, in [0, 1).
  double server_momentum = 0.9;
};

class FedAvgM : public FedAvg {
 public:
  explicit FedAvgM(FedAvgMOptions options = {});
  // Parameters: the RoundOptions keys, server_lr (> 0), server_momentum ([0, 1)).
  // InvalidArgument naming the key for a bad value.
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedavgm"; }

  double server_momentum() const { return momentum_; }
  // The momentum buffer v (empty before start()).
  const ArrayRecord& momentum_buffer() const { return velocity_; }

 protected:
  Status on_start() override;
  // Checkpoints: FedAvg's state and the momentum buffer "velocity".
  Status io_state(StateIO& io) override;
  Status apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) override;
  bool plain_step() const override { return false; }

 private:
  double momentum_;
  ArrayRecord velocity_;
};

}  // namespace cohort
