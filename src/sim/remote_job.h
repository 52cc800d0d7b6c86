// The simulator's side of RemoteTraining (cohort/sim/remote_training.h): turns a task it would
// train on its own pool into a RemoteJob, refusing what the remote path cannot do.
#pragma once

#include <future>
#include <memory>
#include <optional>

#include "cohort/sim/remote_training.h"
#include "cohort/strategy/strategy.h"
#include "sim/sim_state.h"

namespace cohort::sim {

// What start_training knows about a task besides the Task itself.
struct RemoteTaskInputs {
  int64_t number = 0;
  uint64_t seed = 0;
  std::shared_ptr<const ArrayRecord> grad_correction;
  std::optional<ArrayRecord> optimizer_state;
  double priority = 0.0;
  std::shared_ptr<std::atomic<bool>> abandoned;
  // Work the local pool would do on the worker that the remote path does not: a Streaming
  // DiLoCo fragment task, client-side DP, an attacker rewriting its delta.
  bool streaming = false;
  bool client_dp = false;
  bool attack = false;
};

// Submits `task` to `remote`; the future yields what the local pool's job would (Trained with
// the trainer's result and, if kept, the optimizer state). InvalidArgument naming the task's
// client and the option for work the remote path refuses.
Result<std::future<Result<Trained>>> submit_remote(RemoteTraining& remote, const Task& task,
                                                   RemoteTaskInputs in);

}  // namespace cohort::sim
