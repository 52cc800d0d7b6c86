#include "py_trainer.h"

#include <pybind11/numpy.h>

#include <cstring>

#include "arrays.h"

namespace cohort::python {

namespace {

uint64_t indices_hash(const Shard& s) {
  uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(s.indices.size());
  for (int64_t i : s.indices) {
    h ^= static_cast<uint64_t>(i);
    h *= 1099511628211ull;
  }
  return h;
}

// A read-only numpy view of a dataset's features [size, *sample_shape] and labels (int32),
// sharing the dataset's memory (kept alive by the views; worker processes share it with the
// parent by the fork).
std::pair<py::array, py::array> dataset_views(const std::shared_ptr<const Dataset>& d) {
  auto* holder = new std::shared_ptr<const Dataset>(d);
  py::capsule base(holder, [](void* p) { delete static_cast<std::shared_ptr<const Dataset>*>(p); });
  std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(d->size())};
  for (int64_t s : d->sample_shape) shape.push_back(static_cast<py::ssize_t>(s));
  py::array x(py::dtype::of<float>(), shape, d->features.data(), base);
  py::array y(py::dtype::of<int32_t>(), {static_cast<py::ssize_t>(d->size())}, d->labels.data(), base);
  x.attr("setflags")(py::arg("write") = false);
  y.attr("setflags")(py::arg("write") = false);
  return {x, y};
}

// The client's context (cohort.ClientContext): its id, split, the whole dataset as views and
// its example indices; ctx.x / ctx.y gather its examples on first use.
py::object context_of(const Shard& shard, int64_t cid, const std::string& split) {
  const Dataset& d = *shard.data;
  auto [x, y] = dataset_views(shard.data);
  py::array_t<int64_t> idx(static_cast<py::ssize_t>(shard.size()));
  std::copy(shard.indices.begin(), shard.indices.end(), idx.mutable_data());
  return py::module_::import("cohort").attr("ClientContext")(cid, split, x, y, idx, d.num_classes,
                                                             d.name);
}

std::string who(int64_t cid, const std::string& split) {
  return cid < 0 ? std::string("the server's evaluation client") : "client " + std::to_string(cid);
}

class PyTrainer final : public Trainer {
 public:
  PyTrainer(std::shared_ptr<PyClients> c, std::shared_ptr<const Shard> test)
      : c_(std::move(c)), test_shard_(std::move(test)) {}

  Result<ArrayRecord> init_params(uint64_t seed) override {
    py::gil_scoped_acquire gil;
    return guard("get_parameters()", -1, "test", [&]() -> Result<ArrayRecord> {
      int64_t cid = -1;
      std::string split;
      py::object client = c_->client_for(*test_shard_, &cid, &split);
      if (!py::hasattr(client, "get_parameters")) {
        return Status::invalid_argument(
            "the clients client_fn makes need get_parameters(config) for the initial model");
      }
      py::dict cfg;
      cfg["seed"] = seed;
      py::object p = client.attr("get_parameters")(cfg);
      bool named = false;
      ArrayRecord rec = record_from_python(p, "get_parameters()", nullptr, &named);
      c_->layout = rec.layout();
      c_->named = named;
      return rec;
    });
  }

  Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                            const TrainConfig& config, const ConfigRecord& task_config,
                            uint64_t seed, const ArrayRecord* grad_correction) override {
    COHORT_RETURN_IF_ERROR(check_python_task(grad_correction));
    COHORT_ASSIGN_OR_RETURN(TaskTraining tt, resolve_task_training(config, task_config));
    auto params = std::make_shared<ArrayRecord>(start.clone());
    py::gil_scoped_acquire gil;
    int64_t cid = -1;
    std::string split = "train";
    return guard("fit()", cid, split, [&]() -> Result<TrainResult> {
      py::object client = c_->client_for(shard, &cid, &split);
      py::dict cfg = to_python(task_config);
      cfg["cid"] = cid;
      cfg["local_steps"] = steps;
      cfg["lr"] = tt.config.lr;
      cfg["batch_size"] = tt.config.batch_size;
      cfg["optimizer"] = tt.config.optimizer;
      cfg["momentum"] = tt.config.momentum;
      cfg["weight_decay"] = tt.config.weight_decay;
      cfg["prox_mu"] = tt.prox_mu;
      cfg["seed"] = seed;
      py::object res = client.attr("fit")(record_to_python(params, c_->named, /*writeable=*/true), cfg);
      const std::string what = "fit() of " + who(cid, split);
      if (!py::isinstance<py::tuple>(res) || py::len(res) != 3) {
        throw py::type_error(what + " must return (parameters, num_examples, metrics)");
      }
      py::tuple t = res.cast<py::tuple>();
      TrainResult r;
      bool named = false;
      r.params = record_from_python(t[0], what + " returned parameters", start.layout(), &named);
      r.num_examples = t[1].cast<int64_t>();
      if (r.num_examples <= 0) {
        throw py::value_error(what + " returned num_examples " + std::to_string(r.num_examples) +
                              " (must be > 0)");
      }
      r.steps = steps;
      r.metrics = metrics_from_python(t[2], what);
      return r;
    });
  }

