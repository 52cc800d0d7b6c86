// DiLoCo with eager updates (Kale, Douillard, Donchev, "Eager Updates For Overlapped
// Communication and Computation in DiLoCo", arXiv:2502.12996, 2025; docs/strategies.md,
// "eager_diloco").
//
// DiLoCo blocks every worker while the round's outer gradients are averaged. With eager
// updates a worker starts its next inner phase at once, while its outer gradient travels: the
// whole round trip overlaps the next H inner steps. It cannot start from the next global model
// θ_t (that needs everyone's outer gradients), so it starts from an eager estimate of it: the
// outer step from θ_{t-1} taken with its own fresh outer gradient standing in for its share of
// the average and the others' outer gradients of the round before standing in for theirs,
//     Δ̃_m = Δ̄_{t-1} - w_m' Δ_m^{t-1} + w_m Δ_m^t
//     x_m = OuterStep(θ_{t-1}, m_{t-1}; Δ̃_m)   (not committed: a starting point)
// with w the averaging weights (1/M when equal) of the rounds the gradients come from (the
// w' term only when m took part in round t-1). Everything in it is already on the worker when
// its phase t ends. The global model stays DiLoCo's: θ_t = OuterStep(θ_{t-1}, m_{t-1}; Δ̄_t),
// and every outer gradient is measured against the global model of its round (x_m's offset
// from θ_t is added back on arrival), so the estimate only moves where inner phases start.
//
// Here the server computes each worker's x_m (the same numbers the worker would) and sends it
// as the task's model; tasks say overlap_steps = H, so the simulator starts a worker's phase
// when its previous phase ended and charges the round trip only where it is longer than the
// phase. A deployment runs the same math, the workers waiting for x_m (no overlap on a real
// clock). A worker that did not take part in the previous round starts from θ_t as in DiLoCo.
//
// Server memory: two models per worker of a round (its last two outer gradients) and the
// previous model, momentum and average. Outer optimizer: SGD (Nesterov or heavy ball).
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "cohort/strategy/diloco.h"

namespace cohort {

class EagerDiLoCo : public DiLoCo {
 public:
  explicit EagerDiLoCo(DiLoCoOptions options);
  // Parameters: DiLoCo's; outer_optimizer must be sgd.
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "eager_diloco"; }
  // Arriving deltas are corrected by their start's offset: they must be in memory.
  bool accepts_streamed_delta() const override { return false; }

 protected:
  std::vector<Task> configure_train(int64_t round, const IdleClients& idle) override;
  Status accumulate(const Update& update) override;
  Status apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) override;
  // DiLoCo's state and the eager state ("eager_*").
  Status io_state(StateIO& io) override;

 private:
  // Outer gradients of one round by worker, with the weight each had in the average.
  struct RoundDeltas {
    std::map<ClientId, ArrayRecord> delta;
    std::map<ClientId, double> weight;  // normalised once the round is applied
  };
  Status io_round(StateIO& io, const std::string& key, RoundDeltas& r);

  int64_t configured_round_ = 0;
  int64_t applied_round_ = -1;  // the last round whose outer step was taken
  ArrayRecord prev_model_;      // θ_{t-1}: the global model before the last outer step
  ArrayRecord prev_momentum_;   // m_{t-1}
  ArrayRecord prev_average_;    // Δ̄_{t-1} (empty before the second round)
  ArrayRecord last_average_;    // Δ̄_t
  RoundDeltas collecting_;      // this round's
  RoundDeltas last_;            // round t
  RoundDeltas before_last_;     // round t - 1
  std::map<ClientId, std::shared_ptr<const ArrayRecord>> starts_;  // x_m of this round's tasks
};

}  // namespace cohort
