#include "cohort/runtime/admission.h"

#include <string>

namespace cohort {

Status admit_update(const Update& u, const Task& task) {
  const std::string who = "update from client " + std::to_string(u.client);
  if (u.base_version != task.version) {
    return Status::failed_precondition(who + ": base_version " + std::to_string(u.base_version) +
                                       " but its task was for version " +
                                       std::to_string(task.version));
  }
  if (task.model == nullptr) return Status::internal(who + ": its task has no model");
  if (task.server_state == nullptr) {
    if (!u.state_delta.empty()) {
      return Status::invalid_argument(who +
                                      ": carries a state delta, but its task carries no "
                                      "server state");
    }
  } else {
    if (u.state_delta.empty()) {
      return Status::invalid_argument(who +
                                      ": carries no state delta, but its task carries a "
                                      "server state");
    }
    COHORT_RETURN_IF_ERROR(
        task.server_state->check_same_layout(u.state_delta, who + " state delta"));
    COHORT_RETURN_IF_ERROR(u.state_delta.check_finite().with_context(who + " state delta"));
  }
  return check_update(u, *task.model);
}

}  // namespace cohort
