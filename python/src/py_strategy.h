// A strategy written in Python against Cohort's event contract (strategy.h), run by the C++
// simulator: PyStrategy is a StrategyBase whose events call the Python object's methods with
// the GIL held (start, on_client_idle, on_update, on_task_lost, on_timer), and whose host
// (cohort.StrategyHost in Python) dispatches tasks, sets timers and commits models through
// StrategyBase, so a Python strategy gets the same checks and bookkeeping as a C++ one.
// python/cohort/strategy.py builds Flower's round shape (configure_train / aggregate_train) on
// top. Internal to the _cohort module.
//
// Errors: an exception from on_update rejects the update (ValueError: its message is the
// reason; others also stop the run); an exception from any other event stops the run: the
// strategy does nothing more, and simulate() raises it after the simulator returns.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "cohort/strategy/strategy_base.h"

namespace cohort::python {

namespace py = pybind11;

class PyStrategy;

// What the Python strategy sees as its host. Valid while the strategy runs.
class PyHost {
 public:
  explicit PyHost(PyStrategy* s) : s_(s) {}
  PyStrategy* strategy() const;

 private:
  PyStrategy* s_;
};

class PyStrategy final : public StrategyBase {
 public:
  // REQUIRES: GIL held. The first error a Python event raises is also written to *errors,
  // which outlives the strategy (the runner destroys it when the run ends).
  PyStrategy(py::object impl, std::shared_ptr<Status> errors);
  ~PyStrategy() override;

  std::string name() const override { return name_; }
  Status start(StrategyHost* host, ArrayRecord initial) override;
  void on_client_idle(ClientId id) override;
  Status on_update(Update update) override;
  void on_task_lost(ClientId id, ModelVersion version) override;
  void on_timer(TimerId id) override;

  // The first error a Python event raised (OK if none).
  const Status& error() const { return error_; }

  // For PyHost (GIL held).
  StrategyHost& host() { return *host_; }
  bool named() const { return named_; }
  const std::shared_ptr<const ArrayRecord>& model() const { return model_; }
  ModelVersion current_version() const { return version_; }
  bool commit_model(ArrayRecord next) { return commit(std::move(next)); }

 private:
  // Calls `fn` with the GIL held; a Python exception becomes error_ (the first one) and the
  // strategy stops.
  template <typename F>
  Status call(const char* event, F fn);

  py::object impl_;
  py::object host_obj_;
  std::string name_;
  bool named_ = true;
  Status error_;
  std::shared_ptr<Status> errors_;
};

void bind_strategy(py::module_& m);

}  // namespace cohort::python
