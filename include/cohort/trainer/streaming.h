// The worker's side of Streaming DiLoCo (Douillard et al., "Streaming DiLoCo with overlapping
// communication: Towards a Distributed Free Lunch", arXiv:2501.18512, 2025; docs/strategies.md,
// "streaming_diloco"), written once for both runtimes.
//
// A Streaming DiLoCo worker does not restart each task from the global model: it keeps its own
// parameters (`local`) and, per fragment of the model (core/fragments.h), the global value it
// last received for it (`anchor`, the origin of that fragment's outer gradient). A task of round
// r (trainer config keys: strategy/task_config.h, TaskStreaming) goes:
//
//   1. train `overlap` steps from `local` (the previous round's communication ran meanwhile);
//   2. merge fragment q = `merge` of the task's model G (the global fragment the previous round
//      produced):  local_q <- (1 - alpha) G_q + alpha local_q,   anchor_q <- G_q
//      (alpha = 0: replace, as DiLoCo; the paper mixes with alpha = 0.5);
//   3. train the task's remaining steps;
//   4. return the outer gradient of fragment p = `fragment` only:  delta_p = anchor_p - local_p,
//      zero elsewhere (so only fragment p travels).
//
// A task with merge = -1, or for a worker whose kept model did not train round r - 1 (it joined,
// missed a round, or lost its state), restarts: local = anchor = G, then trains all the task's
// steps. The inner optimizer's state (Trainer::set_optimizer_state) spans both training calls.
//
// Thread safety: plain functions over the values they are given.
#pragma once

#include <cstdint>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/data/dataset.h"
#include "cohort/strategy/strategy.h"
#include "cohort/strategy/task_config.h"
#include "cohort/trainer/trainer.h"

namespace cohort {

// What a worker keeps between its Streaming DiLoCo tasks (empty before its first).
struct KeptModel {
  ArrayRecord local;
  ArrayRecord anchor;
  int64_t round = -1;  // the round of the last task trained into `local`
  bool empty() const { return local.empty(); }
  KeptModel clone() const { return KeptModel{local.clone(), anchor.clone(), round}; }
};

// Whether the task restarts the worker from the task's model (see the file comment).
bool streaming_restarts(const TaskStreaming& s, const KeptModel& kept, const ArrayRecord& model);

// Runs a streaming task (`task.local_steps` steps in all) with `trainer`. On success `kept` has
// advanced to the end of the task and the result's params hold the update's delta (start - end
// convention: anchor - local on the task's fragment, 0 elsewhere); its metrics and counts are
// the two training calls' (train_loss weighted by steps). On error `kept` may be partly
// advanced: callers pass a copy and keep it only on success. InvalidArgument for a task without
// a model, a task with a server_state (no client-state rule composes with it) or fragments
// that do not fit the model's layout.
Result<TrainResult> train_streaming(Trainer& trainer, const Task& task, const TaskStreaming& s,
                                    const Shard& shard, const TrainConfig& training,
                                    uint64_t seed, KeptModel& kept);

}  // namespace cohort
