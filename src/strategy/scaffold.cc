#include "cohort/strategy/scaffold.h"

#include "cohort/core/ops.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

Scaffold::Scaffold(ScaffoldOptions options) : RoundStrategy(options.round), options_(options) {}

Result<std::unique_ptr<Strategy>> Scaffold::create(StrategyParams& p) {
  ScaffoldOptions o;
  o.round = read_round_options(p);
  o.server_lr = p.number("server_lr", o.server_lr);
  p.check(o.server_lr > 0, "server_lr", "must be > 0", o.server_lr);
  const std::string weighting = p.string("weighting", "uniform");
  if (weighting != "uniform" && weighting != "examples") {
    p.fail_with("weighting", "unknown value '" + weighting + "' (known: uniform, examples)");
  }
  o.weight_by_examples = weighting == "examples";
  return std::unique_ptr<Strategy>(new Scaffold(o));
}

Status Scaffold::on_start() {
  c_ = std::make_shared<const ArrayRecord>(ArrayRecord(model_->layout()));
  sum_delta_ = ArrayRecord(model_->layout());
  sum_dc_ = ArrayRecord(model_->layout());
  return Status();
}

std::vector<Task> Scaffold::configure_train(int64_t round, const IdleClients& idle) {
  std::vector<Task> tasks = RoundStrategy::configure_train(round, idle);
  for (Task& t : tasks) {
    t.server_state = c_;
    set_task_client_state(t.config, ClientStateRule::kScaffold);
  }
  return tasks;
}

void Scaffold::begin_round(int64_t /*round*/) {
  ops::fill(sum_delta_.flat(), 0.0f);
  ops::fill(sum_dc_.flat(), 0.0f);
  weight_sum_ = 0;
  received_ = 0;
}

Status Scaffold::accumulate(const Update& update) {
  // Everything is checked before anything is folded in, so a rejected update leaves the
  // running sums as they were.
  const std::string who = "update from client " + std::to_string(update.client);
  if (update.state_delta.empty()) {
    return Status::invalid_argument(who +
                                    ": state_delta is empty (scaffold needs the client's "
                                    "control-variate change Delta c_i)");
  }
  COHORT_RETURN_IF_ERROR(model_->check_same_layout(update.state_delta, who + ": state_delta"));
  COHORT_RETURN_IF_ERROR(update.state_delta.check_finite().with_context(who + ": state_delta"));
  const double w = options_.weight_by_examples ? static_cast<double>(update.num_examples) : 1.0;
  COHORT_RETURN_IF_ERROR(group_add(update, w, sum_delta_.flat()));
  ops::axpy(1.0f, update.state_delta.flat(), sum_dc_.flat());
  weight_sum_ += w;
  ++received_;
  return Status();
}

Result<std::optional<ArrayRecord>> Scaffold::aggregate_train(const RoundReport& /*report*/) {
  if (received_ == 0 || weight_sum_ <= 0) return std::optional<ArrayRecord>();
  const auto n = static_cast<double>(host_->num_clients());
  if (n < static_cast<double>(received_)) {
    return Status::failed_precondition("scaffold: host reports " +
                                       std::to_string(host_->num_clients()) + " clients but " +
                                       std::to_string(received_) + " updates arrived this round");
  }
  COHORT_RETURN_IF_ERROR(group_finish(sum_delta_.flat()));
  // x <- x - eta_g * sum w_i Delta_i / sum w_i
  ArrayRecord next = model_->clone();
  ops::axpy(static_cast<float>(-options_.server_lr / weight_sum_), sum_delta_.flat(), next.flat());
  // c <- c + (1/N) sum Delta c_i, into a new record: in-flight tasks keep the c they carry.
  ArrayRecord c = c_->clone();
  ops::axpy(static_cast<float>(1.0 / n), sum_dc_.flat(), c.flat());
  c_ = std::make_shared<const ArrayRecord>(std::move(c));
  return std::optional<ArrayRecord>(std::move(next));
}

Status Scaffold::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(io_round_state(io));
  io.shared_array("c", c_);
  io.array("round_sum_delta", sum_delta_);
  io.array("round_sum_dc", sum_dc_);
  io.value("round_weight_sum", weight_sum_);
  io.value("round_folded", received_);
  return io.status();
}

}  // namespace cohort
