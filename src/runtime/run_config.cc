#include "cohort/runtime/run_config.h"

#include "cohort/core/validate.h"

namespace cohort {

Status RunConfig::validate() const {
  COHORT_RETURN_IF_ERROR(check_field("run.rounds", rounds, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("run.max_virtual_time_s", max_virtual_time_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("run.eval_every", eval_every, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("run.eval_interval_s", eval_interval_s, Range::at_least(0)));
  if (eval_every == 0 && !(eval_interval_s > 0)) {
    return field_error("run.eval_every", "must be >= 1 unless run.eval_interval_s > 0, got 0");
  }
  COHORT_RETURN_IF_ERROR(check_field("run.target_accuracy", target_accuracy, Range::closed(0, 1)));
  COHORT_RETURN_IF_ERROR(check_field("run.threads", threads, Range::at_least(0)));
  if (reproducible != "default" && reproducible != "strict") {
    return field_error("run.reproducible",
                       "must be default or strict, got \"" + reproducible + "\"");
  }
  return Status();
}

Status RunConfig::validate_budget() const {
  if (rounds == 0 && max_virtual_time_s == 0) {
    return field_error("run",
                       "rounds and max_virtual_time_s are both 0 (no limit), so the run "
                       "would never stop; set at least one of them");
  }
  return Status();
}

}  // namespace cohort
