// What the upstream side of an aggregator (`cohort serve --upstream`, ClientOptions::relay)
// can forward to the tier below. Internal to cohort_deploy.
#pragma once

#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/v1/fleet.pb.h"

namespace cohort::deploy {

// InvalidArgument naming what a task from upstream uses that cannot pass through an
// aggregator (server state, secure aggregation, client-side DP, Streaming DiLoCo); OK else.
Status relay_refusal(const ::cohort::v1::PullTaskReply& task, const ConfigRecord& config);

}  // namespace cohort::deploy
