#include "cohort/strategy/fedbuff.h"

#include <cmath>
#include <optional>

#include "cohort/core/ops.h"

namespace cohort {

FedBuff::FedBuff(FedBuffOptions options) : AsyncStrategy(options.async), options_(options) {}

Result<std::unique_ptr<Strategy>> FedBuff::create(StrategyParams& p) {
  FedBuffOptions o;
  o.async = AsyncOptions::read(p);
  o.buffer_size = p.integer("buffer_size", o.buffer_size);
  p.check(o.buffer_size >= 1, "buffer_size", "must be >= 1", static_cast<double>(o.buffer_size));
  o.server_lr = p.number("server_lr", o.server_lr);
  p.check(o.server_lr > 0, "server_lr", "must be > 0", o.server_lr);
  o.server_momentum = p.number("server_momentum", o.server_momentum);
  p.check(o.server_momentum >= 0 && o.server_momentum < 1, "server_momentum", "must be in [0, 1)",
          o.server_momentum);
  o.reduce = p.string("reduce", o.reduce);
  if (o.reduce != "mean" && o.reduce != "sum") {
    p.fail_with("reduce", "unknown value '" + o.reduce + "' (known: mean, sum)");
  }
  o.example_weight = p.string("example_weight", o.example_weight);
  if (o.example_weight != "equal" && o.example_weight != "linear" && o.example_weight != "sqrt" &&
      o.example_weight != "log") {
    p.fail_with("example_weight",
                "unknown value '" + o.example_weight + "' (known: equal, linear, sqrt, log)");
  }
  o.staleness = StalenessFn::read(p, "polynomial");
  return std::unique_ptr<Strategy>(new FedBuff(o));
}

Status FedBuff::on_start() {
  buffer_ = ArrayRecord(model_->layout());
  momentum_ = ArrayRecord(model_->layout());
  track_optimizer_state(&momentum_);
  return Status();
}

double FedBuff::example_weight(int64_t n) const {
  const auto x = static_cast<double>(n);
  if (options_.example_weight == "linear") return x;
  if (options_.example_weight == "sqrt") return std::sqrt(x);
  if (options_.example_weight == "log") return std::log10(1.0 + x);
  return 1.0;
}

Status FedBuff::apply(const Update& update, int64_t staleness) {
  const double e = example_weight(update.num_examples);
  const double w = e * options_.staleness(staleness);
  COHORT_RETURN_IF_ERROR(group_add(update, w, buffer_.flat()));
  example_sum_ += e;
  staleness_sum_ += static_cast<double>(staleness);
  ++count_;
  if (count_ < options_.buffer_size) return Status();

  Json ev = {{"event", "buffer_flush"}, {"strategy", name()}, {"updates", count_}};
  std::optional<ArrayRecord> next;
  if (Status robust = group_finish(buffer_.flat()); robust.ok()) {
    const double scale = options_.reduce == "mean" ? 1.0 / example_sum_ : 1.0;
    // v <- β v + scale · buffer ; x <- x - η v
    ops::axpby(static_cast<float>(scale), buffer_.flat(),
               static_cast<float>(options_.server_momentum), momentum_.flat());
    next = model_->clone();
    ops::axpy(static_cast<float>(-options_.server_lr), momentum_.flat(), next->flat());
    ev["mean_staleness"] = staleness_sum_ / static_cast<double>(count_);
    ev["version"] = version_ + 1;
  } else {
    // The robust rule could not take the buffer: its updates are dropped, the model stays.
    ev["error"] = robust.to_string();
  }
  host_->emit(std::move(ev));
  ops::fill(buffer_.flat(), 0.0f);
  example_sum_ = 0;
  staleness_sum_ = 0;
  count_ = 0;
  if (next) commit(std::move(*next));
  return Status();
}

std::optional<int64_t> FedBuff::group_size(size_t /*num_clients*/) const {
  return options_.buffer_size;
}

Status FedBuff::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(io_async_state(io));
  io.array("buffer", buffer_);
  io.array("momentum", momentum_);
  io.value("buffer_count", count_);
  io.value("buffer_example_sum", example_sum_);
  io.value("buffer_staleness_sum", staleness_sum_);
  return io.status();
}

}  // namespace cohort
