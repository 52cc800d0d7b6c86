#include "cohort/strategy/fedadagrad.h"

namespace cohort {
namespace {

// beta_2 is unused by the Adagrad rule.
FedOptOptions to_fedopt(const FedAdagradOptions& o) {
  return {o.round, o.server_lr, o.beta_1, 0.0, o.tau};
}

}  // namespace

FedAdagrad::FedAdagrad(FedAdagradOptions options)
    : FedOpt(to_fedopt(options), FedOptRule::kAdagrad) {}

Result<std::unique_ptr<Strategy>> FedAdagrad::create(StrategyParams& p) {
  const FedOptOptions o = read_options(p, to_fedopt(FedAdagradOptions{}), /*read_beta_2=*/false);
  return std::unique_ptr<Strategy>(
      new FedAdagrad(FedAdagradOptions{o.round, o.server_lr, o.beta_1, o.tau}));
}

}  // namespace cohort
