#include "cohort/strategy/diloco.h"

#include <cmath>

#include "cohort/core/ops.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

DiLoCo::DiLoCo(DiLoCoOptions options)
    : FedAvg(FedAvgOptions{.round = options.round, .server_lr = options.outer_lr}),
      diloco_(std::move(options)) {}

void DiLoCo::read_options(StrategyParams& p, DiLoCoOptions& o) {
  o.round = read_round_options(p);
  o.outer_optimizer = p.string("outer_optimizer", o.outer_optimizer);
  if (o.outer_optimizer != "sgd" && o.outer_optimizer != "adamw") {
    p.fail_with("outer_optimizer", "unknown value '" + o.outer_optimizer + "' (known: sgd, adamw)");
  }
  o.outer_lr = p.number("outer_lr", o.outer_lr);
  p.check(o.outer_lr > 0, "outer_lr", "must be > 0", o.outer_lr);
  o.outer_momentum = p.number("outer_momentum", o.outer_momentum);
  p.check(o.outer_momentum >= 0 && o.outer_momentum < 1, "outer_momentum", "must be in [0, 1)",
          o.outer_momentum);
  o.nesterov = p.boolean("nesterov", o.nesterov);
  o.outer_beta1 = p.number("outer_beta1", o.outer_beta1);
  p.check(o.outer_beta1 >= 0 && o.outer_beta1 < 1, "outer_beta1", "must be in [0, 1)", o.outer_beta1);
  o.outer_beta2 = p.number("outer_beta2", o.outer_beta2);
  p.check(o.outer_beta2 >= 0 && o.outer_beta2 < 1, "outer_beta2", "must be in [0, 1)", o.outer_beta2);
  o.outer_eps = p.number("outer_eps", o.outer_eps);
  p.check(o.outer_eps > 0, "outer_eps", "must be > 0", o.outer_eps);
  o.outer_weight_decay = p.number("outer_weight_decay", o.outer_weight_decay);
  p.check(o.outer_weight_decay >= 0, "outer_weight_decay", "must be >= 0", o.outer_weight_decay);
  o.inner_steps = p.integer("inner_steps", o.inner_steps);
  p.check(o.inner_steps >= 0, "inner_steps", "must be >= 0 (0 = the run's local steps)",
          static_cast<double>(o.inner_steps));
  o.inner_optimizer = p.string("inner_optimizer", o.inner_optimizer);
  if (o.inner_optimizer != "adamw" && o.inner_optimizer != "sgd" && o.inner_optimizer != "run") {
    p.fail_with("inner_optimizer",
                "unknown value '" + o.inner_optimizer + "' (known: adamw, sgd, run)");
  }
  o.inner_lr = p.number("inner_lr", o.inner_lr);
  o.inner_weight_decay = p.number("inner_weight_decay", o.inner_weight_decay);
  o.lr_schedule_target = p.string("lr_schedule_target", o.lr_schedule_target);
  if (o.lr_schedule_target != "inner" && o.lr_schedule_target != "outer") {
    p.fail_with("lr_schedule_target",
                "unknown value '" + o.lr_schedule_target + "' (known: inner, outer)");
  }
  o.weighting = p.string("weighting", o.weighting);
  if (o.weighting != "equal" && o.weighting != "examples") {
    p.fail_with("weighting", "unknown value '" + o.weighting + "' (known: equal, examples)");
  }
}

Result<std::unique_ptr<Strategy>> DiLoCo::create(StrategyParams& p) {
  DiLoCoOptions o;
  read_options(p, o);
  return std::unique_ptr<Strategy>(new DiLoCo(o));
}

Result<std::unique_ptr<Strategy>> DiLoCo::create_ddp(StrategyParams& p) {
  DiLoCoOptions o;
  o.name = "ddp";
  o.outer_optimizer = "adamw";
  o.outer_lr = 4e-4;
  o.inner_steps = 1;
  o.inner_optimizer = "sgd";
  o.inner_lr = 1.0;
  o.inner_weight_decay = 0.0;
  // The inner step only probes the gradient (AdamW on the server is blind to its scale).
  o.lr_schedule_target = "outer";
  read_options(p, o);
  return std::unique_ptr<Strategy>(new DiLoCo(o));
}

