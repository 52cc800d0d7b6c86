#include "cohort/runtime/admission.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/validate.h"

namespace cohort {

namespace {
// How error messages name an update; built only when one is returned (admission runs for
// every update).
std::string sender(const Update& u) { return "update from client " + std::to_string(u.client); }
}  // namespace

Status admit_update(const Update& u, const Task& task) {
  auto who = [&u] {
    return sender(u);
  };
  if (u.base_version != task.version) {
    return Status::failed_precondition(who() + ": base_version " + std::to_string(u.base_version) +
                                       " but its task was for version " +
                                       std::to_string(task.version));
  }
  if (task.model == nullptr) return Status::internal(who() + ": its task has no model");
  if (task.server_state == nullptr) {
    if (!u.state_delta.empty()) {
      return Status::invalid_argument(who() +
                                      ": carries a state delta, but its task carries no "
                                      "server state");
    }
  } else {
    if (u.state_delta.empty()) {
      return Status::invalid_argument(who() +
                                      ": carries no state delta, but its task carries a "
                                      "server state");
    }
    COHORT_RETURN_IF_ERROR(
        task.server_state->check_same_layout(u.state_delta, who() + " state delta"));
    COHORT_RETURN_IF_ERROR(u.state_delta.check_finite().with_context(who() + " state delta"));
  }
  return check_update(u, *task.model);
}

Status AdmissionOptions::validate() const {
  COHORT_RETURN_IF_ERROR(
      check_field("admission.max_examples_factor", max_examples_factor, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("admission.max_examples", max_examples, Range::at_least(0)));
  if (norm_policy != "off" && norm_policy != "reject" && norm_policy != "clip" &&
      norm_policy != "downweight") {
    return field_error("admission.norm_policy", "unknown value '" + norm_policy +
                                                    "' (known: off, reject, clip, downweight)");
  }
  COHORT_RETURN_IF_ERROR(check_field("admission.norm_factor", norm_factor, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("admission.norm_window", norm_window, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("admission.norm_warmup", norm_warmup, Range::at_least(1)));
  if (warmup_bound != "model" && warmup_bound != "none") {
    return field_error("admission.warmup_bound",
                       "unknown value '" + warmup_bound + "' (known: model, none)");
  }
  COHORT_RETURN_IF_ERROR(check_field("admission.max_norm", max_norm, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("admission.max_steps_factor", max_steps_factor, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("admission.max_metrics", max_metrics, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("admission.max_metric_key_bytes", max_metric_key_bytes, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(
      check_field("admission.max_abs_weight", max_abs_weight, Range::at_least(0)));
  if (max_model_growth != 0) {
    return check_field("admission.max_model_growth", max_model_growth, Range::above(1));
  }
  return Status();
}

Admission::Admission(AdmissionOptions options) : options_(std::move(options)) {}

double Admission::norm_bound_locked(double model_norm) const {
  double bound = std::numeric_limits<double>::infinity();
  if (options_.norm_policy == "off") return bound;
  if (options_.max_norm > 0) bound = options_.max_norm;
  if (accepted_ >= options_.norm_warmup && !recent_norms_.empty()) {
    // Into a kept buffer: no allocation per update (this runs for every update).
    std::vector<double>& v = median_scratch_;
    v.assign(recent_norms_.begin(), recent_norms_.end());
    auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    double median = *mid;
    if (v.size() % 2 == 0) median = 0.5 * (median + *std::max_element(v.begin(), mid));
    // A window of zero-norm updates would forbid any change at all: such a bound is no bound.
    if (median > 0) bound = std::min(bound, options_.norm_factor * median);
  } else if (options_.warmup_bound == "model" && model_norm > 0) {
    bound = std::min(bound, options_.norm_factor * model_norm);
  }
  return bound;
}

double Admission::norm_bound(double model_norm) const {
  std::lock_guard<std::mutex> lk(mu_);
  return norm_bound_locked(model_norm);
}

double Admission::norm_of_model(const std::shared_ptr<const ArrayRecord>& model) const {
  // One computation per model: concurrent admissions of a new version (the first pushes of a
  // round arrive together) wait for the first instead of each reading the whole model.
  std::lock_guard<std::mutex> computing(norm_mu_);
  {
    std::lock_guard<std::mutex> lk(mu_);
    // A live weak_ptr to the same object: not a new model at a reused address.
    if (normed_model_.lock() == model) return normed_value_;
  }
  const double n = ops::l2_norm(model->flat());  // outside mu_: other admissions go on
  std::lock_guard<std::mutex> lk(mu_);
  normed_model_ = model;
  normed_value_ = n;
  return n;
}

bool Admission::warm() const {
  std::lock_guard<std::mutex> lk(mu_);
  return accepted_ >= options_.norm_warmup && !recent_norms_.empty();
}

Status Admission::admit(Update& u, const Task& task, const AdmissionContext& ctx,
                        AdmissionOutcome* outcome) const {
  COHORT_RETURN_IF_ERROR(admit_update(u, task));
  auto who = [&u] {
    return sender(u);
  };  // built for error messages only
  const AdmissionOptions& o = options_;
  // Client-supplied sizes.
  if (static_cast<int64_t>(u.metrics.size()) > o.max_metrics) {
    return Status::invalid_argument(who() + ": " + std::to_string(u.metrics.size()) +
                                    " metrics, at most " + std::to_string(o.max_metrics));
  }
  for (const auto& [key, value] : u.metrics) {
    if (static_cast<int64_t>(key.size()) > o.max_metric_key_bytes) {
      return Status::invalid_argument(who() + ": metric name of " + std::to_string(key.size()) +
                                      " bytes, at most " + std::to_string(o.max_metric_key_bytes));
    }
    if (!std::isfinite(value)) {
      return Status::invalid_argument(who() + ": metric '" + printable(key, 64) + "' is " +
                                      format_number(value));
    }
  }
  const double max_steps =
      o.max_steps_factor * static_cast<double>(std::max<int64_t>(1, task.local_steps));
  if (static_cast<double>(u.local_steps) > max_steps) {
    return Status::invalid_argument(who() + ": reports " + std::to_string(u.local_steps) +
                                    " local steps, its task asked for " +
                                    std::to_string(task.local_steps));
  }
  // Claimed examples.
  const int64_t basis =
      ctx.registered_examples > 0 ? ctx.registered_examples : std::max<int64_t>(1, ctx.typical_examples);
  double max_examples = o.max_examples_factor * static_cast<double>(basis);
  if (o.max_examples > 0) max_examples = std::min(max_examples, static_cast<double>(o.max_examples));
  if (static_cast<double>(u.num_examples) > max_examples) {
    return Status::invalid_argument(
        who() + ": claims " + std::to_string(u.num_examples) + " examples, at most " +
        format_number(std::floor(max_examples)) +
        (ctx.registered_examples > 0
             ? " (it registered " + std::to_string(ctx.registered_examples) + ")"
             : " (it registered none; the clients' median is " +
                   std::to_string(ctx.typical_examples) + ")"));
  }
  // Magnitude: no element may move a weight further than any sane model's weight.
  if (o.max_abs_weight > 0) {
    const float m = delta_max_abs(u);
    if (m > o.max_abs_weight) {
      return Status::invalid_argument(who() + ": an element of magnitude " + format_number(m) +
                                      " exceeds " + format_number(o.max_abs_weight) +
                                      " (admission.max_abs_weight)");
    }
  }
  // Norm.
  double norm = delta_norm(u);
  const bool model_scale = o.norm_policy != "off" && o.warmup_bound == "model" && task.model;
  // The model's norm bounds updates only until the window is warm: not computed after.
  const double bound = norm_bound(model_scale && !warm() ? norm_of_model(task.model) : 0.0);
  if (norm > bound) {
    if (o.norm_policy == "reject") {
      return Status::invalid_argument(who() + ": update norm " + format_number(norm) +
                                      " exceeds the bound " + format_number(bound) +
                                      (warm() ? ""
                                              : " (norm_factor x the model's norm until "
                                                "norm_warmup updates were accepted)") +
                                      " (admission.norm_policy reject)");
    }
    if (o.norm_policy == "clip") {
      scale_delta(u, static_cast<float>(bound / norm));
      if (!u.state_delta.empty()) ops::scale(u.state_delta.flat(), static_cast<float>(bound / norm));
      norm = bound;
      if (outcome) outcome->clipped = true;
    } else {  // downweight
      u.num_examples = std::max<int64_t>(
          1, static_cast<int64_t>(std::floor(static_cast<double>(u.num_examples) * bound / norm)));
      if (outcome) outcome->downweighted = true;
    }
  }
  if (outcome) outcome->norm = norm;
  return Status();
}

void Admission::record_accepted(double norm) {
  std::lock_guard<std::mutex> lk(mu_);
  ++accepted_;
  recent_norms_.push_back(norm);
  while (static_cast<int64_t>(recent_norms_.size()) > options_.norm_window) {
    recent_norms_.pop_front();
  }
}

Admission::Window Admission::window() const {
  std::lock_guard<std::mutex> lk(mu_);
  return {{recent_norms_.begin(), recent_norms_.end()}, accepted_};
}

void Admission::restore_window(Window w) {
  std::lock_guard<std::mutex> lk(mu_);
  recent_norms_.assign(w.recent_norms.begin(), w.recent_norms.end());
  while (static_cast<int64_t>(recent_norms_.size()) > options_.norm_window) {
    recent_norms_.pop_front();
  }
  accepted_ = w.accepted;
}

}  // namespace cohort
