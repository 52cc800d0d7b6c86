#include "cohort/strategy/fedadam.h"

#include <cmath>

namespace cohort {
namespace {

FedOptOptions to_fedopt(const FedAdamOptions& o) {
  return {o.round, o.server_lr, o.beta_1, o.beta_2, o.tau};
}

}  // namespace

FedAdam::FedAdam(FedAdamOptions options) : FedOpt(to_fedopt(options), FedOptRule::kAdam) {}

Result<std::unique_ptr<Strategy>> FedAdam::create(StrategyParams& p) {
  const FedOptOptions o = read_options(p, to_fedopt(FedAdamOptions{}), /*read_beta_2=*/true);
  return std::unique_ptr<Strategy>(
      new FedAdam(FedAdamOptions{o.round, o.server_lr, o.beta_1, o.beta_2, o.tau}));
}

double FedAdam::step_size() const {
  // Flower's bias correction, exponent server_round + 1 (see the header).
  const double t = static_cast<double>(current_round()) + 1.0;
  return opt_.server_lr * std::sqrt(1.0 - std::pow(opt_.beta_2, t)) /
         (1.0 - std::pow(opt_.beta_1, t));
}

}  // namespace cohort
