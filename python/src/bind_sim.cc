// cohort.simulate(): the C++ simulator (any registered strategy, codec, device model, robust
// rule, privacy setting, by the config's names) driving Python clients (py_trainer.h).
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "arrays.h"
#include "cohort/config/config.h"
#include "cohort/runner/runner.h"
#include "py_strategy.h"
#include "py_trainer.h"
#include "py_workers.h"

#include <atomic>
#include <csignal>
#include <thread>

namespace cohort::python {

namespace {

// A config from a YAML file path, or a dict (YAML is a superset of JSON).
SimulationConfig load_config(py::handle config, const std::vector<std::string>& overrides) {
  if (py::isinstance<py::dict>(config)) {
    const std::string text = py::module_::import("json").attr("dumps")(config).cast<std::string>();
    return check(parse_simulation_config(text, "<dict>", overrides));
  }
  if (py::isinstance<py::str>(config) || py::hasattr(config, "__fspath__")) {
    const std::string path = py::str(py::module_::import("os").attr("fspath")(config));
    return check(load_simulation_config(path, overrides));
  }
  throw py::type_error("config: expected a YAML file path or a dict, got " +
                       std::string(py::str(config.get_type().attr("__name__"))));
}

// Ctrl-C during a simulation: Python's own handler cannot run while the main thread is in
// C++, so simulate() installs this one for the run's duration; the run stops early (its
// outputs written), then simulate() raises KeyboardInterrupt.
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted.store(true); }

class SigintScope {
 public:
  SigintScope() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    installed_ = sigaction(SIGINT, &sa, &old_) == 0;
  }
  ~SigintScope() {
    if (installed_) sigaction(SIGINT, &old_, nullptr);
  }

 private:
  struct sigaction old_ {};
  bool installed_ = false;
};

py::object json_to_python(const Json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

}  // namespace

py::object simulate(py::handle config, py::object client_fn, std::vector<std::string> overrides,
                    std::string out, std::string on_error, bool progress,
                    bool save_partition, int workers, py::object strategy) {
  SimulationConfig cfg = load_config(config, overrides);
  if (!cfg.strategies.empty()) {
    throw py::value_error("config: strategies: lists " + std::to_string(cfg.strategies.size()) +
                          " strategies; simulate() runs one strategy: section");
  }
  if (on_error != "raise" && on_error != "reject") {
    throw py::value_error("on_error: must be 'raise' or 'reject', got '" + on_error + "'");
  }
  if (!client_fn.is_none()) {
    if (!cfg.models.empty()) {
      throw py::value_error("config: models: (several models at once) takes C++ trainers only");
    }
    if (!PyCallable_Check(client_fn.ptr())) throw py::type_error("client_fn: must be callable");
  }
  Result<Scenario> built = Status::internal("not built");
  {
    py::gil_scoped_release release;
    built = build_scenario(cfg);
  }
  if (!built.ok()) raise(cfg.source.explain(built.error()));
  Scenario scenario = std::move(*built);
  std::shared_ptr<PyClients> clients;
  std::shared_ptr<PyWorkers> procs;
  if (!client_fn.is_none()) {
    clients = std::make_shared<PyClients>(client_fn, PyClientsOptions{.on_error = on_error});
    for (size_t i = 0; i < scenario.clients->size(); ++i) {
      clients->add_client_shards(static_cast<int64_t>(i), (*scenario.clients)[i].shard,
                                 (*scenario.clients)[i].holdout);
    }
    clients->set_data(scenario.train, scenario.test);
    auto test = std::make_shared<Shard>(Shard::all(scenario.test));
    // Worker processes: as many as the simulator's threads (run.threads; 0 = every core).
    if (workers < 0) {
      workers = cfg.run.threads > 0 ? static_cast<int>(cfg.run.threads)
                                    : static_cast<int>(std::thread::hardware_concurrency());
    }
    if (workers >= 2) {
      procs = check(PyWorkers::start(clients, test, workers));
      scenario.factory = process_trainer_factory(procs, clients);
    } else {
      scenario.factory = python_trainer_factory(clients, test);
    }
  }
  RunOutputs outputs;
  outputs.out_dir = out;
  outputs.progress = progress;
  outputs.save_partition = save_partition;
  // A strategy written in Python (cohort.Strategy) instead of the config's strategy: section.
  std::unique_ptr<Strategy> py_strategy;
  auto strategy_errors = std::make_shared<Status>();
  if (!strategy.is_none()) py_strategy = std::make_unique<PyStrategy>(strategy, strategy_errors);
  Result<sim::SimSummary> summary = Status::internal("not run");
  {
    SigintScope sigint;
    outputs.stop = &g_interrupted;
    py::gil_scoped_release release;
    summary = run_simulation(cfg, scenario, outputs, std::move(py_strategy));
  }
  if (g_interrupted.load()) {
    PyErr_SetString(PyExc_KeyboardInterrupt, "simulation stopped early (its outputs are written)");
    throw py::error_already_set();
  }
  if (!strategy_errors->ok()) raise(*strategy_errors);
  if (!summary.ok()) raise(cfg.source.explain(summary.error()));
  return json_to_python(summary->to_json());
}

void bind_sim(py::module_& m) {
  m.def("simulate", &simulate, py::arg("config"), py::arg("client_fn") = py::none(),
        py::arg("overrides") = std::vector<std::string>{}, py::arg("out") = std::string(),
        py::arg("on_error") = std::string("raise"), py::arg("progress") = false,
        py::arg("save_partition") = false, py::arg("workers") = -1,
        py::arg("strategy") = py::none(),
        "Runs a simulation; returns its summary as a dict (summary.json).");
}

}  // namespace cohort::python
