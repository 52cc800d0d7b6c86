#include "cohort/strategy/relay.h"

#include <algorithm>
#include <cmath>

#include "cohort/core/ops.h"

namespace cohort {

Relay::Relay(RoundOptions options) : RoundStrategy(options) {}

Status Relay::begin(RelayJob job, RelayDone done) {
  if (job_) return Status::failed_precondition("relay: a job is already in progress");
  if (!job.model) return Status::invalid_argument("relay: the job has no model");
  COHORT_RETURN_IF_ERROR(model_->check_same_layout(*job.model, "relay: the upstream model"));
  job_ = Active{std::move(job), std::move(done), false};
  maybe_start_round();
  return Status();
}

void Relay::cancel() {
  job_.reset();
  round_for_job_ = false;
}

std::vector<Task> Relay::configure_train(int64_t round, const IdleClients& idle) {
  if (!job_) return {};
  if (!job_->installed) {
    // The upstream's model becomes this tier's next version (it was checked above: the relay
    // installs it as is rather than through commit's growth bound, which is the upstream's).
    model_ = job_->job.model;
    ++version_;
    job_->installed = true;
    host_->on_commit(version_);
  }
  std::vector<Task> tasks = RoundStrategy::configure_train(round, idle);
  for (Task& t : tasks) {
    t.model = model_;
    t.version = version_;
    if (job_->job.local_steps > 0) t.local_steps = job_->job.local_steps;
    t.config = job_->job.config;
  }
  return tasks;
}

void Relay::begin_round(int64_t /*round*/) {
  round_for_job_ = job_.has_value();
  if (sum_.empty()) sum_ = ArrayRecord(model_->layout());
  ops::fill(sum_.flat(), 0.0f);
  weight_ = 0.0;
  steps_ = 0.0;
  metrics_.clear();
}

Status Relay::accumulate(const Update& update) {
  const auto n = static_cast<double>(update.num_examples);
  COHORT_RETURN_IF_ERROR(group_add(update, static_cast<float>(n), sum_.flat()));
  weight_ += n;
  steps_ += n * static_cast<double>(update.local_steps);
  for (const auto& [k, v] : update.metrics) {
    if (!std::isfinite(v)) continue;
    auto& [s, w] = metrics_[k];
    s += n * v;
    w += n;
  }
  return Status();
}

Result<std::optional<ArrayRecord>> Relay::aggregate_train(const RoundReport& report) {
  if (!round_for_job_ || !job_ || weight_ <= 0) return std::optional<ArrayRecord>();
  COHORT_RETURN_IF_ERROR(group_finish(sum_.flat()));
  PartialAggregate out;
  ops::scale(sum_.flat(), static_cast<float>(1.0 / weight_));
  out.mean_delta = std::move(sum_);
  sum_ = ArrayRecord();
  out.num_examples = static_cast<int64_t>(std::llround(weight_));
  out.updates = report.received;
  out.local_steps = std::max<int64_t>(1, std::llround(steps_ / weight_));
  for (const auto& [k, sw] : metrics_) out.metrics[k] = sw.first / sw.second;
  RelayDone done = std::move(job_->done);
  job_.reset();
  round_for_job_ = false;
  ++jobs_done_;
  done(std::move(out));
  return std::optional<ArrayRecord>();  // the model changes only with the next job
}

}  // namespace cohort
