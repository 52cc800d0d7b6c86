#include "cohort/strategy/async_local_sgd.h"

#include <cmath>

#include "cohort/core/ops.h"

namespace cohort {

AsyncLocalSgd::AsyncLocalSgd(AsyncLocalSgdOptions options)
    : AsyncStrategy(options.async), options_(options) {}

Result<std::unique_ptr<Strategy>> AsyncLocalSgd::create(StrategyParams& p) {
  AsyncLocalSgdOptions o;
  o.async = AsyncOptions::read(p);
  o.outer_lr = p.number("outer_lr", o.outer_lr);
  p.check(o.outer_lr > 0, "outer_lr", "must be > 0", o.outer_lr);
  o.outer_momentum = p.number("outer_momentum", o.outer_momentum);
  p.check(o.outer_momentum >= 0 && o.outer_momentum < 1, "outer_momentum", "must be in [0, 1)",
          o.outer_momentum);
  o.period = p.integer("period", o.period);
  p.check(o.period >= 0, "period", "must be >= 0 (0 = number of clients)",
          static_cast<double>(o.period));
  o.inner_steps = p.integer("inner_steps", o.inner_steps);
  p.check(o.inner_steps >= 0, "inner_steps", "must be >= 0 (0 = the run's local steps)",
          static_cast<double>(o.inner_steps));
  o.dynamic_steps = p.boolean("dynamic_steps", o.dynamic_steps);
  return std::unique_ptr<Strategy>(new AsyncLocalSgd(o));
}

Status AsyncLocalSgd::on_start() {
  buffer_ = ArrayRecord(model_->layout());
  momentum_ = ArrayRecord(model_->layout());
  track_optimizer_state(&momentum_);
  period_ = options_.period > 0 ? options_.period
                                : std::max<int64_t>(1, static_cast<int64_t>(host_->num_clients()));
  return Status();
}

Task AsyncLocalSgd::make_task(ClientId id) {
  Task t = AsyncStrategy::make_task(id);
  const int64_t h = options_.inner_steps > 0 ? options_.inner_steps : t.local_steps;
  t.local_steps = h;
  if (!options_.dynamic_steps) return t;
  const double v = host_->client_info(id).measured_speed;
  double fastest = 0;
  for (ClientId other : host_->client_ids()) {
    fastest = std::max(fastest, host_->client_info(other).measured_speed);
  }
  if (v > 0 && fastest > 0) {
    t.local_steps = std::max<int64_t>(1, static_cast<int64_t>(std::floor(v / fastest * h)));
  }
  return t;
}

Status AsyncLocalSgd::apply(const Update& update, int64_t staleness) {
  const auto inv_n = static_cast<float>(1.0 / static_cast<double>(period_));
  const auto lr = static_cast<float>(options_.outer_lr);
  ArrayRecord next = model_->clone();
  ops::axpy(1.0f, update.delta.flat(), buffer_.flat());
  ++pushes_;
  const bool milestone = pushes_ % period_ == 0;
  if (milestone) {
    const auto beta = static_cast<float>(options_.outer_momentum);
    // m <- β m + b/N ; θ <- θ - ε g/N - ε β m ; b <- 0
    ops::axpby(inv_n, buffer_.flat(), beta, momentum_.flat());
    ops::axpy(-lr * inv_n, update.delta.flat(), next.flat());
    ops::axpy(-lr * beta, momentum_.flat(), next.flat());
    ops::fill(buffer_.flat(), 0.0f);
  } else {
    ops::axpy(-lr * inv_n, update.delta.flat(), next.flat());
  }
  host_->emit({{"event", "update"},
               {"strategy", name()},
               {"client", update.client},
               {"staleness", staleness},
               {"local_steps", update.local_steps},
               {"milestone", milestone},
               {"version", version_ + 1}});
  commit(std::move(next));
  return Status();
}

Status AsyncLocalSgd::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(io_async_state(io));
  io.array("buffer", buffer_);
  io.array("momentum", momentum_);
  io.value("pushes", pushes_);
  return io.status();
}

}  // namespace cohort
