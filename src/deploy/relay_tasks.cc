#include "deploy/relay_tasks.h"

#include <optional>
#include <string>

#include "cohort/strategy/task_config.h"

namespace cohort::deploy {

Status relay_refusal(const ::cohort::v1::PullTaskReply& t, const ConfigRecord& config) {
  auto no = [](const std::string& what) {
    return Status::invalid_argument("cohort serve --upstream: the upstream server's tasks use " +
                                    what +
                                    ", which cannot pass through an aggregator "
                                    "(docs/design/hierarchy.md)");
  };
  if (t.has_server_state()) return no("server state (SCAFFOLD's control variate)");
  if (t.secagg()) return no("secure aggregation");
  COHORT_ASSIGN_OR_RETURN(const std::optional<TaskDp> dp, task_dp(config));
  if (dp) return no("client-side differential privacy");
  COHORT_ASSIGN_OR_RETURN(const std::optional<TaskStreaming> st, task_streaming(config));
  if (st) return no("Streaming DiLoCo's fragments");
  return Status();
}

}  // namespace cohort::deploy
