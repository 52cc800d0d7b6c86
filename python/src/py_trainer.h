// A Trainer whose clients are Python objects shaped like Flower's NumPyClient:
//   fit(parameters, config) -> (parameters, num_examples, metrics)
//   evaluate(parameters, config) -> (loss, num_examples, metrics)   (metrics["accuracy"])
//   get_parameters(config) -> parameters                            (the initial model)
// made by the user's client_fn(context) for each (client, split) the simulator trains or
// evaluates on; context carries the client's data as numpy arrays (x float32 [n, ...],
// y int64 [n]), its id (-1 for the server's test set) and the split ("train", "holdout",
// "test"). Clients are made once and kept for the run, so they may keep state (an optimizer)
// between tasks. Internal to the _cohort module.
//
// Threads: the simulator trains on its pool; each call takes the GIL for the Python code
// (PyTorch releases it inside its kernels, so two workers overlap there).
// docs/design/python.md says why threads and not processes.
#pragma once

#include <pybind11/pybind11.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cohort/data/dataset.h"
#include "cohort/trainer/trainer.h"

namespace cohort::python {

namespace py = pybind11;

struct PyClientsOptions {
  // "raise": a client's exception (or bad output) stops the run and simulate() raises it;
  // "reject": that task's update is rejected (counted, a "rejected" event with the reason)
  // and the run goes on with the other clients.
  std::string on_error = "raise";
};

// What every PyTrainer of a run shares. Python objects are touched only with the GIL held;
// destroy it with the GIL held.
class PyClients {
 public:
  PyClients(py::object client_fn, PyClientsOptions options) : fn_(std::move(client_fn)), options_(std::move(options)) {}
  // Client ids of the scenario's shards, so a call names the client it is for.
  void add_client_shards(int64_t cid, const Shard& train, const Shard& holdout);
  void set_data(std::shared_ptr<const Dataset> train, std::shared_ptr<const Dataset> test) {
    train_ = std::move(train);
    test_ = std::move(test);
  }
  const std::shared_ptr<const Dataset>& train_data() const { return train_; }
  const std::shared_ptr<const Dataset>& test_data() const { return test_; }
  // Which client and split `shard` is (no Python; thread-safe once set up); returns the
  // shard's key (a hash of its indices).
  uint64_t lookup(const Shard& shard, int64_t* cid, std::string* split) const;

  // REQUIRES: GIL held.
  py::object client_for(const Shard& shard, int64_t* cid, std::string* split);
  const PyClientsOptions& options() const { return options_; }
  // The layout of the model, and whether Python gave it as a dict, from init_params.
  std::shared_ptr<const ArrayLayout> layout;
  bool named = false;

 private:
  py::object fn_;
  PyClientsOptions options_;
  std::shared_ptr<const Dataset> train_;
  std::shared_ptr<const Dataset> test_;
  std::map<uint64_t, std::pair<int64_t, std::string>> by_hash_;  // indices hash -> (cid, split)
  std::map<std::pair<std::string, uint64_t>, py::object> clients_;  // (split, hash) -> client
};

// InvalidArgument for what a task may carry that Python clients cannot take (SCAFFOLD's
// gradient correction); both kinds of Python trainer check it.
Status check_python_task(const ArrayRecord* grad_correction);

// A trainer calling the Python clients in this process (taking the GIL for each call); `test`
// (the server's test set) also makes the initial model.
std::unique_ptr<Trainer> make_python_trainer(std::shared_ptr<PyClients> clients,
                                             std::shared_ptr<const Shard> test);
TrainerFactory python_trainer_factory(std::shared_ptr<PyClients> clients,
                                      std::shared_ptr<const Shard> test);

}  // namespace cohort::python
