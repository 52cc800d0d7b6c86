// FedOpt: the adaptive server optimizers of Reddi et al. 2021, "Adaptive Federated
// Optimization" (arXiv:2003.00295): the shared base of FedAdam, FedYogi and FedAdagrad.
//
// Each round averages the clients' pseudo-gradients as FedAvg does (Delta_bar, example-
// weighted over the clients that replied; Delta = w_start - w_end, positive in the descent
// direction, see docs/strategies.md, "Sign convention"), then takes one step of an adaptive
// optimizer on the server, elementwise over the flat model (docs/strategies.md, "fedadam,
// fedyogi, fedadagrad"):
//     m <- beta_1 * m + (1 - beta_1) * Delta_bar
//     Adam:    v <- beta_2 * v + (1 - beta_2) * Delta_bar^2
//     Yogi:    v <- v - (1 - beta_2) * Delta_bar^2 * sign(v - Delta_bar^2)
//     Adagrad: v <- v + Delta_bar^2
//     w <- w - eta_t * m / (sqrt(v) + tau)
// m and v start at zero (as in Flower) and eta_t = server_lr except for FedAdam's bias
// correction (fedadam.h). Flower writes the same rule with the opposite sign (its delta is
// w_avg - w and it adds the step); the squares and sign(v - Delta^2) do not see the sign, so
// the iterates are identical.
//
// State: m and v, one ArrayRecord each the size of the model, allocated at start and updated
// in place by one fused pass over (Delta_bar, m, v, w) per round (fedopt_update). A round in
// which no update arrived leaves w, m and v unchanged.
//
// Thread safety: as every Strategy, driven from one thread. fedopt_update may run
// concurrently on disjoint buffers.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "cohort/strategy/fedavg.h"

namespace cohort {

enum class FedOptRule { kAdam, kYogi, kAdagrad };

// The settings every FedOpt strategy shares. It has no defaults of its own: each strategy
// fills it from its options struct (FedAdamOptions, FedYogiOptions, FedAdagradOptions), whose
// defaults differ.
struct FedOptOptions {
  RoundOptions round;
  // Server learning rate eta (> 0).
  double server_lr = 0;
  // First-moment decay, in [0, 1).
  double beta_1 = 0;
  // Second-moment decay, in [0, 1) (unused by Adagrad).
  double beta_2 = 0;
  // Adaptivity tau added to sqrt(v) (> 0).
  double tau = 0;
};

class FedOpt : public FedAvg {
 public:
  const FedOptOptions& fedopt_options() const { return opt_; }
  FedOptRule rule() const { return rule_; }
  // The moment estimates m and v (empty before start()).
  const ArrayRecord& first_moment() const { return m_; }
  const ArrayRecord& second_moment() const { return v_; }

 protected:
  FedOpt(FedOptOptions options, FedOptRule rule);

  // Reads the RoundOptions keys, server_lr, beta_1, beta_2 (only if `read_beta_2`) and tau,
  // with `defaults` as fallbacks, recording an error naming the key for a bad value.
  static FedOptOptions read_options(StrategyParams& p, FedOptOptions defaults, bool read_beta_2);

  Status on_start() override;
  // Checkpoints: FedAvg's state and the moments "m" and "v".
  Status io_state(StateIO& io) override;
  // One fused optimizer step: updates m_, v_ and `next` in place.
  Status apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) override;
  bool plain_step() const override { return false; }
  // The step size eta_t of the step being taken (during aggregate_train, current_round() is
  // the round being aggregated). Default: server_lr.
  virtual double step_size() const { return opt_.server_lr; }

  FedOptOptions opt_;
  FedOptRule rule_;
  ArrayRecord m_;
  ArrayRecord v_;
};

// The FedOpt update of one round, in place over flat buffers of equal size (see above):
// updates m and v from `delta` with `rule`, then w -= lr * m / (sqrt(v) + tau). Vectorised,
// split across kernel_pool() threads in ops::kChunk chunks for large inputs. Computes in
// float32. REQUIRES: all spans have the same size (checked with assert).
void fedopt_update(FedOptRule rule, float lr, float beta_1, float beta_2, float tau,
                   std::span<const float> delta, std::span<float> m, std::span<float> v,
                   std::span<float> w);

}  // namespace cohort
