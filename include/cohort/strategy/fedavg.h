// FedAvg (McMahan et al., "Communication-Efficient Learning of Deep Networks from
// Decentralized Data", AISTATS 2017, arXiv:1602.05629; docs/strategies.md, "fedavg").
//
// Each round samples a fraction of the idle clients (at least min_clients); each trains
// locally from the global model w; the new model is the example-weighted mean of their
// models over the *sampled* clients only:
//     w <- sum_k n_k w_k / sum_k n_k  =  w - sum_k n_k Delta_k / sum_k n_k,
// with Delta_k = w - w_k. Updates are folded into one running sum as they arrive, so the
// server holds one accumulator, not one model per client, whatever the number of clients.
// Server optimizers (FedAvgM, FedAdam, ...) derive from FedAvg and override
// apply_pseudo_gradient().
#pragma once

#include <string>

#include "cohort/strategy/registry.h"
#include "cohort/strategy/round_strategy.h"

namespace cohort {

struct FedAvgOptions {
  RoundOptions round;
  // Global learning rate on the averaged pseudo-gradient; 1.0 is plain FedAvg.
  double server_lr = 1.0;
};

class FedAvg : public RoundStrategy {
 public:
  explicit FedAvg(FedAvgOptions options = {});
  // Parameters: fraction, min_clients, round_deadline_s (RoundOptions), server_lr (> 0).
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedavg"; }
  // The round's running sum takes every update through fold_delta (so do FedAvgM, FedOpt,
  // FedProx and FedNova, which reuse accumulate).
  bool accepts_streamed_delta() const override { return true; }

 protected:
  // Checkpoints: the round state, the running sum "round_sum" and its weight.
  Status io_state(StateIO& io) override;
  Status on_start() override;
  void begin_round(int64_t round) override;
  Status accumulate(const Update& update) override;
  Result<std::optional<ArrayRecord>> aggregate_train(const RoundReport& report) override;
  // Applies the averaged pseudo-gradient `avg_delta` to a copy of the global model, in place
  // in `next` (which holds the current global model on entry). FedAvg: next -= lr * avg.
  virtual Status apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next);
  // Whether apply_pseudo_gradient is FedAvg's own step (next = model - lr * avg), which
  // aggregate_train then writes over the round's sum instead of into a copy of the model: the
  // commit needs no third model-sized buffer (the sum is allocated again for the next round).
  // Subclasses that override apply_pseudo_gradient return false.
  virtual bool plain_step() const { return true; }

  FedAvgOptions options_;
  ArrayRecord sum_;        // running sum of n_k * Delta_k over the round
  double weight_sum_ = 0;  // running sum of n_k
};

}  // namespace cohort
