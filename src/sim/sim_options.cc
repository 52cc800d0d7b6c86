// SimOptions: their rules, and the runtime core's options they make (the part of the simulator
// that neither the event loop nor the clients need).
#include "cohort/sim/simulator.h"

#include "sim/remote_job.h"
#include "sim/sim_state.h"

#include "cohort/runtime/compression.h"

namespace cohort::sim {

Status SimOptions::validate() const {
  COHORT_RETURN_IF_ERROR(run.validate());
  COHORT_RETURN_IF_ERROR(run.validate_budget());
  COHORT_RETURN_IF_ERROR(dynamics.validate());
  COHORT_RETURN_IF_ERROR(admission.validate());
  COHORT_RETURN_IF_ERROR(compression.validate());
  if (robust) COHORT_RETURN_IF_ERROR(robust->validate());
  COHORT_RETURN_IF_ERROR(contribution.validate());
  if (contribution_validation_examples < 1) {
    return Status::invalid_argument("contribution.validation_examples: must be >= 1, got " +
                                    std::to_string(contribution_validation_examples));
  }
  COHORT_RETURN_IF_ERROR(attack::check_options(attack));
  COHORT_RETURN_IF_ERROR(privacy.validate());
  if (privacy.secagg.enabled) COHORT_RETURN_IF_ERROR(runtime::secagg_input_bits(compression).status());
  if (remote_training) COHORT_RETURN_IF_ERROR(check_remote_options(*this, remote_training->name()));
  return training.validate();
}

runtime::RuntimeOptions core_options(const SimOptions& o) {
  runtime::RuntimeOptions r;
  r.max_commits = o.run.rounds;
  r.max_time_s = o.run.max_virtual_time_s;
  r.eval_every = o.run.eval_every;
  r.target_accuracy = o.run.target_accuracy;
  r.model_targets = o.model_targets;
  r.seed = o.run.seed;
  r.training = o.training;
  r.admission = o.admission;
  r.strict_dispatch = true;  // a bad dispatch is a strategy bug: fail loudly
  r.eval_errors_fatal = true;
  r.first_task_number = 0;  // task numbers seed training, jitter and dropout
  r.robust = o.robust;
  r.contribution = o.contribution;
  r.privacy = o.privacy;
  runtime::CompressionOptions uplink = o.compression;
  runtime::fold_uplink_into_secagg(uplink, r.privacy);  // intK becomes the fixed point
  r.reproducible_noise = true;
  return r;
}

}  // namespace cohort::sim
