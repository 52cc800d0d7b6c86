#include "cohort/strategy/registry.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "cohort/strategy/async_local_sgd.h"
#include "cohort/strategy/fedadagrad.h"
#include "cohort/strategy/fedadam.h"
#include "cohort/strategy/fedasync.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/diloco.h"
#include "cohort/strategy/eager_diloco.h"
#include "cohort/strategy/streaming_diloco.h"
#include "cohort/strategy/fedavgm.h"
#include "cohort/strategy/fedast.h"
#include "cohort/strategy/fedbuff.h"
#include "cohort/strategy/fedcompass.h"
#include "cohort/strategy/fednova.h"
#include "cohort/strategy/fedprox.h"
#include "cohort/strategy/fedyogi.h"
#include "cohort/strategy/scaffold.h"

namespace cohort {

namespace {

using Maker = Result<std::unique_ptr<Strategy>> (*)(StrategyParams&);

// Every strategy Cohort ships, by the name used in configs and metrics.
const std::map<std::string, Maker>& registry() {
  static const std::map<std::string, Maker> kRegistry = {
      {"async_local_sgd", &AsyncLocalSgd::create},
      {"ddp", &DiLoCo::create_ddp},
      {"diloco", &DiLoCo::create},
      {"eager_diloco", &EagerDiLoCo::create},
      {"fedadagrad", &FedAdagrad::create},
      {"fedadam", &FedAdam::create},
      {"fedasync", &FedAsync::create},
      {"fedavg", &FedAvg::create},
      {"fedavgm", &FedAvgM::create},
      {"fedast", &FedAst::create},
      {"fedbuff", &FedBuff::create},
      {"fedcompass", &FedCompass::create},
      {"fednova", &FedNova::create},
      {"fedprox", &FedProx::create},
      {"fedyogi", &FedYogi::create},
      {"scaffold", &Scaffold::create},
      {"streaming_diloco", &StreamingDiLoCo::create},
  };
  return kRegistry;
}

std::string describe(const Scalar& v) {
  if (auto* s = std::get_if<std::string>(&v)) return "'" + *s + "'";
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  return std::to_string(std::get<double>(v));
}

}  // namespace

StrategyParams::StrategyParams(std::string strategy, const ConfigRecord& params, std::string path)
    : strategy_(std::move(strategy)), params_(params), path_(std::move(path)) {}

const Scalar* StrategyParams::find(const std::string& key) {
  known_.insert(key);
  auto it = params_.find(key);
  return it == params_.end() ? nullptr : &it->second;
}

void StrategyParams::fail(Status s) {
  if (error_.ok()) error_ = std::move(s);
}

double StrategyParams::number(const std::string& key, double fallback) {
  const Scalar* v = find(key);
  if (v == nullptr) return fallback;
  if (auto* d = std::get_if<double>(v)) return *d;
  if (auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  fail(Status::invalid_argument(path_ + "." + key + ": expected a number, got " + describe(*v)));
  return fallback;
}

int64_t StrategyParams::integer(const std::string& key, int64_t fallback) {
  const Scalar* v = find(key);
  if (v == nullptr) return fallback;
  if (auto* i = std::get_if<int64_t>(v)) return *i;
  fail(Status::invalid_argument(path_ + "." + key + ": expected an integer, got " + describe(*v)));
  return fallback;
}

bool StrategyParams::boolean(const std::string& key, bool fallback) {
  const Scalar* v = find(key);
  if (v == nullptr) return fallback;
  if (auto* b = std::get_if<bool>(v)) return *b;
  fail(Status::invalid_argument(path_ + "." + key + ": expected true or false, got " +
                                describe(*v)));
  return fallback;
}

std::string StrategyParams::string(const std::string& key, const std::string& fallback) {
  const Scalar* v = find(key);
  if (v == nullptr) return fallback;
  if (auto* s = std::get_if<std::string>(v)) return *s;
  fail(Status::invalid_argument(path_ + "." + key + ": expected a string, got " + describe(*v)));
  return fallback;
}

void StrategyParams::check(bool ok, const std::string& key, const std::string& what, double value) {
  if (ok) return;
  char got[64];
  std::snprintf(got, sizeof(got), "%.10g", value);
  fail(Status::invalid_argument(path_ + "." + key + ": " + what + ", got " + std::string(got)));
}

void StrategyParams::fail_with(const std::string& key, const std::string& message) {
  fail(Status::invalid_argument(path_ + "." + key + ": " + message));
}

Status StrategyParams::finish() const {
  if (!error_.ok()) return error_;
  for (const auto& [key, value] : params_) {
    if (known_.count(key) == 0) {
      std::string known;
      for (const auto& k : known_) known += (known.empty() ? "" : ", ") + k;
      return Status::invalid_argument(path_ + "." + key + ": unknown parameter for " + strategy_ +
                                      " (known: " + known + ")");
    }
  }
  return Status();
}

RoundOptions read_round_options(StrategyParams& p) {
  RoundOptions o;
  o.fraction = p.number("fraction", o.fraction);
  p.check(o.fraction > 0 && o.fraction <= 1, "fraction", "must be in (0, 1]", o.fraction);
  o.min_clients = p.integer("min_clients", o.min_clients);
  p.check(o.min_clients >= 1, "min_clients", "must be >= 1", static_cast<double>(o.min_clients));
  o.round_deadline_s = p.number("round_deadline_s", o.round_deadline_s);
  p.check(o.round_deadline_s >= 0, "round_deadline_s", "must be >= 0", o.round_deadline_s);
  LrSchedule& s = o.lr_schedule;
  s.kind = p.string("lr_schedule", s.kind);
  if (s.kind != "constant" && s.kind != "cosine" && s.kind != "linear") {
    p.fail_with("lr_schedule",
                "unknown value '" + s.kind + "' (known: " + known_lr_schedules() + ")");
  }
  s.warmup_rounds = p.integer("lr_warmup_rounds", s.warmup_rounds);
  p.check(s.warmup_rounds >= 0, "lr_warmup_rounds", "must be >= 0",
          static_cast<double>(s.warmup_rounds));
  s.decay_rounds = p.integer("lr_decay_rounds", s.decay_rounds);
  if (s.kind != "constant") {
    p.check(s.decay_rounds > s.warmup_rounds, "lr_decay_rounds",
            "must be > lr_warmup_rounds (" + std::to_string(s.warmup_rounds) +
                ") with lr_schedule " + s.kind +
                ": the round the decay ends, counted from the run's first",
            static_cast<double>(s.decay_rounds));
  }
  s.min_factor = p.number("lr_min_factor", s.min_factor);
  p.check(s.min_factor >= 0 && s.min_factor <= 1, "lr_min_factor", "must be in [0, 1]",
          s.min_factor);
  return o;
}

Result<std::unique_ptr<Strategy>> make_strategy(const std::string& name, const ConfigRecord& params,
                                                const std::string& path) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : strategy_names()) known += (known.empty() ? "" : ", ") + n;
    return Status::invalid_argument(path + ".name: unknown strategy '" + name +
                                    "' (known: " + known + ")");
  }
  StrategyParams p(name, params, path);
  auto s = it->second(p);
  COHORT_RETURN_IF_ERROR(p.finish());
  return s;
}

std::vector<std::string> strategy_names() {
  std::vector<std::string> out;
  for (const auto& [name, maker] : registry()) out.push_back(name);
  return out;
}

}  // namespace cohort
