// Client-state rules: the state a client keeps between its own tasks, and how a task changes it.
//
// Some algorithms need per-client memory. SCAFFOLD (Karimireddy et al. 2020, "SCAFFOLD:
// Stochastic Controlled Averaging for Federated Learning"; docs/strategies.md) keeps a control
// variate c_i on every client next to the server's c. The contract stays generic:
// Task::server_state carries the server's part (c), Task::config["client_state"] names the rule,
// the runtime that trains the client keeps the client's part (c_i) and Update::state_delta carries
// its change back. The runtime is the simulator today and the deployment client later; both call
// the two functions below around Trainer::train, so the rule lives in one place:
//
//   ArrayRecord& c_i = store[client];   // empty until the client's first such task
//   COHORT_ASSIGN_OR_RETURN(ArrayRecord corr, client_state_correction(task, c_i));
//   train(*task.model, shard, steps, training, task.config, seed, corr.empty() ? nullptr : &corr)
//   delta = start - end
//   COHORT_ASSIGN_OR_RETURN(ClientStateUpdate su,
//                           update_client_state(task, c_i, delta, steps_taken, training));
//   update.state_delta = std::move(su.state_delta);
//   once the server accepted the update:  c_i = std::move(su.next_state);
//
// Storing c_i+ only when the update is accepted keeps the server's c equal to the mean of the
// clients' c_i (SCAFFOLD's invariant) when an update is rejected, e.g. after a deadline.
//
// Rules (the task config's client_state, strategy/task_config.h):
//   "scaffold"  SCAFFOLD, option II for the control update:
//                 correction  = c - c_i                      (added to every gradient)
//                 Delta c_i   = (x - y) / (K lr) - c
//                 c_i+        = c_i + Delta c_i  = c_i - c + (x - y) / (K lr)
//               with x the start and y the end parameters (x - y is Update::delta), K the
//               steps taken and lr the task's learning rate (task config "lr", else
//               TrainConfig::lr). Control variates live on trainable arrays: Delta c_i is 0
//               on non-trainable arrays (buffers such as BatchNorm statistics).
//
// Thread safety: plain functions over the records they are given; calls on different records
// may run concurrently.
#pragma once

#include <cstdint>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/strategy/strategy.h"
#include "cohort/strategy/task_config.h"
#include "cohort/trainer/trainer.h"

namespace cohort {

// What a task did to the client's state.
struct ClientStateUpdate {
  ArrayRecord next_state;   // the client's new state (c_i+); the runtime stores it
  ArrayRecord state_delta;  // next_state - old state (Delta c_i), for Update::state_delta
};

// Before training. For a task without server_state and without a rule: returns an empty
// record (no correction) and leaves `client_state` alone. Otherwise zero-initialises an empty
// `client_state` with the server state's layout and returns the gradient correction to pass
// to Trainer::train (SCAFFOLD: c - c_i).
// Errors (InvalidArgument, naming the client): a rule without server_state, server_state
// without a rule, an unknown rule (named, with the known ones), a non-string rule, a
// server_state whose layout differs from the model's, a client_state whose layout differs
// from the server state's.
Result<ArrayRecord> client_state_correction(const Task& task, ArrayRecord& client_state);

// After training. `delta` is start minus end parameters (Update::delta), `steps` the steps
// taken, `training` the run's training config (for the lr when the task does not set one).
// Returns the new state and its change; does not modify `client_state`. For a task without
// server_state returns two empty records.
// REQUIRES: client_state_correction(task, client_state) succeeded.
// Errors (InvalidArgument, naming the client): steps < 1, lr <= 0 or not finite (the rule
// divides by K * lr), `delta` or `client_state` with a layout other than the server state's.
Result<ClientStateUpdate> update_client_state(const Task& task, const ArrayRecord& client_state,
                                              const ArrayRecord& delta, int64_t steps,
                                              const TrainConfig& training);

}  // namespace cohort
