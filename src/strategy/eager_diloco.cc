#include "cohort/strategy/eager_diloco.h"

#include <vector>

#include "cohort/core/ops.h"
#include "cohort/strategy/state_io.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

EagerDiLoCo::EagerDiLoCo(DiLoCoOptions options) : DiLoCo(std::move(options)) {}

Result<std::unique_ptr<Strategy>> EagerDiLoCo::create(StrategyParams& p) {
  DiLoCoOptions o;
  o.name = "eager_diloco";
  read_options(p, o);
  if (o.outer_optimizer != "sgd") {
    p.fail_with("outer_optimizer", "eager_diloco takes sgd (its eager start is an outer SGD step)");
  }
  return std::unique_ptr<Strategy>(new EagerDiLoCo(o));
}

std::vector<Task> EagerDiLoCo::configure_train(int64_t round, const IdleClients& idle) {
  std::vector<Task> tasks = DiLoCo::configure_train(round, idle);
  configured_round_ = round;
  collecting_ = RoundDeltas();
  starts_.clear();
  // Eager starts need the round just before, stepped; otherwise everyone starts from θ_t.
  const bool eager = applied_round_ == round - 1 && !prev_model_.empty();
  const DiLoCoOptions& o = options();
  const auto lr = static_cast<float>(outer_lr_at(round - 1));  // the step being estimated
  const auto mu = static_cast<float>(o.outer_momentum);
  for (Task& t : tasks) {
    auto fresh = last_.delta.find(t.client);
    if (!eager || fresh == last_.delta.end()) continue;
    // Δ̃ = Δ̄_{t-1} - w' Δ_m^{t-1} + w Δ_m^t
    ArrayRecord est(model_->layout());
    std::span<float> d = est.flat();
    if (!prev_average_.empty()) ops::copy(prev_average_.flat(), d);
    if (auto stale = before_last_.delta.find(t.client); stale != before_last_.delta.end()) {
      ops::axpy(static_cast<float>(-before_last_.weight.at(t.client)), stale->second.flat(), d);
    }
    ops::axpy(static_cast<float>(last_.weight.at(t.client)), fresh->second.flat(), d);
    // x = θ_{t-1} - lr (Δ̃ + μ (μ m_{t-1} + Δ̃)) with Nesterov, θ_{t-1} - lr (μ m_{t-1} + Δ̃)
    // without: the outer step, from the state before the last one, not committed.
    ArrayRecord x = prev_model_.clone();
    std::span<float> xs = x.flat();
    const std::span<const float> m = prev_momentum_.flat();
    for (size_t i = 0; i < xs.size(); ++i) {
      const float next_m = mu * m[i] + d[i];
      xs[i] -= o.nesterov ? lr * (d[i] + mu * next_m) : lr * next_m;
    }
    auto start = std::make_shared<const ArrayRecord>(std::move(x));
    t.model = start;
    starts_[t.client] = std::move(start);
    // The whole phase overlaps the round trip of the worker's previous update.
    set_task_overlap_steps(t.config, t.local_steps);
  }
  return tasks;
}

Status EagerDiLoCo::accumulate(const Update& update) {
  // Measure the outer gradient against this round's global model: (x - end) + (θ_t - x).
  Update u;
  u.client = update.client;
  u.base_version = update.base_version;
  u.num_examples = update.num_examples;
  u.local_steps = update.local_steps;
  u.delta = update.delta.clone();
  if (auto s = starts_.find(update.client); s != starts_.end()) {
    ops::axpy(1.0f, model_->flat(), u.delta.flat());
    ops::axpy(-1.0f, s->second->flat(), u.delta.flat());
  }
  COHORT_RETURN_IF_ERROR(DiLoCo::accumulate(u));
  collecting_.weight[u.client] =
      options().weighting == "equal" ? 1.0 : static_cast<double>(u.num_examples);
  collecting_.delta[u.client] = std::move(u.delta);
  return Status();
}

Status EagerDiLoCo::apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) {
  prev_model_ = model_->clone();  // θ_{t-1}
  prev_momentum_ = momentum().clone();
  COHORT_RETURN_IF_ERROR(DiLoCo::apply_pseudo_gradient(avg_delta, next));
  double total = 0.0;
  for (const auto& [c, w] : collecting_.weight) total += w;
  for (auto& [c, w] : collecting_.weight) w = total > 0 ? w / total : 0.0;
  before_last_ = std::move(last_);
  last_ = std::move(collecting_);
  collecting_ = RoundDeltas();
  prev_average_ = std::move(last_average_);
  last_average_ = avg_delta.clone();
  applied_round_ = configured_round_;
  return Status();
}

Status EagerDiLoCo::io_round(StateIO& io, const std::string& key, RoundDeltas& r) {
  std::vector<ClientId> ids;
  for (const auto& [c, d] : r.delta) ids.push_back(c);
  io.value(key + "_clients", ids);
  io.value(key + "_weights", r.weight);
  for (ClientId c : ids) io.array(key + "_" + std::to_string(c), r.delta[c]);
  return io.status();
}

Status EagerDiLoCo::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(DiLoCo::io_state(io));
  io.value("eager_configured_round", configured_round_);
  io.value("eager_applied_round", applied_round_);
  io.array("eager_prev_model", prev_model_);
  io.array("eager_prev_momentum", prev_momentum_);
  io.array("eager_prev_average", prev_average_);
  io.array("eager_last_average", last_average_);
  COHORT_RETURN_IF_ERROR(io_round(io, "eager_collecting", collecting_));
  COHORT_RETURN_IF_ERROR(io_round(io, "eager_last", last_));
  COHORT_RETURN_IF_ERROR(io_round(io, "eager_before_last", before_last_));
  std::vector<ClientId> started;
  for (const auto& [c, x] : starts_) started.push_back(c);
  io.value("eager_started", started);
  for (ClientId c : started) io.shared_array("eager_start_" + std::to_string(c), starts_[c]);
  return io.status();
}

}  // namespace cohort
