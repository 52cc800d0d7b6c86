#include "cohort/trainer/trainer.h"

#include <cmath>

#include "cohort/core/format.h"
#include "cohort/core/validate.h"

namespace cohort {

namespace {

// The lr rule, shared by training.lr and a task's override.
Status check_lr(std::string_view key, double lr) { return check_field(key, lr, Range::above(0)); }

}  // namespace

int64_t TrainConfig::steps_for(int64_t num_examples) const {
  if (local_steps > 0) return local_steps;
  const double steps =
      std::ceil(local_epochs * static_cast<double>(num_examples) / static_cast<double>(batch_size));
  return std::max<int64_t>(1, static_cast<int64_t>(steps));
}

Status TrainConfig::validate() const {
  if (optimizer != "sgd" && optimizer != "adamw") {
    return field_error("training.optimizer",
                       "unknown optimizer '" + optimizer + "' (known: sgd, adamw)");
  }
  COHORT_RETURN_IF_ERROR(check_field("training.adam_beta1", adam_beta1, Range::half_open(0, 1)));
  COHORT_RETURN_IF_ERROR(check_field("training.adam_beta2", adam_beta2, Range::half_open(0, 1)));
  if (!(adam_eps > 0 && std::isfinite(adam_eps))) {
    return field_error("training.adam_eps", "must be > 0, got " + format_number(adam_eps));
  }
  COHORT_RETURN_IF_ERROR(check_lr("training.lr", lr));
  COHORT_RETURN_IF_ERROR(check_field("training.momentum", momentum, Range::half_open(0, 1)));
  COHORT_RETURN_IF_ERROR(check_field("training.weight_decay", weight_decay, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("training.batch_size", batch_size, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("training.local_steps", local_steps, Range::at_least(0)));
  if (local_steps == 0 && !(local_epochs > 0 && std::isfinite(local_epochs))) {
    return field_error("training.local_epochs",
                       "must be > 0 when local_steps is 0, got " + format_number(local_epochs));
  }
  return Status();
}

Result<TaskTraining> resolve_task_training(const TrainConfig& base,
                                           const ConfigRecord& task_config) {
  COHORT_RETURN_IF_ERROR(base.validate());
  TaskTraining t;
  t.config = base;
  // The optimizer first: validating it checks the whole config, whose lr is still the run's (a
  // task's lr may be 0, below).
  COHORT_ASSIGN_OR_RETURN(std::optional<std::string> optimizer, task_optimizer(task_config));
  if (optimizer) {
    t.config.optimizer = *optimizer;
    COHORT_RETURN_IF_ERROR(t.config.validate().with_context("task config optimizer"));
  }
  COHORT_ASSIGN_OR_RETURN(std::optional<double> lr, task_lr(task_config));
  COHORT_ASSIGN_OR_RETURN(t.prox_mu, task_prox_mu(task_config));
  if (lr) {
    // A strategy may freeze a task's model with lr 0 (e.g. an evaluation-only task or the end
    // of a schedule); a user's training.lr of 0 is a mistake, hence the two rules.
    COHORT_RETURN_IF_ERROR(check_field("task config lr", *lr, Range::at_least(0)));
    t.config.lr = *lr;
  }
  // The round's learning-rate schedule (strategy/lr_schedule.h) scales either.
  COHORT_ASSIGN_OR_RETURN(const double lr_scale, task_lr_scale(task_config));
  t.config.lr *= lr_scale;
  COHORT_RETURN_IF_ERROR(check_field("task config prox_mu", t.prox_mu, Range::at_least(0)));
  COHORT_ASSIGN_OR_RETURN(std::optional<double> wd, task_weight_decay(task_config));
  if (wd) {
    COHORT_RETURN_IF_ERROR(check_field("task config weight_decay", *wd, Range::at_least(0)));
    t.config.weight_decay = *wd;
  }
  return t;
}

}  // namespace cohort
