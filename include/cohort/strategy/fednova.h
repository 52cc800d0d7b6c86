// FedNova (Wang, Liu, Liang, Joshi, Poor, "Tackling the Objective Inconsistency Problem in
// Heterogeneous Federated Optimization", NeurIPS 2020, arXiv:2007.07481; docs/strategies.md,
// "fednova").
//
// When clients run different numbers of local steps tau_k, FedAvg's weighted mean of their
// pseudo-gradients over-weights the clients that ran more steps and converges to the optimum
// of a skewed objective. FedNova divides each client's pseudo-gradient
// (Delta_k = w_start - w_end) by its step count before averaging and rescales the average by
// the effective step count, so every client counts by its data alone:
//     p_k = n_k / sum_j n_j                  (over the clients that replied)
//     tau_eff = sum_k p_k a_k
//     w <- w - server_lr * tau_eff * sum_k p_k Delta_k / a_k
// with a_k = tau_k for plain local SGD. If the clients run SGD with momentum rho (set
// local_momentum to training.momentum), a_k = ||a||_1 of the paper's momentum SGD,
// (tau_k - rho (1 - rho^tau_k) / (1 - rho)) / (1 - rho). With equal steps this is FedAvg.
//
// Streaming: each update is folded in as it arrives (sum of Delta_k * n_k / a_k, and the
// scalars sum n_k a_k, sum n_k), so the server keeps one model-sized accumulator whatever the
// number of clients. An update with local_steps = 0 is rejected (InvalidArgument).
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <string>

#include "cohort/strategy/fedavg.h"

namespace cohort {

struct FedNovaOptions {
  RoundOptions round;
  // Server learning rate (> 0); 1.0 is the paper's FedNova.
  double server_lr = 1.0;
  // Momentum rho of the clients' local SGD, in [0, 1); must match training.momentum.
  double local_momentum = 0.0;
};

class FedNova : public FedAvg {
 public:
  explicit FedNova(FedNovaOptions options = {});
  // Parameters: the RoundOptions keys, server_lr (> 0), local_momentum ([0, 1)).
  // InvalidArgument naming the key for a bad value.
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fednova"; }

  // ||a||_1 for `steps` local steps of SGD with momentum `rho` (= steps when rho = 0).
  static double normalizer(int64_t steps, double rho);

 protected:
  // Checkpoints: FedAvg's state and the round's sum of n_k a_k.
  Status io_state(StateIO& io) override;
  void begin_round(int64_t round) override;
  Status accumulate(const Update& update) override;
  Status apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) override;
  bool plain_step() const override { return false; }

 private:
  double local_momentum_;
  double steps_weight_sum_ = 0;  // running sum of n_k * a_k
};

}  // namespace cohort
