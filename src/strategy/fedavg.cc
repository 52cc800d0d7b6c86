#include "cohort/strategy/fedavg.h"

#include "cohort/core/ops.h"

namespace cohort {

FedAvg::FedAvg(FedAvgOptions options) : RoundStrategy(options.round), options_(options) {}

Result<std::unique_ptr<Strategy>> FedAvg::create(StrategyParams& p) {
  FedAvgOptions o;
  o.round = read_round_options(p);
  o.server_lr = p.number("server_lr", o.server_lr);
  p.check(o.server_lr > 0, "server_lr", "must be > 0", o.server_lr);
  return std::unique_ptr<Strategy>(new FedAvg(o));
}

Status FedAvg::on_start() {
  sum_ = ArrayRecord(model_->layout());
  return Status();
}

void FedAvg::begin_round(int64_t /*round*/) {
  if (sum_.empty()) sum_ = ArrayRecord(model_->layout());  // handed over to the last commit
  ops::fill(sum_.flat(), 0.0f);
  weight_sum_ = 0;
}

Status FedAvg::accumulate(const Update& update) {
  const auto w = static_cast<float>(update.num_examples);
  COHORT_RETURN_IF_ERROR(group_add(update, w, sum_.flat()));
  weight_sum_ += static_cast<double>(update.num_examples);
  return Status();
}

Result<std::optional<ArrayRecord>> FedAvg::aggregate_train(const RoundReport& /*report*/) {
  if (weight_sum_ <= 0) return std::optional<ArrayRecord>();
  COHORT_RETURN_IF_ERROR(group_finish(sum_.flat()));
  ops::scale(sum_.flat(), static_cast<float>(1.0 / weight_sum_));
  if (plain_step()) {
    ops::xpay(model_->flat(), static_cast<float>(-options_.server_lr), sum_.flat());
    ArrayRecord next = std::move(sum_);
    sum_ = ArrayRecord();
    return std::optional<ArrayRecord>(std::move(next));
  }
  ArrayRecord next = model_->clone();
  COHORT_RETURN_IF_ERROR(apply_pseudo_gradient(sum_, next));
  return std::optional<ArrayRecord>(std::move(next));
}

Status FedAvg::apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) {
  ops::axpy(static_cast<float>(-options_.server_lr), avg_delta.flat(), next.flat());
  return Status();
}

Status FedAvg::io_state(StateIO& io) {
  if (sum_.empty()) sum_ = ArrayRecord(model_->layout());  // between a commit and the next round
  COHORT_RETURN_IF_ERROR(io_round_state(io));
  io.array("round_sum", sum_);
  io.value("round_weight_sum", weight_sum_);
  return io.status();
}

}  // namespace cohort
