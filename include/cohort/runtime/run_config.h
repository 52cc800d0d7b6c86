// RunConfig: the YAML `run:` section, the part of a run both hosts share: its budget, how often
// the global model is evaluated, the seed and the training threads.
//
// The simulator reads max_virtual_time_s on its virtual clock; a deployment has its own
// wall-clock budget (deploy.max_wall_s, deploy/deploy_config.h) and ignores this one.
#pragma once

#include <cstdint>
#include <string>

#include "cohort/core/status.h"

namespace cohort {

struct RunConfig {
  int64_t rounds = 50;              // stop after this many commits (0 = no limit)
  double max_virtual_time_s = 0.0;  // simulator: stop at this virtual time (0 = no limit)
  int64_t eval_every = 1;           // evaluate every N commits (0 = only by interval)
  double eval_interval_s = 0.0;     // also at every multiple of N clock seconds (0 = off)
  double target_accuracy = 0.0;     // time_to_target: first time accuracy >= this (0 = off)
  uint64_t seed = 1;
  int64_t threads = 0;  // training threads; 0 = all cores
  // "default" | "strict": the same model hash on every x86-64 machine (the CLI pins the math
  // kernels; docs/design/reproducibility.md).
  std::string reproducible = "default";

  // InvalidArgument naming the key ("run.eval_every: must be >= 1 unless run.eval_interval_s
  // > 0, got 0"). Does not require a budget: see validate_budget.
  Status validate() const;
  // Checks that a simulation ends: rounds or max_virtual_time_s must be set.
  Status validate_budget() const;
};

}  // namespace cohort
