// Python clients in worker processes, so that several train at once: each process has its own
// interpreter and GIL (sub-interpreters share one GIL in Python 3.11). docs/design/python.md.
//
// PyWorkers::start forks the workers from the calling (main) thread once the scenario is
// built: each child inherits the user's client_fn, the data and the PyClients table by the
// fork (nothing is pickled) and serves requests on a pipe pair with an in-process Python
// trainer (py_trainer.h). The simulator's trainers (process_trainer_factory) send each task to
// the worker of its client (cid mod workers), so a client object lives in one process and may
// keep state between its tasks, and results do not depend on the number of workers.
// Messages: an 8-byte length, a JSON header, then the float32 parameters raw.
//
// A worker that dies fails the task it was running with Internal naming it (pid, signal).
// Destroying PyWorkers closes the pipes; the children exit on end-of-file and are reaped.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/trainer/trainer.h"
#include "py_trainer.h"

namespace cohort::python {

class PyWorkers {
 public:
  // Forks `n` >= 1 workers. REQUIRES: GIL held, on the main thread, before any other thread
  // of this run exists.
  static Result<std::shared_ptr<PyWorkers>> start(std::shared_ptr<PyClients> clients,
                                                  std::shared_ptr<const Shard> test, int n);
  ~PyWorkers();
  size_t size() const { return workers_.size(); }
  // Sends `request` to worker `w` and returns its reply; calls to one worker are serialised.
  // Thread-safe; does not touch Python.
  Result<std::string> call(size_t w, const std::string& request);
  // Whether the clients give their parameters as a dict (learnt from the initial model).
  std::atomic<bool> named{false};

 private:
  struct Worker {
    pid_t pid = -1;
    int to = -1;    // parent -> child
    int from = -1;  // child -> parent
    std::mutex mu;
    std::string dead;  // why, once it died
  };
  std::vector<std::unique_ptr<Worker>> workers_;
};

// Trainers that send every call to `workers` (no GIL in this process).
TrainerFactory process_trainer_factory(std::shared_ptr<PyWorkers> workers,
                                       std::shared_ptr<PyClients> clients);

}  // namespace cohort::python
