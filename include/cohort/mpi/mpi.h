// Simulations spread over MPI ranks (`mpirun -np N cohort simulate CONFIG.yaml`;
// docs/design/mpi.md). Built only when CMake finds MPI (target cohort_mpi); mpi.h itself is
// included only by src/mpi/*.cc.
//
// Rank 0 runs the simulator exactly as a single process does -- the strategy, the runtime core,
// the event queue, evaluation -- with a Coordinator as its RemoteTraining
// (cohort/sim/remote_training.h): every task's training goes to a worker rank. Ranks 1..N-1
// build the same scenario from the same config and seed (the same data, partition and trainers;
// a fingerprint checks it), then run_worker() trains the tasks rank 0 sends and returns the
// results. A model travels to a rank once per version: workers keep the last few versions, and
// rank 0 mirrors what each holds.
//
// Failures end the run with an error naming the rank: a worker whose set-up failed or whose
// fingerprint differs, a training error on a worker, an MPI call that fails (MPI_ERRORS_RETURN),
// and a worker silent for MpiOptions::timeout_s with a task. A rank that dies makes mpirun end
// the job (mpirun names the rank); a rank that hangs is caught by the timeout, and rank 0 then
// aborts the job (MPI_Abort) rather than wait for it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/sim/remote_training.h"
#include "cohort/trainer/trainer.h"

namespace cohort::mpi {

// MPI in this process, from MPI_Init_thread (MPI_THREAD_SERIALIZED: rank 0's communication
// thread makes the calls while the run lasts) to MPI_Finalize (the destructor).
class Session {
 public:
  // Internal when MPI cannot start or does not provide serialized threads.
  static Result<std::unique_ptr<Session>> init();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // MPI_Abort on the whole job: every rank ends, mpirun exits non-zero.
  [[noreturn]] void abort(int exit_code);

 private:
  Session() = default;
  int rank_ = 0;
  int size_ = 1;
};

struct MpiOptions {
  // A worker that has not answered within this many wall seconds -- its set-up, a task it
  // holds, or the final stop -- fails the run naming it.
  double timeout_s = 300.0;
  // Model versions a worker keeps (rank 0 mirrors them and sends a version at most once while
  // it is kept).
  int models_per_rank = 4;
  // InvalidArgument naming the option.
  Status validate() const;
};

// Rank 0's side: the simulator's RemoteTraining. Tasks wait in one queue (bigger first, like
// the local pool) and go to idle workers, one at a time each.
class Coordinator final : public sim::RemoteTraining {
 public:
  // Waits for every worker's hello: its set-up done and the same `fingerprint` (config, data,
  // partition). An error names the rank (a worker's own error is passed on with its rank).
  static Result<std::shared_ptr<Coordinator>> start(Session& session, MpiOptions options,
                                                    uint64_t fingerprint);
  ~Coordinator() override;

  std::string name() const override { return "MPI ranks (mpirun)"; }
  std::future<Result<sim::RemoteResult>> submit(sim::RemoteJob job) override;

  // Stops the communication thread and the workers (each acknowledges); an error names a rank
  // that did not within the timeout. Jobs still queued end Cancelled.
  Status shutdown();
  // What travelled: ranks, tasks per rank, model sends and bytes per version, task and result
  // bytes (the `mpi.json` of docs/formats.md).
  Json traffic() const;

 private:
  class Impl;
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Rank 0 before a Coordinator exists (its own set-up failed): tells every worker to stop and
// waits for their acknowledgements (or the timeout).
Status stop_workers(Session& session, double timeout_s);

struct WorkerSetup {
  TrainerFactory factory;
  std::vector<const Shard*> shards;  // client id -> training shard
  TrainConfig training;
  uint64_t fingerprint = 0;
};

// Ranks 1..N-1: says hello to rank 0 (with `setup`'s error, if building the scenario failed,
// which rank 0 reports), then trains tasks until rank 0 says stop. Returns an error only for a
// failure rank 0 cannot be told about (MPI itself failing).
Status run_worker(Session& session, const Result<WorkerSetup>& setup, const MpiOptions& options);

// The fingerprint every rank computes from what must agree: the resolved config's JSON and
// every client's example indices.
uint64_t scenario_fingerprint(const std::string& config_json,
                              const std::vector<const Shard*>& shards);

}  // namespace cohort::mpi
