#include "py_strategy.h"

#include <pybind11/stl.h>

#include <algorithm>

#include "arrays.h"

namespace cohort::python {

PyStrategy* PyHost::strategy() const {
  if (s_ == nullptr) throw std::runtime_error("this strategy host is no longer running");
  return s_;
}

namespace {

PyStrategy& running(const PyHost& h) { return *h.strategy(); }

Json json_of(py::handle obj) {
  const std::string text = py::module_::import("json").attr("dumps")(obj).cast<std::string>();
  return Json::parse(text);
}

}  // namespace

PyStrategy::PyStrategy(py::object impl, std::shared_ptr<Status> errors)
    : impl_(std::move(impl)), errors_(std::move(errors)) {
  py::object n = py::getattr(impl_, "name", py::none());
  name_ = n.is_none() ? py::str(impl_.get_type().attr("__name__")).cast<std::string>()
                      : py::str(n).cast<std::string>();
  for (const char* m : {"start", "on_client_idle", "on_update", "on_task_lost", "on_timer"}) {
    if (!py::hasattr(impl_, m)) {
      throw py::type_error("strategy: " + name_ + " has no method " + m +
                           " (derive from cohort.Strategy or cohort.RoundStrategy)");
    }
  }
}

PyStrategy::~PyStrategy() {
  py::gil_scoped_acquire gil;
  if (host_obj_) {
    // The Python side may keep the host: it must not reach this object any more.
    py::cast<PyHost&>(host_obj_) = PyHost(nullptr);
  }
  host_obj_ = py::object();
  impl_ = py::object();
}

template <typename F>
Status PyStrategy::call(const char* event, F fn) {
  if (!error_.ok()) return error_;
  py::gil_scoped_acquire gil;
  std::string why;
  bool value_error = false;
  try {
    fn();
    return Status();
  } catch (py::error_already_set& e) {
    value_error = e.matches(PyExc_ValueError);
    why = name_ + "." + event + " raised " + e.what();
  } catch (const std::exception& e) {
    value_error = dynamic_cast<const py::value_error*>(&e) != nullptr;
    why = name_ + "." + event + ": " + e.what();
  }
  if (value_error && std::string(event) == "on_update") return Status::invalid_argument(why);
  error_ = Status::internal(why);
  if (errors_ && errors_->ok()) *errors_ = error_;
  return error_;
}

Status PyStrategy::start(StrategyHost* host, ArrayRecord initial) {
  COHORT_RETURN_IF_ERROR(StrategyBase::start(host, std::move(initial)));
  {
    py::gil_scoped_acquire gil;
    named_ = true;
    // Named arrays unless they are "0", "1", ... (a list from get_parameters).
    const auto& specs = model_->layout()->specs();
    named_ = !(specs.size() > 0 && specs[0].name == "0");
    host_obj_ = py::cast(PyHost(this));
  }
  return call("start", [&] { impl_.attr("start")(host_obj_, record_to_python(model_, named_)); });
}

void PyStrategy::on_client_idle(ClientId id) {
  (void)call("on_client_idle", [&] { impl_.attr("on_client_idle")(id); });
}

Status PyStrategy::on_update(Update update) {
  COHORT_RETURN_IF_ERROR(validate_update(update));
  auto delta = std::make_shared<ArrayRecord>(std::move(update.delta));
  return call("on_update", [&] {
    py::object u = py::module_::import("types").attr("SimpleNamespace")();
    u.attr("cid") = update.client;
    u.attr("base_version") = update.base_version;
    u.attr("delta") = record_to_python(delta, named_);
    u.attr("num_examples") = update.num_examples;
    u.attr("local_steps") = update.local_steps;
    u.attr("metrics") = to_python(update.metrics);
    impl_.attr("on_update")(u);
  });
}

void PyStrategy::on_task_lost(ClientId id, ModelVersion version) {
  (void)call("on_task_lost", [&] { impl_.attr("on_task_lost")(id, version); });
}

void PyStrategy::on_timer(TimerId id) {
  (void)call("on_timer", [&] { impl_.attr("on_timer")(id); });
}

void bind_strategy(py::module_& m) {
  py::class_<PyHost>(m, "StrategyHost",
                     "What a Python strategy's events may do: the runtime's services "
                     "(StrategyHost in strategy.h).")
      .def("now", [](const PyHost& h) { return running(h).host().now(); })
      .def("idle_clients", [](const PyHost& h) { return running(h).host().idle_clients(); })
      .def("client_ids", [](const PyHost& h) { return running(h).host().client_ids(); })
      .def("num_clients", [](const PyHost& h) { return running(h).host().num_clients(); })
      .def("client_info",
           [](const PyHost& h, ClientId id) {
             PyStrategy& s = running(h);
             const auto ids = s.host().client_ids();
             if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
               throw py::value_error("client_info: no client " + std::to_string(id));
             }
             const ClientInfo& i = s.host().client_info(id);
             py::dict d;
             d["cid"] = i.id;
             d["num_examples"] = i.num_examples;
             d["measured_speed"] = i.measured_speed;
             d["tasks_done"] = i.tasks_done;
             d["local_steps"] = s.host().default_local_steps(id);
             return d;
           })
      .def(
          "dispatch",
          [](const PyHost& h, ClientId id, std::optional<int64_t> local_steps, py::handle config) {
            PyStrategy& s = running(h);
            const auto idle = s.host().idle_clients();
            if (std::find(idle.begin(), idle.end(), id) == idle.end()) {
              throw py::value_error("dispatch: client " + std::to_string(id) + " is not idle");
            }
            Task t;
            t.client = id;
            t.version = s.current_version();
            t.model = s.model();
            t.local_steps = local_steps.value_or(s.host().default_local_steps(id));
            if (t.local_steps < 1) {
              throw py::value_error("dispatch: local_steps must be >= 1, got " +
                                    std::to_string(t.local_steps));
            }
            t.config = config_from_python(config, "dispatch(config=...)");
            // Without the GIL: the runtime may train or evaluate right away on threads that
            // call Python clients in this process.
            py::gil_scoped_release release;
            s.host().dispatch(std::move(t));
          },
          py::arg("cid"), py::arg("local_steps") = py::none(), py::arg("config") = py::none())
      .def("set_timer", [](const PyHost& h, double delay_s) {
        if (!(delay_s >= 0)) throw py::value_error("set_timer: delay must be >= 0");
        return running(h).host().set_timer(delay_s);
      })
      .def("cancel_timer", [](const PyHost& h, TimerId id) { running(h).host().cancel_timer(id); })
      .def(
          "commit",
          [](const PyHost& h, py::handle params) {
            PyStrategy& s = running(h);
            bool named = false;
            // A model the strategy made wrong is its bug, not a bad update: not a ValueError
            // (which would only reject the update being handled), so the run stops.
            try {
              ArrayRecord next = record_from_python(params, "commit()", s.model()->layout(), &named);
              // The commit evaluates the model (maybe with Python clients of this process, on
              // other threads): without the GIL.
              py::gil_scoped_release release;
              return s.commit_model(std::move(next));
            } catch (const py::builtin_exception& e) {
              throw std::runtime_error(e.what());
            }
          },
          py::arg("parameters"),
          "Installs the next global model (same arrays as the current one); False when the "
          "runtime refused it (admission.max_model_growth, max_abs_weight).")
      .def_property_readonly("model", [](const PyHost& h) {
        PyStrategy& s = running(h);
        return record_to_python(s.model(), s.named());
      })
      .def_property_readonly("version", [](const PyHost& h) { return running(h).current_version(); })
      .def("emit", [](const PyHost& h, py::dict event) { running(h).host().emit(json_of(event)); })
      .def("random", [](const PyHost& h) { return running(h).host().rng().uniform(); },
           "A uniform draw in [0, 1) from the run's seeded stream (deterministic runs).")
      .def(
          "sample",
          [](const PyHost& h, std::vector<ClientId> population, size_t k) {
            if (k > population.size()) {
              throw py::value_error("sample: k = " + std::to_string(k) + " > " +
                                    std::to_string(population.size()) + " clients");
            }
            std::vector<uint64_t> pick = running(h).host().rng().sample_without_replacement(population.size(), k);
            std::vector<ClientId> out;
            for (uint64_t i : pick) out.push_back(population[i]);
            std::sort(out.begin(), out.end());
            return out;
          },
          py::arg("population"), py::arg("k"),
          "k of `population` without replacement, from the run's seeded stream, ascending.");
}

}  // namespace cohort::python
