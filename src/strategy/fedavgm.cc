#include "cohort/strategy/fedavgm.h"

#include "cohort/core/ops.h"

namespace cohort {

FedAvgM::FedAvgM(FedAvgMOptions options)
    : FedAvg(FedAvgOptions{.round = options.round, .server_lr = options.server_lr}),
      momentum_(options.server_momentum) {}

Result<std::unique_ptr<Strategy>> FedAvgM::create(StrategyParams& p) {
  FedAvgMOptions o;
  o.round = read_round_options(p);
  o.server_lr = p.number("server_lr", o.server_lr);
  p.check(o.server_lr > 0, "server_lr", "must be > 0", o.server_lr);
  o.server_momentum = p.number("server_momentum", o.server_momentum);
  p.check(o.server_momentum >= 0 && o.server_momentum < 1, "server_momentum", "must be in [0, 1)",
          o.server_momentum);
  return std::unique_ptr<Strategy>(new FedAvgM(o));
}

Status FedAvgM::on_start() {
  COHORT_RETURN_IF_ERROR(FedAvg::on_start());
  velocity_ = ArrayRecord(model_->layout());  // v_0 = 0
  track_optimizer_state(&velocity_);
  return Status();
}

Status FedAvgM::apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) {
  ops::axpby(1.0f, avg_delta.flat(), static_cast<float>(momentum_), velocity_.flat());
  ops::axpy(static_cast<float>(-options_.server_lr), velocity_.flat(), next.flat());
  return Status();
}

Status FedAvgM::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(FedAvg::io_state(io));
  io.array("velocity", velocity_);
  return io.status();
}

}  // namespace cohort