Status DiLoCo::on_start() {
  COHORT_RETURN_IF_ERROR(FedAvg::on_start());
  momentum_ = ArrayRecord(model_->layout());  // m_0 = 0
  track_optimizer_state(&momentum_);
  if (diloco_.outer_optimizer == "adamw") {
    second_moment_ = ArrayRecord(model_->layout());
    track_optimizer_state(&second_moment_);
  }
  return Status();
}

std::vector<Task> DiLoCo::configure_train(int64_t round, const IdleClients& idle) {
  std::vector<Task> tasks = FedAvg::configure_train(round, idle);
  for (Task& t : tasks) {
    if (diloco_.inner_steps > 0) t.local_steps = diloco_.inner_steps;
    if (diloco_.inner_optimizer != "run") set_task_optimizer(t.config, diloco_.inner_optimizer);
    if (diloco_.inner_lr >= 0) set_task_lr(t.config, diloco_.inner_lr);
    if (diloco_.inner_weight_decay >= 0) set_task_weight_decay(t.config, diloco_.inner_weight_decay);
    // The inner optimizer's state stays with the worker from one round to the next.
    if (diloco_.inner_optimizer != "sgd") set_task_keep_optimizer_state(t.config, true);
  }
  return tasks;
}

double DiLoCo::outer_lr_at(int64_t round) const {
  return diloco_.lr_schedule_target == "outer" ? diloco_.outer_lr * lr_factor(round)
                                               : diloco_.outer_lr;
}

Status DiLoCo::accumulate(const Update& update) {
  const double w =
      diloco_.weighting == "equal" ? 1.0 : static_cast<double>(update.num_examples);
  COHORT_RETURN_IF_ERROR(group_add(update, static_cast<float>(w), sum_.flat()));
  weight_sum_ += w;
  return Status();
}

Status DiLoCo::apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) {
  const std::span<const float> g = avg_delta.flat();
  std::span<float> theta = next.flat();
  std::span<float> m = momentum_.flat();
  ++outer_steps_;
  if (diloco_.outer_optimizer == "adamw") {
    // LibTorch's AdamW with Delta as the gradient.
    const double b1 = diloco_.outer_beta1, b2 = diloco_.outer_beta2;
    const double bc1 = 1.0 - std::pow(b1, static_cast<double>(outer_steps_));
    const double bc2 = 1.0 - std::pow(b2, static_cast<double>(outer_steps_));
    const double lr = outer_lr_at(current_round());
    const auto decay = static_cast<float>(1.0 - lr * diloco_.outer_weight_decay);
    const auto step = static_cast<float>(lr / bc1);
    const auto sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
    const auto eps = static_cast<float>(diloco_.outer_eps);
    std::span<float> v = second_moment_.flat();
    for (size_t i = 0; i < g.size(); ++i) {
      theta[i] *= decay;
      m[i] = static_cast<float>(b1) * m[i] + static_cast<float>(1.0 - b1) * g[i];
      v[i] = static_cast<float>(b2) * v[i] + static_cast<float>(1.0 - b2) * g[i] * g[i];
      theta[i] -= step * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
    }
    return Status();
  }
  outer_sgd_step(g, theta, m);
  return Status();
}

void DiLoCo::outer_sgd_step(std::span<const float> g, std::span<float> theta,
                            std::span<float> m) const {
  const auto mu = static_cast<float>(diloco_.outer_momentum);
  const auto lr = static_cast<float>(outer_lr_at(current_round()));
  // m <- mu m + Delta
  ops::axpby(1.0f, g, mu, m);
  if (diloco_.nesterov) {
    // theta <- theta - lr (Delta + mu m)
    ops::axpy(-lr, g, theta);
    ops::axpy(-lr * mu, m, theta);
  } else {
    ops::axpy(-lr, m, theta);
  }
}

Status DiLoCo::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(FedAvg::io_state(io));
  io.array("outer_momentum", momentum_);
  io.value("outer_steps", outer_steps_);
  if (diloco_.outer_optimizer == "adamw") io.array("outer_second_moment", second_moment_);
  return io.status();
}

}  // namespace cohort
