// Strategy registry: builds strategies by name from the YAML `strategy:` section.
//
// Each strategy file provides a `static Result<std::unique_ptr<Strategy>> create(
// StrategyParams&)` that reads its own parameters; registry.cc lists them. StrategyParams
// type-checks each parameter, remembers which keys were read, and reports the first problem
// with its key path ("strategy.fraction: must be in (0, 1], got 2") or any key the strategy
// does not know ("strategy.fractoin: unknown parameter for fedavg (known: fraction, ...)").
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/strategy/round_strategy.h"
#include "cohort/strategy/strategy.h"

namespace cohort {

class StrategyParams {
 public:
  StrategyParams(std::string strategy, const ConfigRecord& params, std::string path = "strategy");

  // Typed getters: return the value, or `fallback` when the key is absent. A value of the
  // wrong type records an error (first one wins) and returns the fallback.
  double number(const std::string& key, double fallback);
  int64_t integer(const std::string& key, int64_t fallback);
  bool boolean(const std::string& key, bool fallback);
  std::string string(const std::string& key, const std::string& fallback);
  // Records "<path>.<key>: <what>, got <value>" unless `ok`.
  void check(bool ok, const std::string& key, const std::string& what, double value);
  // Records "<path>.<key>: <message>".
  void fail_with(const std::string& key, const std::string& message);

  // The first error, or an unknown-key error, or OK.
  Status finish() const;
  const std::string& strategy() const { return strategy_; }

 private:
  const Scalar* find(const std::string& key);
  void fail(Status s);

  std::string strategy_;
  const ConfigRecord& params_;
  std::string path_;
  std::set<std::string> known_;
  Status error_;
};

// The options every round-based strategy shares: fraction (0, 1], min_clients >= 1,
// round_deadline_s >= 0, and the learning-rate schedule (lr_schedule.h): lr_schedule
// (constant, cosine, linear), lr_decay_rounds (> lr_warmup_rounds unless constant),
// lr_warmup_rounds >= 0, lr_min_factor in [0, 1].
RoundOptions read_round_options(StrategyParams& p);

// Builds strategy `name` with `params`. InvalidArgument for an unknown name (listing the
// known ones) or bad parameters.
Result<std::unique_ptr<Strategy>> make_strategy(const std::string& name, const ConfigRecord& params,
                                                const std::string& path = "strategy");
// Names make_strategy knows, sorted.
std::vector<std::string> strategy_names();

}  // namespace cohort
