#include "cohort/trainer/control_variates.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"

namespace cohort {
namespace {

std::string who(const Task& task) { return "task for client " + std::to_string(task.client); }

// The rule the task names, checked against server_state.
Result<ClientStateRule> rule_of(const Task& task) {
  Result<ClientStateRule> parsed = task_client_state(task.config);
  if (!parsed.ok()) return parsed.error().with_context(who(task));
  const ClientStateRule rule = *parsed;
  const bool has_state = task.server_state != nullptr;
  if (rule == ClientStateRule::kNone) {
    if (!has_state) return rule;
    return Status::invalid_argument(
        who(task) + ": carries server_state but task config '" + kClientStateKey +
        "' names no client-state rule (known: " + known_client_state_rules() + ")");
  }
  if (!has_state) {
    return Status::invalid_argument(who(task) + ": client-state rule '" +
                                    std::string(client_state_rule_name(rule)) +
                                    "' needs the task's server_state, which is null");
  }
  return rule;
}

}  // namespace

Result<ArrayRecord> client_state_correction(const Task& task, ArrayRecord& client_state) {
  COHORT_ASSIGN_OR_RETURN(ClientStateRule rule, rule_of(task));
  if (rule == ClientStateRule::kNone) return ArrayRecord();
  const ArrayRecord& c = *task.server_state;
  if (task.model == nullptr) return Status::invalid_argument(who(task) + ": no model");
  COHORT_RETURN_IF_ERROR(
      task.model->check_same_layout(c, who(task) + ": server_state (layout of the model)"));
  if (client_state.empty()) {
    client_state = ArrayRecord(c.layout());  // c_i = 0 before the client's first task
  } else {
    COHORT_RETURN_IF_ERROR(c.check_same_layout(client_state, who(task) + ": stored client state"));
  }
  // SCAFFOLD: every step is w <- w - lr (g(w) - c_i + c).
  ArrayRecord correction(c.layout());
  ops::sub(c.flat(), client_state.flat(), correction.flat());
  return correction;
}

Result<ClientStateUpdate> update_client_state(const Task& task, const ArrayRecord& client_state,
                                              const ArrayRecord& delta, int64_t steps,
                                              const TrainConfig& training) {
  COHORT_ASSIGN_OR_RETURN(ClientStateRule rule, rule_of(task));
  if (rule == ClientStateRule::kNone) return ClientStateUpdate{};
  const std::string rule_name(client_state_rule_name(rule));
  const ArrayRecord& c = *task.server_state;
  COHORT_RETURN_IF_ERROR(c.check_same_layout(delta, who(task) + ": model delta"));
  COHORT_RETURN_IF_ERROR(c.check_same_layout(client_state, who(task) + ": client state"));
  if (steps < 1) {
    return Status::invalid_argument(who(task) + ": " + rule_name +
                                    " client state needs >= 1 local step, got " +
                                    std::to_string(steps));
  }
  Result<TaskTraining> resolved = resolve_task_training(training, task.config);
  if (!resolved.ok()) return resolved.error().with_context(who(task) + ": " + rule_name);
  const double lr = resolved->config.lr;
  if (!(lr > 0)) {
    return Status::invalid_argument(who(task) + ": " + rule_name +
                                    " client state divides by the learning rate, which must be "
                                    "> 0, got " +
                                    format_number(lr));
  }

  // Delta c_i = (x - y) / (K lr) - c, and c_i+ = c_i + Delta c_i. Computing the delta first
  // and adding it makes the stored c_i+ exactly c_i plus what the server receives.
  ClientStateUpdate out;
  out.state_delta = ArrayRecord(c.layout());
  ops::copy(c.flat(), out.state_delta.flat());
  ops::axpby(static_cast<float>(1.0 / (static_cast<double>(steps) * lr)), delta.flat(), -1.0f,
             out.state_delta.flat());
  const auto& specs = c.layout()->specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    // Buffers get no optimiser step, so (x - y) / (K lr) is no gradient estimate there.
    if (!specs[i].trainable) ops::fill(out.state_delta.array(i), 0.0f);
  }
  out.next_state = client_state.clone();
  ops::axpy(1.0f, out.state_delta.flat(), out.next_state.flat());
  return out;
}

}  // namespace cohort
