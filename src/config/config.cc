// The config loader: reads each section's keys with their types (reader.h), then lets the
// section's option struct check its own rules (validate()), and reports a failure with the
// file, the key, the value as written and the --set override that set it.
#include "cohort/config/config.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cohort/core/validate.h"
#include "config/reader.h"

namespace cohort {
namespace {

using config_detail::Context;
using config_detail::MapReader;
using config_detail::Node;
using config_detail::to_param;

constexpr std::array<std::string_view, 3> kDatasets = {"fashion-mnist", "synthetic", "text"};
constexpr std::array<std::string_view, 2> kReproducible = {"default", "strict"};
constexpr std::array<std::string_view, 5> kPartitions = {"iid", "dirichlet", "shards", "natural",
                                                         "file"};
constexpr std::array<std::string_view, 2> kOptimizers = {"sgd", "adamw"};
constexpr std::array<std::string_view, 5> kDistributions = {"constant", "normal", "exponential",
                                                            "uniform", "lognormal"};
constexpr std::array<std::string_view, 2> kAvailabilityDistributions = {"exponential", "constant"};

// Reports a failed validate() of a section the way the loader reports its own errors: the
// file, the key path, the value quoted as the user wrote it, and the override that set it.
// A distribution written as a bare number ("latency_ms: 0") is reported at its own key rather
// than at the ".mean" it stands for.
Status checked(const Status& s, const Node& root, const Context& ctx) {
  if (s.ok()) return s;
  auto [path, what] = split_field_error(s.message());
  if (path.empty()) return ctx.plain_error(s.message());
  const std::string kMean = ".mean";
  if (path.size() > kMean.size() &&
      path.compare(path.size() - kMean.size(), kMean.size(), kMean) == 0) {
    const std::string parent = path.substr(0, path.size() - kMean.size());
    const Node* p = config_detail::find_path(root, parent);
    if (p != nullptr && p->kind == Node::Kind::kScalar) path = parent;
  }
  const Node* n = config_detail::find_path(root, path);
  const std::string kGot = ", got ";
  const size_t got = what.rfind(kGot);
  if (n != nullptr && n->kind == Node::Kind::kScalar && got != std::string::npos &&
      what.find('(', got) == std::string::npos) {
    what = what.substr(0, got + kGot.size()) + n->text;
  }
  return ctx.error(path, what);
}

Status read_chain(const MapReader& r, std::string_view key, std::string* out);

Status read_data(const MapReader& top, DataConfig* d) {
  const MapReader r = top.section("data");
  COHORT_RETURN_IF_ERROR(
      r.open({"dataset", "path", "train_limit", "test_limit", "partition", "partition_file",
              "alpha", "shards_per_client", "min_size", "size_skew", "with_replacement",
              "examples_per_client", "holdout_fraction", "synthetic", "text"}));
  COHORT_RETURN_IF_ERROR(r.read_enum("dataset", &d->dataset, kDatasets));
  COHORT_RETURN_IF_ERROR(r.read("path", &d->path));
  COHORT_RETURN_IF_ERROR(r.read("train_limit", &d->train_limit));
  COHORT_RETURN_IF_ERROR(r.read("test_limit", &d->test_limit));
  COHORT_RETURN_IF_ERROR(r.read_enum("partition", &d->partition.kind, kPartitions));
  COHORT_RETURN_IF_ERROR(r.read("alpha", &d->partition.alpha));
  COHORT_RETURN_IF_ERROR(r.read("shards_per_client", &d->partition.shards_per_client));
  COHORT_RETURN_IF_ERROR(r.read("min_size", &d->partition.min_size));
  COHORT_RETURN_IF_ERROR(r.read("size_skew", &d->partition.size_skew));
  // `partition_file: null` (config.json without one) means none.
  if (const Node* f = r.get("partition_file"); f != nullptr && f->kind != Node::Kind::kNull) {
    COHORT_RETURN_IF_ERROR(r.read("partition_file", &d->partition.file));
  }
  COHORT_RETURN_IF_ERROR(r.read("with_replacement", &d->partition.with_replacement));
  COHORT_RETURN_IF_ERROR(r.read("examples_per_client", &d->partition.examples_per_client));
  COHORT_RETURN_IF_ERROR(r.read("holdout_fraction", &d->holdout_fraction));
  const MapReader s = r.section("synthetic");
  COHORT_RETURN_IF_ERROR(
      s.open({"num_examples", "test_examples", "dim", "classes", "separation", "noise"}));
  COHORT_RETURN_IF_ERROR(s.read("num_examples", &d->synthetic.num_examples));
  COHORT_RETURN_IF_ERROR(s.read("test_examples", &d->synthetic_test_examples));
  COHORT_RETURN_IF_ERROR(s.read("dim", &d->synthetic.dim));
  COHORT_RETURN_IF_ERROR(s.read("classes", &d->synthetic.num_classes));
  COHORT_RETURN_IF_ERROR(s.read("separation", &d->synthetic.separation));
  COHORT_RETURN_IF_ERROR(s.read("noise", &d->synthetic.noise));
  const MapReader t = r.section("text");
  COHORT_RETURN_IF_ERROR(t.open({"seq_len", "stride", "val_fraction", "min_chars"}));
  COHORT_RETURN_IF_ERROR(t.read("seq_len", &d->text.seq_len));
  COHORT_RETURN_IF_ERROR(t.read("stride", &d->text.stride));
  COHORT_RETURN_IF_ERROR(t.read("val_fraction", &d->text.val_fraction));
  COHORT_RETURN_IF_ERROR(t.read("min_chars", &d->text.min_chars));
  return checked(d->validate(), top.node(), top.ctx());
}

// A distribution is a mapping, or a bare number meaning constant. Keys omitted from the
// mapping keep their current (default) values.
Status read_distribution(const MapReader& parent, std::string_view key, sim::Distribution* d) {
  const Node* n = parent.get(key);
  if (n == nullptr) return Status();
  const std::string path = parent.child(key);
  const Context& ctx = parent.ctx();
  if (n->kind == Node::Kind::kScalar && n->plain &&
      config_detail::is_number(config_detail::classify(*n))) {
    COHORT_ASSIGN_OR_RETURN(double v, config_detail::to_number(ctx, *n, path));
    *d = sim::Distribution::constant(v);
    return Status();
  }
  if (n->kind != Node::Kind::kMap && n->kind != Node::Kind::kNull) {
    return ctx.error(path, "expected a mapping or a number, got " + config_detail::describe(*n));
  }
  const MapReader r(ctx, *n, path);
  COHORT_RETURN_IF_ERROR(
      r.open({"distribution", "mean", "std", "low", "high", "sigma", "min", "max"}));
  COHORT_RETURN_IF_ERROR(r.read_enum("distribution", &d->kind, kDistributions));
  COHORT_RETURN_IF_ERROR(r.read("mean", &d->mean));
  COHORT_RETURN_IF_ERROR(r.read("std", &d->std));
  COHORT_RETURN_IF_ERROR(r.read("low", &d->low));
  COHORT_RETURN_IF_ERROR(r.read("high", &d->high));
  COHORT_RETURN_IF_ERROR(r.read("sigma", &d->sigma));
  COHORT_RETURN_IF_ERROR(r.read("min", &d->min));
  return r.read("max", &d->max);
}

Status read_clients(const MapReader& top, sim::PopulationOptions* p) {
  const MapReader r = top.section("clients");
  COHORT_RETURN_IF_ERROR(r.open({"count", "speed", "up_mbps", "down_mbps", "latency_ms", "trace",
                                 "jitter", "dropout", "task_timeout_factor", "availability"}));
  // `trace: null` (what config.json holds without a trace) means no trace. The file itself is
  // read when the population is drawn, not here.
  if (const Node* t = r.get("trace")) {
    if (t->kind == Node::Kind::kNull) {
      p->trace.clear();
    } else {
      COHORT_RETURN_IF_ERROR(r.read("trace", &p->trace));
    }
  }
  // With a trace, count 0 (also an omitted count) means as many clients as the trace has rows.
  if (!p->trace.empty() && r.get("count") == nullptr) p->num_clients = 0;
  COHORT_RETURN_IF_ERROR(r.read("count", &p->num_clients));
  for (auto [key, dist] : {std::pair<const char*, sim::Distribution*>{"speed", &p->speed},
                           {"up_mbps", &p->up_mbps},
                           {"down_mbps", &p->down_mbps},
                           {"latency_ms", &p->latency_ms}}) {
    COHORT_RETURN_IF_ERROR(read_distribution(r, key, dist));
  }
  sim::ClientDynamics& dyn = p->dynamics;
  COHORT_RETURN_IF_ERROR(r.read("jitter", &dyn.jitter));
  COHORT_RETURN_IF_ERROR(r.read("dropout", &dyn.dropout));
  COHORT_RETURN_IF_ERROR(r.read("task_timeout_factor", &dyn.task_timeout_factor));
  const MapReader a = r.section("availability");
  COHORT_RETURN_IF_ERROR(a.open({"mean_online_s", "mean_offline_s", "distribution"}));
  COHORT_RETURN_IF_ERROR(a.read("mean_online_s", &dyn.availability.mean_online_s));
  COHORT_RETURN_IF_ERROR(a.read("mean_offline_s", &dyn.availability.mean_offline_s));
  COHORT_RETURN_IF_ERROR(
      a.read_enum("distribution", &dyn.availability.distribution, kAvailabilityDistributions));
  return checked(p->validate(), top.node(), top.ctx());
}

Status read_model(const MapReader& top, ModelConfig* m) {
  const MapReader r = top.section("model");
  COHORT_RETURN_IF_ERROR(r.open({"name", "hidden", "init"}));
  COHORT_RETURN_IF_ERROR(r.read_enum("name", &m->name, ModelConfig::kNames));
  COHORT_RETURN_IF_ERROR(r.read("init", &m->init));
  if (const Node* h = r.get("hidden")) {
    const std::string path = r.child("hidden");
    if (h->kind != Node::Kind::kSeq) {
      return r.error("hidden",
                     "expected a sequence of integers, got " + config_detail::describe(*h));
    }
    std::vector<int64_t> hidden;
    for (size_t i = 0; i < h->items.size(); ++i) {
      COHORT_ASSIGN_OR_RETURN(
          int64_t width,
          config_detail::to_int(r.ctx(), h->items[i], path + "[" + std::to_string(i) + "]"));
      hidden.push_back(width);
    }
    m->hidden = std::move(hidden);
  }
  return checked(m->validate(), top.node(), top.ctx());
}

Status read_training(const MapReader& top, TrainConfig* t) {
  const MapReader r = top.section("training");
  COHORT_RETURN_IF_ERROR(r.open({"optimizer", "lr", "momentum", "weight_decay", "batch_size",
                                 "local_epochs", "local_steps", "adam_beta1", "adam_beta2",
                                 "adam_eps"}));
  COHORT_RETURN_IF_ERROR(r.read_enum("optimizer", &t->optimizer, kOptimizers));
  COHORT_RETURN_IF_ERROR(r.read("lr", &t->lr));
  COHORT_RETURN_IF_ERROR(r.read("momentum", &t->momentum));
  COHORT_RETURN_IF_ERROR(r.read("weight_decay", &t->weight_decay));
  COHORT_RETURN_IF_ERROR(r.read("batch_size", &t->batch_size));
  COHORT_RETURN_IF_ERROR(r.read("local_epochs", &t->local_epochs));
  COHORT_RETURN_IF_ERROR(r.read("local_steps", &t->local_steps));
  COHORT_RETURN_IF_ERROR(r.read("adam_beta1", &t->adam_beta1));
  COHORT_RETURN_IF_ERROR(r.read("adam_beta2", &t->adam_beta2));
  COHORT_RETURN_IF_ERROR(r.read("adam_eps", &t->adam_eps));
  return checked(t->validate(), top.node(), top.ctx());
}

Status read_strategy(const MapReader& top, StrategyConfig* s) {
  if (top.get("strategy") == nullptr) return Status();
  const MapReader r = top.section("strategy");
  COHORT_RETURN_IF_ERROR(r.open({}));
  if (r.get("name") == nullptr) {
    return r.error("name", "required key is missing (the strategy to run, e.g. fedavg)");
  }
  COHORT_RETURN_IF_ERROR(r.read("name", &s->name));
  // Parameters are not checked here: the strategy registry knows each strategy's keys.
  ConfigRecord params;
  for (const auto& [key, value] : r.node().entries) {
    if (key == "name") continue;
    COHORT_ASSIGN_OR_RETURN(params[key], to_param(r.ctx(), value, r.child(key)));
  }
  s->params = std::move(params);
  return Status();
}

// A label names a directory of `cohort compare`'s output, so it must be one safe path
// component on every platform.
bool valid_label(const std::string& label) {
  if (label.empty() || label[0] == '.' || label[0] == '-') return false;
  for (char ch : label) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == '+';
    if (!ok) return false;
  }
  return true;
}

Status read_robust(const MapReader& parent, std::optional<RobustOptions>* out);
Status read_privacy(const MapReader& parent, runtime::PrivacyOptions* p);

Status read_strategies(const MapReader& top, const runtime::CompressionOptions& compression,
                       std::vector<StrategyConfig>* out) {
  const Node* list = top.get("strategies");
  if (list == nullptr) return Status();
  const Context& ctx = top.ctx();
  if (top.get("strategy") != nullptr) {
    return ctx.error("strategies",
                     "cannot be combined with a strategy: section; use "
                     "strategies: (a list, for cohort compare) or strategy: "
                     "(one strategy, for cohort simulate)");
  }
  if (list->kind != Node::Kind::kSeq) {
    return ctx.error("strategies", "expected a sequence of mappings (- name: fedavg ...), got " +
                                       config_detail::describe(*list));
  }
  if (list->items.empty()) return ctx.error("strategies", "must list at least one strategy");
  std::vector<StrategyConfig> result;
  for (size_t i = 0; i < list->items.size(); ++i) {
    const std::string path = "strategies[" + std::to_string(i) + "]";
    const Node& item = list->items[i];
    if (item.kind != Node::Kind::kMap) {
      return ctx.error(path, "expected a mapping (name: ... plus parameters), got " +
                                 config_detail::describe(item));
    }
    const MapReader r(ctx, item, path);
    if (r.get("name") == nullptr) {
      return r.error("name", "required key is missing (the strategy to run, e.g. fedavg)");
    }
    StrategyConfig s;
    COHORT_RETURN_IF_ERROR(r.read("name", &s.name));
    s.label = s.name;
    COHORT_RETURN_IF_ERROR(r.read("label", &s.label));
    if (!valid_label(s.label)) {
      return r.error(r.get("label") != nullptr ? "label" : "name",
                     "'" + s.label +
                         "' cannot be used as a label (a directory name): use "
                         "letters, digits, '.', '_', '-' or '+', not starting with '.' or '-'" +
                         (r.get("label") != nullptr ? "" : "; add a label: key"));
    }
    for (size_t j = 0; j < result.size(); ++j) {
      if (result[j].label != s.label) continue;
      const std::string other = "strategies[" + std::to_string(j) + "]";
      if (r.get("label") != nullptr) {
        return r.error("label", "'" + s.label + "' is already the label of " + other +
                                    "; labels must be unique");
      }
      return r.error("name", "'" + s.label + "' is already the label of " + other +
                                 " (a label defaults to the name); add a distinct label: "
                                 "key, e.g. label: " +
                                 s.label + "-2");
    }
    COHORT_RETURN_IF_ERROR(read_chain(r, "uplink", &s.uplink));
    COHORT_RETURN_IF_ERROR(read_chain(r, "downlink", &s.downlink));
    if (r.get("downlink_delta") != nullptr) {
      COHORT_RETURN_IF_ERROR(r.read("downlink_delta", &s.downlink_delta.emplace()));
    }
    if (!s.uplink.empty() || !s.downlink.empty() || s.downlink_delta) {
      runtime::CompressionOptions c = compression;  // the item's settings, the section's rest
      if (!s.uplink.empty()) c.uplink = s.uplink;
      if (!s.downlink.empty()) c.downlink = s.downlink;
      c.downlink_delta = s.downlink_delta.value_or(c.downlink_delta);
      if (Status v = c.validate(); !v.ok()) {  // "compression.KEY: why"
        const std::string& m = v.message();
        const size_t key = std::string_view("compression.").size();
        const size_t colon = m.find(": ");
        return r.error(m.substr(key, colon - key), m.substr(colon + 2));
      }
    }
    if (r.get("rounds") != nullptr) {
      COHORT_RETURN_IF_ERROR(r.read("rounds", &s.rounds));
      if (s.rounds < 1) {
        return r.error("rounds", "must be >= 1, got " + std::to_string(s.rounds));
      }
    }
    if (r.get("robust") != nullptr) {
      std::optional<RobustOptions> robust;
      COHORT_RETURN_IF_ERROR(read_robust(r, &robust));
      s.robust = robust;
      s.robust_set = true;
    }
    if (r.get("privacy") != nullptr) {
      COHORT_RETURN_IF_ERROR(read_privacy(r, &s.privacy));
      s.privacy_set = true;
    }
    for (const auto& [key, value] : item.entries) {
      if (key == "name" || key == "label" || key == "uplink" || key == "downlink" ||
          key == "downlink_delta" || key == "robust" || key == "privacy" || key == "rounds") {
        continue;
      }
      COHORT_ASSIGN_OR_RETURN(s.params[key], to_param(ctx, value, r.child(key)));
    }
    result.push_back(std::move(s));
  }
  *out = std::move(result);
  return Status();
}

Status read_run(const MapReader& top, RunConfig* run, ConfigUse use) {
  const MapReader r = top.section("run");
  COHORT_RETURN_IF_ERROR(r.open({"rounds", "max_virtual_time_s", "eval_every", "eval_interval_s",
                                 "target_accuracy", "seed", "threads", "reproducible"}));
  COHORT_RETURN_IF_ERROR(r.read("rounds", &run->rounds));
  COHORT_RETURN_IF_ERROR(r.read("max_virtual_time_s", &run->max_virtual_time_s));
  COHORT_RETURN_IF_ERROR(r.read("eval_every", &run->eval_every));
  COHORT_RETURN_IF_ERROR(r.read("eval_interval_s", &run->eval_interval_s));
  COHORT_RETURN_IF_ERROR(r.read("target_accuracy", &run->target_accuracy));
  COHORT_RETURN_IF_ERROR(r.read("seed", &run->seed));
  COHORT_RETURN_IF_ERROR(r.read("threads", &run->threads));
  COHORT_RETURN_IF_ERROR(r.read_enum("reproducible", &run->reproducible, kReproducible));
  COHORT_RETURN_IF_ERROR(checked(run->validate(), top.node(), top.ctx()));
  // A deployment may end on its wall-clock budget (deploy.max_wall_s) instead.
  if (use == ConfigUse::kDeployment) return Status();
  return checked(run->validate_budget(), top.node(), top.ctx());
}

Status read_admission(const MapReader& top, AdmissionOptions* a) {
  const MapReader r = top.section("admission");
  COHORT_RETURN_IF_ERROR(r.open({"max_examples_factor", "max_examples", "norm_policy",
                                 "norm_factor", "norm_window", "norm_warmup", "warmup_bound", "max_norm",
                                 "max_steps_factor", "max_metrics", "max_metric_key_bytes",
                                 "max_abs_weight", "max_model_growth"}));
  COHORT_RETURN_IF_ERROR(r.read("max_examples_factor", &a->max_examples_factor));
  COHORT_RETURN_IF_ERROR(r.read("max_examples", &a->max_examples));
  COHORT_RETURN_IF_ERROR(r.read("norm_policy", &a->norm_policy));
  COHORT_RETURN_IF_ERROR(r.read("norm_factor", &a->norm_factor));
  COHORT_RETURN_IF_ERROR(r.read("norm_window", &a->norm_window));
  COHORT_RETURN_IF_ERROR(r.read("norm_warmup", &a->norm_warmup));
  COHORT_RETURN_IF_ERROR(r.read("warmup_bound", &a->warmup_bound));
  COHORT_RETURN_IF_ERROR(r.read("max_norm", &a->max_norm));
  COHORT_RETURN_IF_ERROR(r.read("max_steps_factor", &a->max_steps_factor));
  COHORT_RETURN_IF_ERROR(r.read("max_metrics", &a->max_metrics));
  COHORT_RETURN_IF_ERROR(r.read("max_metric_key_bytes", &a->max_metric_key_bytes));
  COHORT_RETURN_IF_ERROR(r.read("max_abs_weight", &a->max_abs_weight));
  COHORT_RETURN_IF_ERROR(r.read("max_model_growth", &a->max_model_growth));
  return checked(a->validate(), top.node(), top.ctx());
}

// A chain is a string ("topk:0.01 -> int8 -> zstd") or a list of stages.
Status read_chain(const MapReader& r, std::string_view key, std::string* out) {
  const Node* n = r.get(key);
  if (n == nullptr) return Status();
  if (n->kind == Node::Kind::kSeq) {
    std::string joined;
    for (size_t i = 0; i < n->items.size(); ++i) {
      COHORT_ASSIGN_OR_RETURN(std::string stage,
                              to_string_value(r.ctx(), n->items[i],
                                              r.child(key) + "[" + std::to_string(i) + "]"));
      joined += (i ? " -> " : "") + stage;
    }
    if (joined.empty()) return r.error(key, "an empty list (write none for no compression)");
    *out = joined;
    return Status();
  }
  return r.read(key, out);
}

Status read_compression(const MapReader& top, runtime::CompressionOptions* c) {
  const MapReader r = top.section("compression");
  COHORT_RETURN_IF_ERROR(r.open({"uplink", "downlink", "downlink_delta", "downlink_history"}));
  COHORT_RETURN_IF_ERROR(read_chain(r, "uplink", &c->uplink));
  COHORT_RETURN_IF_ERROR(read_chain(r, "downlink", &c->downlink));
  COHORT_RETURN_IF_ERROR(r.read("downlink_delta", &c->downlink_delta));
  COHORT_RETURN_IF_ERROR(r.read("downlink_history", &c->downlink_history));
  return checked(c->validate(), top.node(), top.ctx());
}

// robust: (top level, or a strategies: item's). A mapping of RuleOptions / RobustOptions
// keys, or the string none (a strategies: item turning the config's section off).
Status read_robust(const MapReader& parent, std::optional<RobustOptions>* out) {
  const Node* n = parent.get("robust");
  if (n == nullptr) return Status();
  if (n->kind == Node::Kind::kScalar && n->text == "none") {
    out->reset();
    return Status();
  }
  const MapReader r = parent.section("robust");
  COHORT_RETURN_IF_ERROR(r.open({"rule", "f", "m", "beta", "tau", "iterations", "max_iterations",
                                 "tolerance", "nu", "max_norm", "flag_r", "flag_lambda",
                                 "flag_iterations", "bucketing", "client_momentum", "trust_rate",
                                 "trust_threshold"}));
  RobustOptions o;
  robust::RuleOptions& q = o.rule;
  COHORT_RETURN_IF_ERROR(r.read("rule", &q.rule));
  COHORT_RETURN_IF_ERROR(r.read("f", &q.f));
  COHORT_RETURN_IF_ERROR(r.read("m", &q.m));
  COHORT_RETURN_IF_ERROR(r.read("beta", &q.beta));
  COHORT_RETURN_IF_ERROR(r.read("tau", &q.tau));
  COHORT_RETURN_IF_ERROR(r.read("iterations", &q.iterations));
  COHORT_RETURN_IF_ERROR(r.read("max_iterations", &q.max_iterations));
  COHORT_RETURN_IF_ERROR(r.read("tolerance", &q.tolerance));
  COHORT_RETURN_IF_ERROR(r.read("nu", &q.nu));
  COHORT_RETURN_IF_ERROR(r.read("max_norm", &q.max_norm));
  COHORT_RETURN_IF_ERROR(r.read("flag_r", &q.flag_r));
  COHORT_RETURN_IF_ERROR(r.read("flag_lambda", &q.flag_lambda));
  COHORT_RETURN_IF_ERROR(r.read("flag_iterations", &q.flag_iterations));
  COHORT_RETURN_IF_ERROR(r.read("bucketing", &q.bucketing));
  COHORT_RETURN_IF_ERROR(r.read("client_momentum", &o.client_momentum));
  COHORT_RETURN_IF_ERROR(r.read("trust_rate", &o.trust_rate));
  COHORT_RETURN_IF_ERROR(r.read("trust_threshold", &o.trust_threshold));
  // Errors name "robust.<key>": checked() finds the key under the section's parent.
  auto where = [&](const Status& s) -> Status {
    if (s.ok()) return s;
    const std::string& m = s.message();
    const size_t colon = m.find(": ");
    if (m.rfind("robust.", 0) != 0 || colon == std::string::npos) return r.error("rule", m);
    return r.error(m.substr(7, colon - 7), m.substr(colon + 2));
  };
  COHORT_RETURN_IF_ERROR(where(o.validate()));
  COHORT_RETURN_IF_ERROR(where(robust::make_rule(q).status()));
  *out = std::move(o);
  return Status();
}

Status read_contribution(const MapReader& top, runtime::ContributionSettings* c,
                         int64_t* validation_examples) {
  const MapReader r = top.section("contribution");
  COHORT_RETURN_IF_ERROR(
      r.open({"method", "evaluations", "truncation", "utility", "validation_examples"}));
  COHORT_RETURN_IF_ERROR(r.read("method", &c->options.method));
  COHORT_RETURN_IF_ERROR(r.read("evaluations", &c->options.evaluations));
  COHORT_RETURN_IF_ERROR(r.read("truncation", &c->options.truncation));
  COHORT_RETURN_IF_ERROR(r.read("utility", &c->utility));
  COHORT_RETURN_IF_ERROR(r.read("validation_examples", validation_examples));
  if (*validation_examples < 1) {
    return r.error("validation_examples",
                   "must be >= 1, got " + std::to_string(*validation_examples));
  }
  return checked(c->validate(), top.node(), top.ctx());
}

Status read_attack(const MapReader& top, attack::AttackOptions* a) {
  const MapReader r = top.section("attack");
  COHORT_RETURN_IF_ERROR(r.open({"kind", "fraction", "clients", "start", "scale", "sigma", "z",
                                 "epsilon", "free_rider"}));
  COHORT_RETURN_IF_ERROR(r.read("kind", &a->kind));
  COHORT_RETURN_IF_ERROR(r.read("fraction", &a->fraction));
  if (const Node* list = r.get("clients")) {
    const std::string path = r.child("clients");
    if (list->kind != Node::Kind::kSeq) {
      return r.error("clients", "expected a sequence of client ids, got " +
                                    config_detail::describe(*list));
    }
    for (size_t i = 0; i < list->items.size(); ++i) {
      COHORT_ASSIGN_OR_RETURN(
          int64_t id,
          config_detail::to_int(r.ctx(), list->items[i], path + "[" + std::to_string(i) + "]"));
      a->clients.push_back(static_cast<ClientId>(id));
    }
  }
  COHORT_RETURN_IF_ERROR(r.read("start", &a->start));
  COHORT_RETURN_IF_ERROR(r.read("scale", &a->scale));
  COHORT_RETURN_IF_ERROR(r.read("sigma", &a->sigma));
  COHORT_RETURN_IF_ERROR(r.read("z", &a->z));
  COHORT_RETURN_IF_ERROR(r.read("epsilon", &a->epsilon));
  COHORT_RETURN_IF_ERROR(r.read("free_rider", &a->free_rider));
  return checked(attack::check_options(*a), top.node(), top.ctx());
}

Status read_privacy(const MapReader& top, runtime::PrivacyOptions* p) {
  if (const Node* n = top.get("privacy"); n != nullptr && n->kind == Node::Kind::kScalar &&
                                          n->text == "none") {
    *p = runtime::PrivacyOptions{};
    return Status();
  }
  const MapReader r = top.section("privacy");
  COHORT_RETURN_IF_ERROR(r.open({"dp", "secagg"}));
  const MapReader dp = r.section("dp");
  const MapReader sa = r.section("secagg");
  COHORT_RETURN_IF_ERROR(dp.open({"noise_multiplier", "clip_norm", "delta", "target_epsilon",
                                  "side", "adaptive_clipping", "target_quantile",
                                  "clip_learning_rate", "clipped_count_stddev", "conversion"}));
  privacy::DpOptions& d = p->dp;
  COHORT_RETURN_IF_ERROR(dp.read("noise_multiplier", &d.noise_multiplier));
  COHORT_RETURN_IF_ERROR(dp.read("clip_norm", &d.clip_norm));
  COHORT_RETURN_IF_ERROR(dp.read("delta", &d.delta));
  if (dp.get("target_epsilon") != nullptr) {
    double eps = 0;
    COHORT_RETURN_IF_ERROR(dp.read("target_epsilon", &eps));
    d.target_epsilon = eps;
  }
  COHORT_RETURN_IF_ERROR(dp.read("side", &d.side));
  COHORT_RETURN_IF_ERROR(dp.read("adaptive_clipping", &d.adaptive_clipping));
  COHORT_RETURN_IF_ERROR(dp.read("target_quantile", &d.target_quantile));
  COHORT_RETURN_IF_ERROR(dp.read("clip_learning_rate", &d.clip_learning_rate));
  COHORT_RETURN_IF_ERROR(dp.read("clipped_count_stddev", &d.clipped_count_stddev));
  COHORT_RETURN_IF_ERROR(dp.read("conversion", &d.conversion));
  // Errors name privacy.dp.<key> / privacy.secagg.<key>; the section readers prefix the path
  // (a strategies: item's included).
  auto where = [&](const Status& s) -> Status {
    if (s.ok()) return s;
    const std::string& m = s.message();
    const size_t colon = m.find(": ");
    for (const auto& [prefix, section] : {std::pair{std::string("privacy.dp."), &dp},
                                          std::pair{std::string("privacy.secagg."), &sa}}) {
      if (m.rfind(prefix, 0) == 0 && colon != std::string::npos) {
        return section->error(m.substr(prefix.size(), colon - prefix.size()),
                              m.substr(colon + 2));
      }
    }
    return checked(s, top.node(), top.ctx());
  };
  if (r.get("dp") != nullptr) {
    COHORT_RETURN_IF_ERROR(where(d.validate()));
    if (!d.enabled()) {
      return dp.error("noise_multiplier",
                      dp.get("noise_multiplier") != nullptr
                          ? "0 turns the noise off: set noise_multiplier > 0, or target_epsilon "
                            "to derive it, or remove privacy.dp"
                          : "required: set noise_multiplier > 0, or target_epsilon to derive it");
    }
  }
  COHORT_RETURN_IF_ERROR(sa.open({"enabled", "threshold", "neighbours", "input_bits", "range",
                                  "bits", "dropout_before_masking", "dropout_after_masking",
                                  "stage_timeout_s"}));
  runtime::SecAggOptions& s = p->secagg;
  s.enabled = sa.get("enabled") == nullptr ? r.get("secagg") != nullptr : s.enabled;
  COHORT_RETURN_IF_ERROR(sa.read("enabled", &s.enabled));
  COHORT_RETURN_IF_ERROR(sa.read("threshold", &s.threshold));
  int64_t neighbours = s.neighbours, input_bits = s.input_bits, bits = s.bits;
  COHORT_RETURN_IF_ERROR(sa.read("neighbours", &neighbours));
  COHORT_RETURN_IF_ERROR(sa.read("input_bits", &input_bits));
  COHORT_RETURN_IF_ERROR(sa.read("bits", &bits));
  s.neighbours = static_cast<int>(neighbours);
  s.input_bits = static_cast<int>(input_bits);
  s.bits = static_cast<int>(bits);
  COHORT_RETURN_IF_ERROR(sa.read("range", &s.range));
  COHORT_RETURN_IF_ERROR(sa.read("dropout_before_masking", &s.dropout_before_masking));
  COHORT_RETURN_IF_ERROR(sa.read("dropout_after_masking", &s.dropout_after_masking));
  COHORT_RETURN_IF_ERROR(sa.read("stage_timeout_s", &s.stage_timeout_s));
  return where(p->validate());
}

Status read_deploy(const MapReader& r, DeployConfig* d) {
  COHORT_RETURN_IF_ERROR(r.open({"listen", "tokens", "cert", "key", "insecure", "max_wall_s",
                                 "checkpoint_dir", "keep_checkpoints", "client_timeout_s",
                                 "heartbeat_interval_s", "task_timeout_s", "max_concurrent_pushes",
                                 "chunk_bytes", "pull_wait_s", "done_grace_s", "server_eval",
                                 "stream_idle_timeout_s", "stream_max_s", "stream_min_bytes_per_s",
                                 "stream_grace_s", "max_streams_per_client", "max_calls_per_s",
                                 "max_upload_bytes", "spool_dir", "spool_memory_bytes"}));
  COHORT_RETURN_IF_ERROR(r.read("listen", &d->listen_address));
  COHORT_RETURN_IF_ERROR(r.read("tokens", &d->tokens_file));
  COHORT_RETURN_IF_ERROR(r.read("cert", &d->tls_cert_file));
  COHORT_RETURN_IF_ERROR(r.read("key", &d->tls_key_file));
  COHORT_RETURN_IF_ERROR(r.read("insecure", &d->insecure));
  COHORT_RETURN_IF_ERROR(r.read("max_wall_s", &d->max_wall_s));
  COHORT_RETURN_IF_ERROR(r.read("checkpoint_dir", &d->checkpoint_dir));
  COHORT_RETURN_IF_ERROR(r.read("keep_checkpoints", &d->keep_checkpoints));
  COHORT_RETURN_IF_ERROR(r.read("client_timeout_s", &d->client_timeout_s));
  COHORT_RETURN_IF_ERROR(r.read("heartbeat_interval_s", &d->heartbeat_interval_s));
  COHORT_RETURN_IF_ERROR(r.read("task_timeout_s", &d->task_timeout_s));
  COHORT_RETURN_IF_ERROR(r.read("max_concurrent_pushes", &d->max_concurrent_pushes));
  COHORT_RETURN_IF_ERROR(r.read("chunk_bytes", &d->chunk_bytes));
  COHORT_RETURN_IF_ERROR(r.read("pull_wait_s", &d->pull_wait_s));
  COHORT_RETURN_IF_ERROR(r.read("done_grace_s", &d->done_grace_s));
  COHORT_RETURN_IF_ERROR(r.read("server_eval", &d->server_eval));
  COHORT_RETURN_IF_ERROR(r.read("stream_idle_timeout_s", &d->stream_idle_timeout_s));
  COHORT_RETURN_IF_ERROR(r.read("stream_max_s", &d->stream_max_s));
  COHORT_RETURN_IF_ERROR(r.read("stream_min_bytes_per_s", &d->stream_min_bytes_per_s));
  COHORT_RETURN_IF_ERROR(r.read("stream_grace_s", &d->stream_grace_s));
  COHORT_RETURN_IF_ERROR(r.read("max_streams_per_client", &d->max_streams_per_client));
  COHORT_RETURN_IF_ERROR(r.read("max_calls_per_s", &d->max_calls_per_s));
  COHORT_RETURN_IF_ERROR(r.read("spool_dir", &d->spool_dir));
  COHORT_RETURN_IF_ERROR(r.read("spool_memory_bytes", &d->spool_memory_bytes));
  return r.read("max_upload_bytes", &d->max_upload_bytes);
}

Result<SimulationConfig> build_config(const Node& root, const Context& ctx, ConfigUse use) {
  SimulationConfig c;
  const MapReader top(ctx, root, "");
  COHORT_RETURN_IF_ERROR(top.open(
      {"data", "clients", "model", "models", "training", "strategy", "strategies", "run", "admission",
       "compression", "robust", "contribution", "attack", "privacy"}));
  COHORT_RETURN_IF_ERROR(read_data(top, &c.data));
  COHORT_RETURN_IF_ERROR(read_clients(top, &c.clients));
  COHORT_RETURN_IF_ERROR(config_detail::read_models(top, &c.models));
  COHORT_RETURN_IF_ERROR(read_model(top, &c.model));
  COHORT_RETURN_IF_ERROR(read_training(top, &c.training));
  // Compression before the list (items take its settings beside their own chains); the list
  // before strategy: with both keys given, that conflict is the error to report.
  COHORT_RETURN_IF_ERROR(read_compression(top, &c.compression));
  COHORT_RETURN_IF_ERROR(read_strategies(top, c.compression, &c.strategies));
  COHORT_RETURN_IF_ERROR(read_strategy(top, &c.strategy));
  COHORT_RETURN_IF_ERROR(read_run(top, &c.run, use));
  COHORT_RETURN_IF_ERROR(read_admission(top, &c.admission));
  COHORT_RETURN_IF_ERROR(read_robust(top, &c.robust));
  COHORT_RETURN_IF_ERROR(
      read_contribution(top, &c.contribution, &c.contribution_validation_examples));
  COHORT_RETURN_IF_ERROR(read_attack(top, &c.attack));
  COHORT_RETURN_IF_ERROR(read_privacy(top, &c.privacy));
  c.source = ctx.source();
  return c;
}

// The document with the overrides applied, and its error context.
Result<std::pair<Node, Context>> parse_document(const std::string& yaml_text,
                                                const std::string& source,
                                                const std::vector<std::string>& overrides) {
  Context ctx(source);
  COHORT_ASSIGN_OR_RETURN(Node root, config_detail::parse_yaml(yaml_text, "", "", ctx));
  if (root.kind != Node::Kind::kNull && root.kind != Node::Kind::kMap) {
    return ctx.plain_error("expected a mapping at the top level, got " +
                           config_detail::describe(root));
  }
  for (const std::string& ov : overrides) {
    COHORT_RETURN_IF_ERROR(config_detail::apply_override(ov, &root, &ctx));
  }
  return std::make_pair(std::move(root), std::move(ctx));
}

Result<std::string> read_config_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    return Status::not_found("cannot read config file '" + path + "': " + std::strerror(errno));
  }
  std::string text;
  char buf[1 << 14];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get())) {
    // fopen succeeds on a directory on Linux; the read then fails with EISDIR.
    return Status::not_found("cannot read config file '" + path + "': " + std::strerror(errno));
  }
  return text;
}

}  // namespace

