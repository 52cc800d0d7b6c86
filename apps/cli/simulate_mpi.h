// `cohort simulate` under mpirun (docs/design/mpi.md): rank 0 runs the simulation with its
// tasks trained on ranks 1..N-1, which build the same scenario and serve. Without MPI support
// (CMake found no MPI) every rank refuses with an error saying so.
#pragma once

#include <memory>
#include <string>

#include "cohort/core/status.h"
#include "cohort/runner/runner.h"

namespace cohort::cli {

class MpiRun {
 public:
  // The world size mpirun (OpenMPI; or a PMI launcher, e.g. MPICH's) gave this process, 1 when
  // not started by one.
  static int launched_size();

  MpiRun();
  // Rank 0: stops workers not stopped yet (and aborts the job if one does not answer); then
  // MPI_Finalize.
  ~MpiRun();
  MpiRun(const MpiRun&) = delete;
  MpiRun& operator=(const MpiRun&) = delete;

  // Starts MPI (under mpirun with more than one rank). FailedPrecondition when this cohort was
  // built without MPI.
  Status init(double timeout_s);
  bool active() const { return size_ > 1; }
  bool is_worker() const { return active() && rank_ > 0; }

  // A worker rank: builds the scenario of `config` (or passes its error on to rank 0) and
  // trains what rank 0 sends until it says stop. Returns the process's exit code.
  int serve(const Result<SimulationConfig>& config);

  // Rank 0: waits for the workers and returns what the simulator trains its tasks with. Errors
  // name the rank.
  Result<std::shared_ptr<sim::RemoteTraining>> start(const SimulationConfig& config,
                                                     const Scenario& scenario);
  // Rank 0 after the run: stops the workers, writes OUT/mpi.json (docs/formats.md) when `out_dir`
  // is not empty and prints what travelled.
  Status finish(const std::string& out_dir);

 private:
  struct State;
  std::unique_ptr<State> state_;
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_ = 300.0;
};

}  // namespace cohort::cli
