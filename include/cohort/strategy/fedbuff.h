// FedBuff (Nguyen et al., "Federated Learning with Buffered Asynchronous Aggregation",
// AISTATS 2022, arXiv:2106.06639; docs/strategies.md, "fedbuff").
//
// Updates are folded into a buffer as they arrive, each weighted by
//     w_k = e(n_k) · s(τ_k)
// with an example weight e ("equal" 1, "linear" n, "sqrt" √n, "log" log10(1 + n)) and the
// staleness function s. When `buffer_size` K updates are in, the buffer becomes one server step:
//     reduce "mean": Δ̄ = Σ w_k Δ_k / Σ e(n_k)     reduce "sum": Δ̄ = Σ w_k Δ_k   (FLSim's default)
//     v <- β v + Δ̄ ;  x <- x - η v                (server SGD with momentum β, lr η)
// Default reduce is "mean": summing K raw deltas with η = 1 diverged on Fashion-MNIST
// (docs/strategies.md, "fedbuff", notes on the step size);
// FLSim sums (with a small η), APPFL sums scaled by α/N. FLSim also normalises s by its value at
// τ = 1; here s is used as is (the constant factor is absorbed by η).
// Parameters: buffer_size (default 5), server_lr (1.0), server_momentum (0.0), reduce,
// example_weight, staleness / staleness_a / staleness_b (default polynomial, a = 0.5),
// max_concurrency, max_staleness.
#pragma once

#include <string>

#include "cohort/strategy/async_strategy.h"
#include "cohort/strategy/staleness.h"

namespace cohort {

struct FedBuffOptions {
  AsyncOptions async;
  int64_t buffer_size = 5;
  double server_lr = 1.0;
  double server_momentum = 0.0;
  std::string reduce = "mean";           // mean | sum
  std::string example_weight = "equal";  // equal | linear | sqrt | log
  StalenessFn staleness{.kind = "polynomial", .a = 0.5};
};

class FedBuff : public AsyncStrategy {
 public:
  explicit FedBuff(FedBuffOptions options);
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedbuff"; }
  int64_t buffered() const { return count_; }
  bool accepts_streamed_delta() const override { return true; }  // one fold into the buffer

 protected:
  // FedBuff's group is its buffer.
  std::optional<int64_t> group_size(size_t num_clients) const override;
  // Checkpoints: the async state, the buffer "buffer" with its counters, and "momentum".
  Status io_state(StateIO& io) override;
  Status on_start() override;
  Status apply(const Update& update, int64_t staleness) override;

 private:
  double example_weight(int64_t n) const;
  FedBuffOptions options_;
  ArrayRecord buffer_;    // Σ w_k Δ_k
  ArrayRecord momentum_;  // v
  double example_sum_ = 0;
  int64_t count_ = 0;
  double staleness_sum_ = 0;
};

}  // namespace cohort
