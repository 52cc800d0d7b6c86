// FedAsync (Xie, Koyejo, Gupta 2019, "Asynchronous Federated Optimization", arXiv:1903.03934;
// docs/strategies.md, "fedasync").
//
// Every arriving update commits a new global model at once:
//     α_t = alpha · s(τ) · w_k
//     mixing "model":    x <- (1 - α_t) x + α_t x_new,  x_new = x_τ - Δ_k   (the paper)
//     mixing "gradient": x <- x - α_t Δ_k                                   (APPFL, gradient_based)
// with s the staleness function (staleness.h) and w_k the client weight: "none" (1, the paper),
// "uniform" (1/N, APPFL's default) or "examples" (n_k / Σ n over all clients).
// Parameters: alpha (0, 1] (default 0.6), mixing, weighting, staleness / staleness_a /
// staleness_b (default polynomial, a = 0.5), max_concurrency, max_staleness.
#pragma once

#include <string>

#include "cohort/strategy/async_strategy.h"
#include "cohort/strategy/staleness.h"

namespace cohort {

struct FedAsyncOptions {
  AsyncOptions async;
  double alpha = 0.6;
  std::string mixing = "model";    // model | gradient
  std::string weighting = "none";  // none | uniform | examples
  StalenessFn staleness{.kind = "polynomial", .a = 0.5};
};

class FedAsync : public AsyncStrategy {
 public:
  explicit FedAsync(FedAsyncOptions options);
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedasync"; }
  const FedAsyncOptions& options() const { return options_; }
  bool accepts_streamed_delta() const override { return true; }  // one fold into the model

 protected:
  // FedAsync keeps nothing but the model and the tasks in flight between updates.
  Status io_state(StateIO& io) override { return io_async_state(io); }
  Status apply(const Update& update, int64_t staleness) override;

 private:
  double client_weight(const Update& update) const;
  FedAsyncOptions options_;
};

}  // namespace cohort
