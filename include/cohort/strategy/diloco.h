// DiLoCo: Distributed Low-Communication training (Douillard et al., "DiLoCo: Distributed
// Low-Communication Training of Language Models", arXiv:2311.08105, 2023; docs/strategies.md,
// "diloco").
//
// Synchronous rounds of H inner steps: every worker of the round starts from the global model
// θ, takes H steps of its inner optimizer (AdamW by default, whose moments each worker keeps
// from one of its rounds to the next: the task asks for "keep_optimizer_state"), and returns
// its outer gradient Δ_i = θ - θ_i. The server averages them (equally by default, as the paper;
// or by examples) and takes one outer step of SGD with Nesterov momentum:
//     m <- μ m + Δ                 (m = 0 before the first round)
//     θ <- θ - η (Δ + μ m)         (nesterov; plain heavy ball: θ <- θ - η m)
// Defaults as OpenDiLoCo: outer_lr η = 0.7, outer_momentum μ = 0.9, nesterov on.
//
// The outer optimizer may instead be AdamW (outer_optimizer: adamw; the update rule of
// LibTorch's AdamW on the averaged Δ as gradient). Strategy "ddp" is the every-step data-
// parallel baseline built from that: every round each worker takes one step of SGD with
// learning rate 1 and no weight decay, so that its Δ_i is its minibatch gradient, and the server
// takes one AdamW step on their mean (defaults: lr 4e-4, betas 0.9/0.95, weight decay 0.1,
// OpenDiLoCo's inner settings) -- synchronous training that communicates every step, measured
// on the same clock as DiLoCo.
//
// Workers may join and leave between rounds: a round samples the workers idle then, a worker
// joining later gets the current global model with its first task (the outer state lives on
// the server), and a worker lost mid-round is left out of that round's average.
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "cohort/strategy/fedavg.h"

namespace cohort {

struct DiLoCoOptions {
  // "diloco", or "ddp" (the every-step baseline: its defaults, see the file comment).
  std::string name = "diloco";
  RoundOptions round;
  // "sgd" (momentum, Nesterov when `nesterov`) or "adamw".
  std::string outer_optimizer = "sgd";
  double outer_lr = 0.7;
  double outer_momentum = 0.9;
  bool nesterov = true;
  // Outer AdamW.
  double outer_beta1 = 0.9;
  double outer_beta2 = 0.95;
  double outer_eps = 1e-8;
  double outer_weight_decay = 0.1;
  // The inner learning rate and weight decay the tasks ask for (< 0: the run's training.lr /
  // training.weight_decay).
  double inner_lr = -1.0;
  double inner_weight_decay = -1.0;
  // H: inner steps per round; 0 = the run's local steps (training.local_steps / local_epochs).
  int64_t inner_steps = 0;
  // The inner optimizer the tasks ask for: "adamw", "sgd", or "run" (training.optimizer).
  std::string inner_optimizer = "adamw";
  // How the outer gradients are averaged: "equal" (the paper) or "examples".
  std::string weighting = "equal";
  // What the round's lr schedule (RoundOptions::lr_schedule) scales: "inner" (the tasks'
  // learning rate, DiLoCo's cosine inner schedule) or "outer" (outer_lr; the default for ddp,
  // whose inner step only probes the gradient).
  std::string lr_schedule_target = "inner";
};

class DiLoCo : public FedAvg {
 public:
  explicit DiLoCo(DiLoCoOptions options = {});
  // Parameters: the RoundOptions keys, outer_optimizer (sgd, adamw), outer_lr (> 0),
  // outer_momentum ([0, 1)), nesterov, outer_beta1, outer_beta2 ([0, 1)), outer_eps (> 0),
  // outer_weight_decay (>= 0), inner_steps (>= 0), inner_optimizer (adamw, sgd, run), inner_lr,
  // inner_weight_decay, weighting (equal, examples), lr_schedule_target (inner, outer).
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  // "ddp": one inner SGD step of learning rate 1, no weight decay, outer AdamW.
  static Result<std::unique_ptr<Strategy>> create_ddp(StrategyParams& params);
  std::string name() const override { return diloco_.name; }

  const DiLoCoOptions& options() const { return diloco_; }
  // The outer momentum buffer m (empty before start()).
  const ArrayRecord& outer_momentum_buffer() const { return momentum_; }

 protected:
  Status on_start() override;
  // Checkpoints: FedAvg's state, the outer momentum "outer_momentum" (AdamW: also the second
  // moment "outer_second_moment" and the step count).
  Status io_state(StateIO& io) override;
  std::vector<Task> configure_train(int64_t round, const IdleClients& idle) override;
  Status accumulate(const Update& update) override;
  Status apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) override;
  bool plain_step() const override { return false; }
  bool lr_schedule_scales_tasks() const override { return diloco_.lr_schedule_target == "inner"; }
  // outer_lr in `round`: scaled by the round's lr schedule when lr_schedule_target is "outer".
  double outer_lr_at(int64_t round) const;

  // Reads the keys create() documents into `o` (failures are recorded in `p`).
  static void read_options(StrategyParams& p, DiLoCoOptions& o);
  // The outer SGD step (momentum, Nesterov when set) on one part of the vector:
  // m <- mu m + g, then theta <- theta - lr (g + mu m), or theta - lr m without Nesterov, with
  // lr = outer_lr_at(current_round()).
  void outer_sgd_step(std::span<const float> g, std::span<float> theta,
                      std::span<float> m) const;
  ArrayRecord& momentum() { return momentum_; }

 private:
  DiLoCoOptions diloco_;
  ArrayRecord momentum_;       // m (SGD's momentum, AdamW's first moment)
  ArrayRecord second_moment_;  // AdamW's v
  int64_t outer_steps_ = 0;
};

}  // namespace cohort
