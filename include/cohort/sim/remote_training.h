// RemoteTraining: where a simulated task's training runs when it is not the simulator's own
// pool of trainers -- e.g. other MPI ranks (include/cohort/mpi/mpi.h, docs/design/mpi.md).
//
// The seam is narrow on purpose. The simulator keeps everything else on its loop thread: the
// strategy, the runtime core, the event queue, device models, evaluation and every client's
// stored state. A job is only what a trainer needs -- the client (whose shard the other side
// holds: it builds the same scenario from the same config and seed), the start model, the
// steps, the task config, the task's seed, SCAFFOLD's gradient correction and a copy of the
// client's kept optimizer state -- and the result is the trainer's result with the optimizer
// state after the task. Training is deterministic given these inputs, so where a job runs
// never changes the run: the final model hash equals the single-process run's.
//
// What the remote path does not do (yet) is refused with InvalidArgument naming the option,
// never silently dropped: uplink/downlink compression, simulated attacks, client-side
// differential privacy and Streaming DiLoCo's fragment tasks (check_remote_options and
// submit_remote in src/sim/remote_training.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/trainer/trainer.h"

namespace cohort::sim {

struct SimOptions;

struct RemoteJob {
  ClientId client = 0;
  int64_t number = 0;  // the task number (runtime task id), for messages
  ModelVersion version = 0;
  std::shared_ptr<const ArrayRecord> model;  // shared by every task of a version
  int64_t steps = 1;
  ConfigRecord config;
  uint64_t seed = 0;  // Rng::mix_seed(run seed, "task", client, number)
  std::shared_ptr<const ArrayRecord> grad_correction;  // null: none
  std::optional<ArrayRecord> optimizer_state;          // set: the task keeps its optimizer state
  double priority = 0.0;                               // bigger first (the local pool's order)
  // Set by the simulator when the task is lost: a job not started yet may be skipped.
  std::shared_ptr<std::atomic<bool>> abandoned;
};

struct RemoteResult {
  TrainResult result;
  std::optional<ArrayRecord> optimizer_state;  // set when the job carried one
};

class RemoteTraining {
 public:
  virtual ~RemoteTraining() = default;
  // For error messages: "MPI ranks (mpirun)".
  virtual std::string name() const = 0;
  // Called from the simulator's loop thread. The future yields the result, or the error that
  // ends the run (Internal naming the rank; Cancelled for a job skipped as abandoned).
  virtual std::future<Result<RemoteResult>> submit(RemoteJob job) = 0;
};

// InvalidArgument naming the first option of `options` the remote path cannot honour
// ("compression.uplink: ... not supported when training runs on MPI ranks (mpirun) ...").
Status check_remote_options(const SimOptions& options, const std::string& where);

// What a remote worker runs for a job: the same training call the simulator's own pool makes
// for a plain task (trainer.h), with the job's optimizer state in and out.
Result<RemoteResult> train_job(Trainer& trainer, const Shard& shard, const TrainConfig& training,
                               RemoteJob job);

}  // namespace cohort::sim
