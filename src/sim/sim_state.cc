#include "sim/sim_state.h"

#include "cohort/core/model_parts.h"
#include "cohort/strategy/task_config.h"

#include <algorithm>
#include <string>

#include "cohort/core/fragments.h"

namespace cohort::sim {

Result<std::optional<int64_t>> model_part_bytes(const Task& task, bool compressed, bool secagg) {
  COHORT_ASSIGN_OR_RETURN(std::optional<int64_t> which, task_model(task.config));
  if (!which) return std::optional<int64_t>();
  const std::string who = "client " + std::to_string(task.client) + ": task config model";
  COHORT_ASSIGN_OR_RETURN(std::vector<ModelPart> parts, model_parts(*task.model->layout()));
  if (*which >= static_cast<int64_t>(parts.size())) {
    return Status::invalid_argument(who + ": " + std::to_string(*which) + " is not one of the " +
                                    std::to_string(parts.size()) + " models");
  }
  if (compressed || secagg) {
    return Status::invalid_argument(
        who + ": a task of one model of several does not combine with " +
        (secagg ? std::string("secure aggregation") : std::string("compression")) +
        " (they encode the whole vector)");
  }
  return std::optional<int64_t>(parts[static_cast<size_t>(*which)].numel() *
                                static_cast<int64_t>(sizeof(float)));
}

Result<StreamingPlan> streaming_plan(const Task& task, const KeptModel& kept, bool secagg,
                                     bool downlink) {
  const std::string who = "task for client " + std::to_string(task.client);
  Result<std::optional<TaskStreaming>> parsed = task_streaming(task.config);
  if (!parsed.ok()) return parsed.error().with_context(who);
  StreamingPlan plan;
  if (!parsed->has_value()) {
    // Any task may say that its first steps overlap the previous round's communication.
    Result<int64_t> overlap = task_overlap_steps(task.config);
    if (!overlap.ok()) return overlap.error().with_context(who);
    plan.overlap = std::min(*overlap, task.local_steps);
    return plan;
  }
  const TaskStreaming& s = **parsed;
  if (secagg) {
    return Status::invalid_argument(
        who + ": streaming_diloco synchronises one fragment per round, which secure "
              "aggregation (privacy.secagg) cannot mask; turn one of them off");
  }
  if (downlink) {
    return Status::invalid_argument(
        who + ": streaming_diloco merges one fragment of the global model into the worker's "
              "own; compression.downlink (a codec on the whole model) does not apply to it");
  }
  COHORT_ASSIGN_OR_RETURN(Fragments frags,
                          Fragments::create(task.model->numel(), s.fragments, s.block));
  constexpr int64_t kFloat = sizeof(float);
  const bool restart = streaming_restarts(s, kept, *task.model);
  plan.fragments = true;
  plan.bytes_down = restart             ? task.model->num_bytes()
                    : s.merge_bytes > 0 ? s.merge_bytes
                                        : frags.size(s.merge) * kFloat;
  plan.bytes_up = frags.size(s.fragment) * kFloat;
  plan.overlap = restart ? 0 : std::min(s.overlap, task.local_steps);
  return plan;
}

}  // namespace cohort::sim
