// LrSchedule: a learning-rate schedule over a synchronous run's rounds (warm-up, then constant,
// cosine or linear decay), the shape DiLoCo's paper trains its inner AdamW with and that most
// FL frameworks offer as per-round decay.
//
// factor(round) multiplies a learning rate for round `round` (1-based), t = round - 1:
//   warm-up  t < W:              (t + 1) / W
//   then     p = min(1, (t - W) / (D - W))     (D = decay_rounds, the rounds of the whole run)
//            constant: 1
//            cosine:   m + (1 - m) (1 + cos(pi p)) / 2
//            linear:   m + (1 - m) (1 - p)
// with m = min_factor: the factor falls from 1 after the warm-up towards m, which it reaches after
// round D (as transformers' cosine schedule over D steps) and keeps.
// The learning rate is constant within a round (one task's local steps); with one step per
// round (strategy "ddp") the schedule is per step.
//
// Round strategies read it from their parameters (registry.h, read_round_options:
// lr_schedule, lr_decay_rounds, lr_warmup_rounds, lr_min_factor) and scale each task's learning
// rate by it (task config "lr_scale"), or, where the strategy says so, their own server step
// (DiLoCo's lr_schedule_target: outer).
#pragma once

#include <cstdint>
#include <string>

namespace cohort {

struct LrSchedule {
  // "constant" (the default: factor 1 after any warm-up), "cosine" or "linear".
  std::string kind = "constant";
  // D: the round at which the decay ends; required (>= 1, > warmup_rounds) unless constant.
  int64_t decay_rounds = 0;
  // W: rounds of linear warm-up (0 = none).
  int64_t warmup_rounds = 0;
  // m: the factor at the end of the decay, in [0, 1].
  double min_factor = 0.0;

  // Whether the factor is 1 in every round (no schedule).
  bool is_constant() const { return kind == "constant" && warmup_rounds == 0; }
  // The factor for 1-based `round` (rounds < 1 count as round 1).
  double factor(int64_t round) const;
};

// The schedule kinds, for messages ("constant, cosine, linear").
const char* known_lr_schedules();

}  // namespace cohort
