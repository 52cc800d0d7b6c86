// cohort.join(): a Python client in a real deployment. Cohort's gRPC client (deploy/client.h:
// TLS, bearer token, reconnects with backoff, chunked streams, codecs) drives a Python client
// in Flower's NumPyClient shape (py_trainer.h) on part i of N of the config's data, as
// `cohort join --partition i/N` does with a C++ model: C++ and Python clients take part in the
// same run. The model's arrays must match the server's (names, shapes, order; a mismatch
// fails naming the first differing array).
#include <pybind11/stl.h>

#include <cstdio>
#include <string>
#include <vector>

#include "arrays.h"
#include "cohort/config/config.h"
#include "cohort/data/data_config.h"
#include "cohort/data/shards.h"
#include "cohort/deploy/client.h"
#include "py_trainer.h"

namespace cohort::python {

namespace {

py::dict join(const std::string& server, const std::string& token, const std::string& config,
              py::object client_fn, const std::string& partition, const std::string& ca,
              bool insecure, const std::string& ssl_target_name, uint64_t seed,
              double max_disconnected_s, std::vector<std::string> overrides, bool quiet) {
  int64_t index = 0, count = 1;
  {
    const size_t slash = partition.find('/');
    char* end = nullptr;
    if (slash != std::string::npos) {
      index = std::strtoll(partition.c_str(), &end, 10);
      count = std::strtoll(partition.c_str() + slash + 1, nullptr, 10);
    }
    if (slash == std::string::npos || end != partition.c_str() + slash || count < 1 || index < 0 ||
        index >= count) {
      throw py::value_error("partition: expected 'i/N' with 0 <= i < N, got '" + partition + "'");
    }
  }
  if (token.empty()) throw py::value_error("token: empty");
  if (!PyCallable_Check(client_fn.ptr())) throw py::type_error("client_fn: must be callable");
  SimulationConfig cfg = check(load_simulation_config(config, overrides, ConfigUse::kDeployment));
  std::shared_ptr<const Dataset> train = check(load_split(cfg.data, "train", cfg.run.seed));
  // The same shard client `index` gets in a simulation of `count` clients.
  ClientData mine = check(client_data(train, index, count, cfg.data, cfg.run.seed));

  auto clients = std::make_shared<PyClients>(client_fn, PyClientsOptions{});
  clients->add_client_shards(index, mine.train, mine.holdout);
  clients->set_data(train, nullptr);
  // The client's own shard also makes the initial model (only its layout matters: the server
  // sends the model).
  auto own = std::make_shared<Shard>(mine.train);
  std::unique_ptr<Trainer> trainer = check(python_trainer_factory(clients, own)());

  deploy::ClientOptions o;
  o.server = server;
  o.token = token;
  o.ca_file = ca;
  o.insecure = insecure;
  o.ssl_target_name = ssl_target_name;
  o.seed = seed;
  o.training = cfg.training;
  o.max_disconnected_s = max_disconnected_s;
  if (!quiet) {
    o.log = [](const std::string& line) { std::fprintf(stderr, "cohort.join: %s\n", line.c_str()); };
  }
  Result<deploy::ClientStats> stats = Status::internal("not run");
  {
    py::gil_scoped_release release;
    Result<std::unique_ptr<deploy::Client>> c =
        deploy::Client::create(std::move(o), std::move(trainer), std::move(mine.train));
    stats = c.ok() ? (*c)->run() : Result<deploy::ClientStats>(c.error());
  }
  if (!stats.ok()) raise(stats.error());
  py::dict d;
  d["client_id"] = stats->client_id;
  d["tasks"] = stats->tasks;
  d["accepted"] = stats->accepted;
  d["rejected"] = stats->rejected;
  d["abandoned"] = stats->abandoned;
  d["reconnects"] = stats->reconnects;
  d["waits"] = stats->waits;
  return d;
}

}  // namespace

void bind_join(py::module_& m) {
  m.def("join", &join, py::arg("server"), py::arg("token"), py::arg("config"),
        py::arg("client_fn"), py::arg("partition") = "0/1", py::arg("ca") = "",
        py::arg("insecure") = false, py::arg("ssl_target_name") = "", py::arg("seed") = 1,
        py::arg("max_disconnected_s") = 300.0, py::arg("overrides") = std::vector<std::string>{},
        py::arg("quiet") = false);
}

}  // namespace cohort::python
