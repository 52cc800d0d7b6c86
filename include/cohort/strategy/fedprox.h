// FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks").
//
// FedAvg whose clients minimise the local loss plus a proximal term (mu / 2) ||w - w_t||^2
// that keeps them near the global model w_t they started from. The server side is exactly
// FedAvg (example-weighted mean of the sampled clients' models, optional server_lr); the
// strategy only tells every client mu through the task config (set_task_prox_mu, task_config.h),
// which the trainer turns into the extra gradient mu * (w - w_t) (see Trainer). mu = 0 is FedAvg.
//
// Flower's FedProx calls the parameter `proximal_mu` and defaults it to 0; Cohort names it
// `mu` and defaults to 0.01, a common value in the paper's grid {0.001, 0.01, 0.1, 1}.
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

struct FedProxOptions {
  RoundOptions round;
  // Global learning rate on the averaged pseudo-gradient (1.0 = plain averaging).
  double server_lr = 1.0;
  // Weight of the proximal term; >= 0.
  double mu = 0.01;
};

class FedProx : public FedAvg {
 public:
  explicit FedProx(FedProxOptions options = {});
  // Parameters: the RoundOptions keys, server_lr (> 0), mu (>= 0). InvalidArgument naming
  // the key for a bad value.
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedprox"; }
  double mu() const { return mu_; }

 protected:
  // FedAvg's sampling, with "prox_mu" added to every task's config.
  std::vector<Task> configure_train(int64_t round, const IdleClients& idle) override;

 private:
  double mu_;
};

}  // namespace cohort