Result<SimulationConfig> parse_simulation_config(const std::string& yaml_text,
                                                 const std::string& source,
                                                 const std::vector<std::string>& overrides,
                                                 ConfigUse use) {
  COHORT_ASSIGN_OR_RETURN(auto doc, parse_document(yaml_text, source, overrides));
  return build_config(doc.first, doc.second, use);
}

Result<SimulationConfig> load_simulation_config(const std::string& path,
                                                const std::vector<std::string>& overrides,
                                                ConfigUse use) {
  COHORT_ASSIGN_OR_RETURN(std::string text, read_config_file(path));
  return parse_simulation_config(text, path, overrides, use);
}

Result<DeployConfig> parse_deploy_config(const std::string& yaml_text, const std::string& source,
                                         const std::vector<std::string>& overrides) {
  COHORT_ASSIGN_OR_RETURN(auto doc, parse_document(yaml_text, source, overrides));
  DeployConfig d;
  COHORT_RETURN_IF_ERROR(read_deploy(MapReader(doc.second, doc.first, ""), &d));
  return d;
}

Result<DeployConfig> load_deploy_config(const std::string& path,
                                        const std::vector<std::string>& overrides) {
  COHORT_ASSIGN_OR_RETURN(std::string text, read_config_file(path));
  return parse_deploy_config(text, path, overrides);
}

}  // namespace cohort
