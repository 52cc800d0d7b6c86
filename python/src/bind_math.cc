// Pure math on Python arrays with Cohort's own code: a strategy's server rounds on updates
// given by hand (StrategyRound, through the public strategy harness), the weighted average
// FedAvg computes (aggregate), and the codec chains (Codec). Results equal the C++ ones bit
// for bit because they are the C++ ones.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "arrays.h"
#include "cohort/codec/codec.h"
#include "cohort/core/ops.h"
#include "cohort/strategy/harness.h"
#include "cohort/strategy/registry.h"

namespace cohort::python {

namespace {

// A strategy hosted by the harness, one client per entry of `examples`, stepped one whole
// round at a time by the caller.
class StrategyRound {
 public:
  StrategyRound(const std::string& name, py::handle model, std::vector<int64_t> examples,
                py::handle params, uint64_t seed)
      : host_(seed), examples_(std::move(examples)) {
    if (examples_.empty()) throw py::value_error("clients: give at least one client's example count");
    for (size_t i = 0; i < examples_.size(); ++i) {
      if (examples_[i] <= 0) {
        throw py::value_error("clients[" + std::to_string(i) + "]: example count must be > 0, got " +
                              std::to_string(examples_[i]));
      }
      host_.add_client(static_cast<ClientId>(i), examples_[i]);
    }
    ArrayRecord initial = record_from_python(model, "model", nullptr, &named_);
    layout_ = initial.layout();
    strategy_ = check(make_strategy(name, config_from_python(params, "params")));
    check(strategy_->check_population(examples_.size()));
    check(strategy_->start(&host_, std::move(initial)));
  }

  // One round: every client trains from the current model and returns `results[i]` =
  // (parameters, num_examples) or just parameters (its registered example count). Returns the
  // committed model.
  py::object round(py::list results) {
    if (results.size() != examples_.size()) {
      throw py::value_error("round(): " + std::to_string(results.size()) + " results for " +
                            std::to_string(examples_.size()) + " clients");
    }
    // Every result is checked before the round opens: a bad one changes nothing.
    std::shared_ptr<const ArrayRecord> start = strategy_->global_model();
    std::vector<ArrayRecord> deltas;
    std::vector<int64_t> counts;
    for (size_t i = 0; i < examples_.size(); ++i) {
      py::handle r = results[i];
      py::handle p = r;
      int64_t n = examples_[i];
      if (py::isinstance<py::tuple>(r) && py::len(r) == 2) {
        p = r.cast<py::tuple>()[0];
        n = r.cast<py::tuple>()[1].cast<int64_t>();
        if (n <= 0) {
          throw py::value_error("results[" + std::to_string(i) + "]: num_examples must be > 0, got " +
                                std::to_string(n));
        }
      }
      bool named = false;
      ArrayRecord end = record_from_python(p, "results[" + std::to_string(i) + "]", layout_, &named);
      ops::sub(start->flat(), end.flat(), end.flat());  // delta = start - end
      deltas.push_back(std::move(end));
      counts.push_back(n);
    }
    std::vector<ClientId> all(examples_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<ClientId>(i);
    std::vector<Task> tasks = harness::open_round(host_, *strategy_, all);
    if (tasks.size() != all.size()) {
      // Give back what was dispatched so the next call starts clean.
      for (const Task& t : tasks) strategy_->on_task_lost(t.client, t.version);
      throw py::value_error(strategy_->name() + " dispatched " + std::to_string(tasks.size()) +
                            " tasks for " + std::to_string(all.size()) +
                            " idle clients: round() needs every client in the round (fraction 1)");
    }
    const size_t commits = host_.commits.size();
    std::vector<Update> updates;
    for (const Task& t : tasks) {
      const auto i = static_cast<size_t>(t.client);
      updates.push_back(harness::update_with_delta(t, deltas[i].flat(), counts[i]));
    }
    // Delivered without making the clients idle again, so that no next round opens (and
    // counts) before the caller's next round().
    for (size_t i = 0; i < updates.size(); ++i) {
      Status s = strategy_->on_update(std::move(updates[i]));
      if (!s.ok()) {
        for (size_t j = i + 1; j < tasks.size(); ++j) strategy_->on_task_lost(tasks[j].client, tasks[j].version);
        raise(s.with_context("results[" + std::to_string(tasks[i].client) + "]"));
      }
    }
    if (host_.commits.size() == commits) {
      throw std::runtime_error(strategy_->name() + " did not commit after a full round");
    }
    return model();
  }

  py::object model() const { return record_to_python(strategy_->global_model(), named_); }
  int64_t version() const { return strategy_->version(); }
  std::string name() const { return strategy_->name(); }

 private:
  harness::ManualHost host_;
  std::vector<int64_t> examples_;
  std::unique_ptr<Strategy> strategy_;
  std::shared_ptr<const ArrayLayout> layout_;
  bool named_ = false;
};

}  // namespace

void bind_math(py::module_& m) {
  py::class_<StrategyRound>(m, "StrategyRound",
                            "A registered strategy stepped one round at a time on results given "
                            "by hand (the server side of FedAvg, FedAdam, ... without a runtime).")
      .def(py::init<const std::string&, py::handle, std::vector<int64_t>, py::handle, uint64_t>(),
           py::arg("strategy"), py::arg("model"), py::arg("clients"),
           py::arg("params") = py::none(), py::arg("seed") = 1)
      .def("round", &StrategyRound::round, py::arg("results"))
      .def_property_readonly("model", &StrategyRound::model)
      .def_property_readonly("version", &StrategyRound::version)
      .def_property_readonly("name", &StrategyRound::name);

  py::class_<codec::Chain, std::shared_ptr<codec::Chain>>(m, "Codec",
                                                         "A codec chain, e.g. 'topk:0.01 -> int8 -> zstd'.")
      .def(py::init([](const std::string& spec) {
             auto c = check(codec::Chain::parse(spec));
             return std::const_pointer_cast<codec::Chain>(c);
           }),
           py::arg("spec"))
      .def_property_readonly("spec", &codec::Chain::spec)
      .def_property_readonly("lossless", &codec::Chain::lossless)
      .def(
          "encode",
          [](const codec::Chain& c, py::handle params, uint64_t seed) {
            bool named = false;
            ArrayRecord rec = record_from_python(params, "encode()", nullptr, &named);
            const std::vector<int64_t> offsets = codec::segment_offsets(*rec.layout());
            Result<std::string> payload = Status::internal("not encoded");
            {
              py::gil_scoped_release release;
              payload = c.encode(rec.flat(), offsets, seed);
            }
            return py::bytes(check(std::move(payload)));
          },
          py::arg("params"), py::arg("seed") = 0)
      .def(
          "decode",
          [](const codec::Chain& c, py::bytes payload, py::handle like) {
            bool named = false;
            ArrayRecord shape = record_from_python(like, "decode(like=...)", nullptr, &named);
            auto out = std::make_shared<ArrayRecord>(shape.layout());
            const std::vector<int64_t> offsets = codec::segment_offsets(*out->layout());
            const std::string_view bytes = payload;  // valid while `payload` lives
            Status s;
            {
              py::gil_scoped_release release;
              s = c.decode(bytes, offsets, out->flat());
            }
            check(s);
            return record_to_python(std::move(out), named);
          },
          py::arg("payload"), py::arg("like"));
}

}  // namespace cohort::python