  Result<EvalResult> evaluate(const ArrayRecord& params, const Shard& shard) override {
    auto p = std::make_shared<ArrayRecord>(params.clone());
    py::gil_scoped_acquire gil;
    int64_t cid = -1;
    std::string split = "test";
    return guard("evaluate()", cid, split, [&]() -> Result<EvalResult> {
      py::object client = c_->client_for(shard, &cid, &split);
      py::dict cfg;
      cfg["cid"] = cid;
      cfg["split"] = split;
      py::object res = client.attr("evaluate")(record_to_python(p, c_->named, /*writeable=*/true), cfg);
      const std::string what = "evaluate() of " + who(cid, split);
      if (!py::isinstance<py::tuple>(res) || py::len(res) != 3) {
        throw py::type_error(what + " must return (loss, num_examples, metrics)");
      }
      py::tuple t = res.cast<py::tuple>();
      EvalResult e;
      e.loss = t[0].cast<double>();
      e.num_examples = t[1].cast<int64_t>();
      MetricRecord m = metrics_from_python(t[2], what);
      e.accuracy = m.count("accuracy") ? m["accuracy"] : 0.0;
      return e;
    });
  }

 private:
  // Runs `body` (GIL held), turning Python exceptions and bad output into a Status that names
  // the client: Unavailable under on_error "reject" (the task's update is rejected), else
  // Internal (the run stops and simulate() raises).
  template <typename F>
  auto guard(const std::string& call, const int64_t& cid, const std::string& split, F body)
      -> decltype(body()) {
    std::string why;
    try {
      return body();
    } catch (py::error_already_set& e) {
      why = call + " of " + who(cid, split) + " raised " + e.what();
    } catch (const py::cast_error& e) {
      why = call + " of " + who(cid, split) + " returned a value of the wrong type: " + e.what();
    } catch (const py::builtin_exception& e) {
      why = e.what();
    } catch (const std::exception& e) {
      why = call + " of " + who(cid, split) + ": " + e.what();
    }
    if (c_->options().on_error == "reject" && call != "get_parameters()") return Status::unavailable(why);
    return Status::internal(why);
  }

  std::shared_ptr<PyClients> c_;
  std::shared_ptr<const Shard> test_shard_;
};

}  // namespace

void PyClients::add_client_shards(int64_t cid, const Shard& train, const Shard& holdout) {
  by_hash_[indices_hash(train)] = {cid, "train"};
  if (holdout.size() > 0) by_hash_[indices_hash(holdout)] = {cid, "holdout"};
}

Status check_python_task(const ArrayRecord* grad_correction) {
  if (grad_correction == nullptr) return Status();
  return Status::invalid_argument(
      "Python clients do not take a gradient correction (SCAFFOLD); use another strategy");
}

uint64_t PyClients::lookup(const Shard& shard, int64_t* cid, std::string* split) const {
  const uint64_t h = indices_hash(shard);
  if (shard.data.get() == test_.get()) {
    *cid = -1;
    *split = "test";
  } else if (auto it = by_hash_.find(h); it != by_hash_.end()) {
    *cid = it->second.first;
    *split = it->second.second;
  } else {
    *cid = -1;
    *split = "train";
  }
  return h;
}

py::object PyClients::client_for(const Shard& shard, int64_t* cid, std::string* split) {
  const uint64_t h = lookup(shard, cid, split);
  auto key = std::make_pair(*split, h);
  auto it = clients_.find(key);
  if (it != clients_.end()) return it->second;
  py::object client = fn_(context_of(shard, *cid, *split));
  if (client.is_none()) throw py::type_error("client_fn returned None for " + who(*cid, *split));
  clients_.emplace(key, client);
  return client;
}

std::unique_ptr<Trainer> make_python_trainer(std::shared_ptr<PyClients> clients,
                                             std::shared_ptr<const Shard> test) {
  return std::make_unique<PyTrainer>(std::move(clients), std::move(test));
}

TrainerFactory python_trainer_factory(std::shared_ptr<PyClients> clients,
                                      std::shared_ptr<const Shard> test) {
  return [clients, test]() -> Result<std::unique_ptr<Trainer>> {
    return std::unique_ptr<Trainer>(std::make_unique<PyTrainer>(clients, test));
  };
}

}  // namespace cohort::python
