#include "cohort/strategy/fedyogi.h"

namespace cohort {
namespace {

FedOptOptions to_fedopt(const FedYogiOptions& o) {
  return {o.round, o.server_lr, o.beta_1, o.beta_2, o.tau};
}

}  // namespace

FedYogi::FedYogi(FedYogiOptions options) : FedOpt(to_fedopt(options), FedOptRule::kYogi) {}

Result<std::unique_ptr<Strategy>> FedYogi::create(StrategyParams& p) {
  const FedOptOptions o = read_options(p, to_fedopt(FedYogiOptions{}), /*read_beta_2=*/true);
  return std::unique_ptr<Strategy>(
      new FedYogi(FedYogiOptions{o.round, o.server_lr, o.beta_1, o.beta_2, o.tau}));
}

}  // namespace cohort
