#include "cohort/strategy/fedprox.h"

namespace cohort {

FedProx::FedProx(FedProxOptions options)
    : FedAvg(FedAvgOptions{.round = options.round, .server_lr = options.server_lr}),
      mu_(options.mu) {}

Result<std::unique_ptr<Strategy>> FedProx::create(StrategyParams& p) {
  FedProxOptions o;
  o.round = read_round_options(p);
  o.server_lr = p.number("server_lr", o.server_lr);
  p.check(o.server_lr > 0, "server_lr", "must be > 0", o.server_lr);
  o.mu = p.number("mu", o.mu);
  p.check(o.mu >= 0, "mu", "must be >= 0", o.mu);
  return std::unique_ptr<Strategy>(new FedProx(o));
}

std::vector<Task> FedProx::configure_train(int64_t round, const IdleClients& idle) {
  std::vector<Task> tasks = FedAvg::configure_train(round, idle);
  for (Task& t : tasks) set_task_prox_mu(t.config, mu_);
  return tasks;
}

}  // namespace cohort
