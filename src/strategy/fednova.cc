#include "cohort/strategy/fednova.h"

#include <cmath>

#include "cohort/core/ops.h"

namespace cohort {

FedNova::FedNova(FedNovaOptions options)
    : FedAvg(FedAvgOptions{.round = options.round, .server_lr = options.server_lr}),
      local_momentum_(options.local_momentum) {}

Result<std::unique_ptr<Strategy>> FedNova::create(StrategyParams& p) {
  FedNovaOptions o;
  o.round = read_round_options(p);
  o.server_lr = p.number("server_lr", o.server_lr);
  p.check(o.server_lr > 0, "server_lr", "must be > 0", o.server_lr);
  o.local_momentum = p.number("local_momentum", o.local_momentum);
  p.check(o.local_momentum >= 0 && o.local_momentum < 1, "local_momentum", "must be in [0, 1)",
          o.local_momentum);
  return std::unique_ptr<Strategy>(new FedNova(o));
}

double FedNova::normalizer(int64_t steps, double rho) {
  const auto tau = static_cast<double>(steps);
  if (rho == 0.0) return tau;
  return (tau - rho * (1.0 - std::pow(rho, tau)) / (1.0 - rho)) / (1.0 - rho);
}

void FedNova::begin_round(int64_t round) {
  FedAvg::begin_round(round);
  steps_weight_sum_ = 0;
}

Status FedNova::accumulate(const Update& update) {
  // Checked before anything is folded in, so a rejected update leaves the round untouched.
  if (update.local_steps <= 0) {
    return Status::invalid_argument("update from client " + std::to_string(update.client) +
                                    ": fednova needs local_steps > 0, got " +
                                    std::to_string(update.local_steps));
  }
  const auto n = static_cast<double>(update.num_examples);
  const double a = normalizer(update.local_steps, local_momentum_);
  COHORT_RETURN_IF_ERROR(group_add(update, n / a, sum_.flat()));
  weight_sum_ += n;
  steps_weight_sum_ += n * a;
  return Status();
}

Status FedNova::apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) {
  // FedAvg::aggregate_train has divided the sum by sum n_k: avg_delta = sum_k p_k Delta_k/a_k.
  const double tau_eff = steps_weight_sum_ / weight_sum_;
  ops::axpy(static_cast<float>(-options_.server_lr * tau_eff), avg_delta.flat(), next.flat());
  return Status();
}

Status FedNova::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(FedAvg::io_state(io));
  io.value("round_steps_weight_sum", steps_weight_sum_);
  return io.status();
}

}  // namespace cohort
