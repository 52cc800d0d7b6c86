// cohort.robust_aggregate(): a robust rule (Krum, median, trimmed mean, ...) applied to a list
// of updates with Cohort's own code (robust/rule.h), as the runtimes apply it to a round.
#include <pybind11/stl.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "arrays.h"
#include "cohort/robust/rule.h"

namespace cohort::python {

namespace {

// A rule's options from a dict of the config's robust.<name> keys.
robust::RuleOptions rule_options(const std::string& rule, py::handle params) {
  robust::RuleOptions o;
  o.rule = rule;
  const ConfigRecord c = config_from_python(params, "params");
  auto number = [&](const Scalar& v, const std::string& k) -> double {
    if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    if (const auto* d = std::get_if<double>(&v)) return *d;
    throw py::type_error("params['" + k + "']: must be a number");
  };
  auto integer = [&](const Scalar& v, const std::string& k) -> int64_t {
    if (const auto* i = std::get_if<int64_t>(&v)) return *i;
    throw py::type_error("params['" + k + "']: must be an int");
  };
  const std::map<std::string, std::function<void(const Scalar&, const std::string&)>> keys = {
      {"f", [&](const Scalar& v, const std::string& k) { o.f = integer(v, k); }},
      {"m", [&](const Scalar& v, const std::string& k) { o.m = integer(v, k); }},
      {"beta", [&](const Scalar& v, const std::string& k) { o.beta = number(v, k); }},
      {"tau", [&](const Scalar& v, const std::string& k) { o.tau = number(v, k); }},
      {"iterations", [&](const Scalar& v, const std::string& k) { o.iterations = integer(v, k); }},
      {"max_iterations", [&](const Scalar& v, const std::string& k) { o.max_iterations = integer(v, k); }},
      {"tolerance", [&](const Scalar& v, const std::string& k) { o.tolerance = number(v, k); }},
      {"nu", [&](const Scalar& v, const std::string& k) { o.nu = number(v, k); }},
      {"max_norm", [&](const Scalar& v, const std::string& k) { o.max_norm = number(v, k); }},
      {"flag_r", [&](const Scalar& v, const std::string& k) { o.flag_r = integer(v, k); }},
      {"flag_lambda", [&](const Scalar& v, const std::string& k) { o.flag_lambda = number(v, k); }},
      {"flag_iterations", [&](const Scalar& v, const std::string& k) { o.flag_iterations = integer(v, k); }},
      {"bucketing", [&](const Scalar& v, const std::string& k) { o.bucketing = integer(v, k); }},
  };
  for (const auto& [k, v] : c) {
    auto it = keys.find(k);
    if (it == keys.end()) {
      std::string known;
      for (const auto& [name, f] : keys) known += (known.empty() ? "" : ", ") + name;
      throw py::value_error("params['" + k + "']: unknown parameter of a robust rule (known: " +
                            known + ")");
    }
    it->second(v, k);
  }
  return o;
}

py::tuple robust_aggregate(const std::string& rule, py::list updates, py::object weights,
                           py::handle params, uint64_t seed) {
  if (updates.empty()) throw py::value_error("updates: empty");
  std::vector<ArrayRecord> recs;
  std::shared_ptr<const ArrayLayout> layout;
  bool named = false;
  for (size_t i = 0; i < updates.size(); ++i) {
    recs.push_back(record_from_python(updates[i], "updates[" + std::to_string(i) + "]", layout, &named));
    layout = recs.back().layout();
  }
  robust::Inputs in;
  for (const ArrayRecord& r : recs) in.vectors.push_back(r.flat());
  if (weights.is_none()) {
    in.weights.assign(recs.size(), 1.0);
  } else {
    in.weights = weights.cast<std::vector<double>>();
    if (in.weights.size() != recs.size()) {
      throw py::value_error("weights: " + std::to_string(in.weights.size()) + " for " +
                            std::to_string(recs.size()) + " updates");
    }
    for (size_t i = 0; i < in.weights.size(); ++i) {
      if (!(in.weights[i] > 0)) {
        throw py::value_error("weights[" + std::to_string(i) + "]: must be > 0");
      }
    }
  }
  in.seed = seed;
  std::unique_ptr<robust::Rule> r = check(robust::make_rule(rule_options(rule, params)));
  auto out = std::make_shared<ArrayRecord>(layout);
  robust::Outcome why;
  Status s;
  {
    py::gil_scoped_release release;
    s = r->aggregate(in, out->flat(), &why);
  }
  check(s);
  py::dict info;
  info["influence"] = why.influence;
  for (const auto& [k, v] : why.stats) info[py::str(k)] = v;
  return py::make_tuple(record_to_python(out, named), info);
}

}  // namespace

void bind_robust(py::module_& m) {
  m.def("robust_aggregate", &robust_aggregate, py::arg("rule"), py::arg("updates"),
        py::arg("weights") = py::none(), py::arg("params") = py::none(), py::arg("seed") = 0,
        "Applies a robust rule to updates (lists or dicts of arrays); returns (aggregate, info) "
        "with info['influence'][i] in [0, 1]: how much update i was used.");
  m.attr("robust_rules") = robust::rule_names();
}

}  // namespace cohort::python
