// The hand-driven RuntimeHost of the runtime core's tests: the test sets its clock and
// reachability; launched tasks, timers, stops and log lines are recorded.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cohort/runtime/runtime.h"

namespace cohort::runtime {

// A host whose clock and evaluation the test controls; launched tasks and timers are recorded.
class TestHost : public RuntimeHost {
 public:
  double now() const override { return t; }
  double wall_seconds() const override { return 0.5; }
  void launch(const TaskRecord& task) override { launched.push_back(task.id); }
  void schedule_timer(TimerId id, double due) override { timers[id] = due; }
  void cancel_timer(TimerId id) override { timers.erase(id); }
  Result<std::optional<Evaluation>> evaluate(
      const std::shared_ptr<const ArrayRecord>& model) override {
    ++evaluations;
    if (fail_eval) return Status::internal("evaluation backend down");
    Evaluation e;
    e.central.accuracy = model->flat()[0];  // the test reads the model back as accuracy
    e.central.loss = 1.0;
    e.central.num_examples = 10;
    return std::optional<Evaluation>(e);
  }
  bool reachable(ClientId id) const override { return unreachable.count(id) == 0; }
  bool always_reachable() const override { return always; }
  void on_stop(const std::string& reason) override { stops.push_back(reason); }
  void log(const std::string& line) override { logs.push_back(line); }

  double t = 0;
  bool always = false;  // always_reachable(): the runtime keeps its idle index
  bool fail_eval = false;
  int evaluations = 0;
  std::vector<int64_t> launched;
  std::map<TimerId, double> timers;
  std::set<ClientId> unreachable;
  std::vector<std::string> stops;
  std::vector<std::string> logs;
};

// RuntimeOptions with one field set (GCC 12 warns, wrongly, about designated initialisers of
// structs holding strings in this test, so they are built field by field).
template <typename F>
RuntimeOptions options_with(F set) {
  RuntimeOptions o;
  set(o);
  return o;
}

}  // namespace cohort::runtime
