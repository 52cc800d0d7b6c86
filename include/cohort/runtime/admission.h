// Update admission: the checks every arriving update passes before a strategy sees it, in
// both runtimes. A pure function over its arguments, so the deployment runs it on the gRPC
// handler thread that assembled the update (in parallel, outside the server's lock) and the
// simulator on its loop thread; later stages (codec decoding, robust and privacy wrappers)
// see only admitted updates.
//
// Checks, in order, each an error naming the client and what was wrong:
//   FailedPrecondition  the update's base_version is not the version its task started from
//   InvalidArgument     a state_delta without a task server_state, or the other way round,
//                       or one whose layout differs from the server state's, or NaN / Inf in it
//   InvalidArgument     check_update (strategy.h): the delta's layout and finiteness (naming
//                       the array), num_examples <= 0, local_steps < 0
#pragma once

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/strategy/strategy.h"

namespace cohort {

// `task` is the task the update answers (its model has the global model's layout).
Status admit_update(const Update& update, const Task& task);

}  // namespace cohort
