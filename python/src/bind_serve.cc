// cohort.serve(): a deployment server (`cohort serve`) from Python, with the config's strategy
// or a strategy written in Python (py_strategy.h) behind it. The server's setup is the CLI's
// (runner/serving.h); Python's strategy events run on the server's loop thread with the GIL.
#include <pybind11/stl.h>

#include <cstdio>
#include <string>
#include <vector>

#include "arrays.h"
#include "cohort/config/config.h"
#include "cohort/deploy/server.h"
#include "cohort/runner/runner.h"
#include "cohort/runner/serving.h"
#include "cohort/strategy/registry.h"
#include "py_strategy.h"

namespace cohort::python {

namespace {

py::dict serve(const std::string& config, py::object strategy, const std::string& deploy_file,
               std::vector<std::string> deploy_overrides, std::vector<std::string> overrides,
               const std::string& listen, const std::string& tokens, const std::string& cert,
               const std::string& key, bool insecure, const std::string& out) {
  DeployConfig d;
  if (!deploy_file.empty()) {
    d = check(load_deploy_config(deploy_file, deploy_overrides));
  } else {
    d = check(parse_deploy_config("{}\n", "<deploy>", deploy_overrides));
  }
  if (!listen.empty()) d.listen_address = listen;
  if (!tokens.empty()) d.tokens_file = tokens;
  if (!cert.empty()) d.tls_cert_file = cert;
  if (!key.empty()) d.tls_key_file = key;
  if (insecure) d.insecure = true;
  check(d.validate());
  SimulationConfig cfg = check(load_simulation_config(config, overrides, ConfigUse::kDeployment));
  std::unique_ptr<Strategy> s;
  auto errors = std::make_shared<Status>();
  if (strategy.is_none()) {
    check(cfg.source.explain(check_strategies(cfg, 0)));
    s = check(make_strategy(cfg.strategy.name, cfg.strategy.params));
  } else {
    s = std::make_unique<PyStrategy>(strategy, errors);
  }
  const std::string name = s->name();
  ServingSetup setup = check(prepare_serving(cfg, d, out));
  Status result;
  ModelVersion version = 0;
  {
    py::gil_scoped_release release;
    deploy::Server server(std::move(setup.options), std::move(s), std::move(setup.initial));
    Result<int> port = server.start();
    if (port.ok()) {
      const size_t colon = d.listen_address.rfind(':');
      std::printf("listening on %s:%d\n", d.listen_address.substr(0, colon).c_str(), *port);
      std::fflush(stdout);
      result = server.wait();
      version = server.version();
    } else {
      result = port.error();
    }
  }
  if (!errors->ok()) raise(*errors);
  check(result);
  py::dict r;
  r["strategy"] = name;
  r["version"] = version;
  return r;
}

}  // namespace

void bind_serve(py::module_& m) {
  m.def("serve", &serve, py::arg("config"), py::arg("strategy") = py::none(),
        py::arg("deploy") = "", py::arg("deploy_overrides") = std::vector<std::string>{},
        py::arg("overrides") = std::vector<std::string>{}, py::arg("listen") = "",
        py::arg("tokens") = "", py::arg("cert") = "", py::arg("key") = "",
        py::arg("insecure") = false, py::arg("out") = "");
}

}  // namespace cohort::python
