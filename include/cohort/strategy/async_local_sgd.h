// Asynchronous Local-SGD with Delayed Nesterov and Dynamic Local Updates (Liu et al.,
// "Asynchronous Local-SGD Training for Language Modeling", arXiv:2401.09135, 2024;
// docs/strategies.md, "async_local_sgd").
//
// Workers train asynchronously; each push of a pseudo-gradient g = θ_start - θ_end commits at
// once. Delayed Nesterov (DN) over a period of N pushes:
//     b <- b + g ; c <- c + 1
//     if c mod N == 0:  m <- β m + b / N ;  θ <- θ - ε (g / N + β m) ;  b <- 0
//     else:             θ <- θ - ε g / N
// so momentum is never updated by a single stale push. Dynamic Local Updates (DyLU): worker w
// gets H_w = max(1, floor(v_w / max_w' v_w' · H)) local steps, v = steps per second measured by
// the runtime from completed tasks (unknown speeds get H), so fast and slow workers finish in
// about the same time.
// Parameters: outer_lr ε (default 0.7), outer_momentum β (0.9), period N (0 = number of
// clients), inner_steps H (0 = the run's default local steps), dynamic_steps (true),
// max_concurrency, max_staleness.
#pragma once

#include "cohort/strategy/async_strategy.h"

namespace cohort {

struct AsyncLocalSgdOptions {
  AsyncOptions async;
  double outer_lr = 0.7;
  double outer_momentum = 0.9;
  int64_t period = 0;
  int64_t inner_steps = 0;
  bool dynamic_steps = true;
};

class AsyncLocalSgd : public AsyncStrategy {
 public:
  explicit AsyncLocalSgd(AsyncLocalSgdOptions options);
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "async_local_sgd"; }

 protected:
  Status on_start() override;
  // Checkpoints: the async state, the buffer, the momentum and the push counter.
  Status io_state(StateIO& io) override;
  Status apply(const Update& update, int64_t staleness) override;
  Task make_task(ClientId id) override;

 private:
  AsyncLocalSgdOptions options_;
  ArrayRecord buffer_;    // b
  ArrayRecord momentum_;  // m
  int64_t pushes_ = 0;    // c
  int64_t period_ = 1;
};

}  // namespace cohort
