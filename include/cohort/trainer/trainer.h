// Trainer: the client-side boundary between Cohort and a model.
//
// Given parameters, a shard of local data, a number of local steps and a config, a Trainer
// runs local training and returns the new parameters and metrics; it can also evaluate
// parameters on a shard. Cohort never needs the model's architecture: it moves the named
// tensors of an ArrayRecord. The LibTorch trainer (cohort/torch/torch_trainer.h) is one
// implementation; tests use small fakes; Python users bring PyTorch models.
//
// Thread safety: a Trainer instance is used by one thread at a time. Runtimes that train
// clients in parallel create one Trainer per worker thread through a TrainerFactory.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cohort/core/array_record.h"
#include "cohort/core/eval_result.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/data/dataset.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

// Local optimiser settings (the YAML `training:` section). Task::config may override lr
// and adds algorithm-specific keys such as prox_mu (strategy/task_config.h);
// resolve_task_training() applies them.
struct TrainConfig {
  // "sgd" (momentum, L2 weight decay) or "adamw" (Loshchilov & Hutter, decoupled weight
  // decay; LibTorch's AdamW). A task may override it (task config "optimizer").
  std::string optimizer = "sgd";
  double lr = 0.05;
  double momentum = 0.0;
  double weight_decay = 0.0;
  // AdamW: decay rates of the first and second moments, and the denominator's epsilon.
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  int64_t batch_size = 32;
  // Local work per task: `local_steps` if > 0, else `local_epochs` passes over the shard.
  int64_t local_steps = 0;
  double local_epochs = 1.0;

  // Steps one task takes on a shard of `num_examples` examples:
  // local_steps if > 0, else ceil(local_epochs * num_examples / batch_size), at least 1.
  int64_t steps_for(int64_t num_examples) const;
  // InvalidArgument naming the bad field ("training.lr: must be > 0, got 0"). The only
  // place these rules live: the YAML loader, the runtimes and the trainers call it.
  Status validate() const;
};

// What one task trains with: the run's TrainConfig with the task's lr override applied, and
// the task's proximal weight (FedProx; 0 = none).
struct TaskTraining {
  TrainConfig config;
  double prox_mu = 0.0;
};
// Validates `base` (TrainConfig::validate) and applies `task_config` (strategy/task_config.h):
// a task's lr must be >= 0 ("task config lr: must be >= 0, got -0.5"; 0 freezes the model), its
// prox_mu >= 0. Trainers and runtimes call this rather than reading task keys themselves.
Result<TaskTraining> resolve_task_training(const TrainConfig& base,
                                           const ConfigRecord& task_config);

struct TrainResult {
  ArrayRecord params;  // parameters after local training
  int64_t num_examples = 0;
  int64_t steps = 0;
  MetricRecord metrics;  // at least "train_loss" (mean over the task's steps)
};

class Trainer {
 public:
  virtual ~Trainer() = default;
  // Freshly initialised parameters (deterministic for a seed); defines the layout.
  virtual Result<ArrayRecord> init_params(uint64_t seed) = 0;
  // Runs `steps` optimiser steps from `start` on minibatches drawn from `shard` (reshuffled
  // every pass, seeded by `seed`). `grad_correction` is optional (nullptr = none): when set,
  // it has start's layout and is added to the gradient of every trainable array before each
  // optimiser step, like the FedProx term (SCAFFOLD passes c - c_i, so each step is
  // w <- w - lr (g(w) + c - c_i) for plain SGD); non-trainable arrays ignore it.
  // InvalidArgument for a layout mismatch (of start or grad_correction) or an empty shard;
  // Internal for a failure inside the backend (the simulator stops the run); Unavailable for
  // a failure of this client's task alone (a Python client that raised, under on_error
  // "reject"): the simulator rejects the task's update and goes on.
  virtual Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                                    const TrainConfig& config, const ConfigRecord& task_config,
                                    uint64_t seed, const ArrayRecord* grad_correction) = 0;
  // Mean loss and accuracy of `params` over the whole shard.
  virtual Result<EvalResult> evaluate(const ArrayRecord& params, const Shard& shard) = 0;

  // Lets another thread stop a train() in progress: once *flag is true, train() returns
  // Cancelled at its next step (a deployment client whose run ended). `flag` must outlive the
  // trainer's calls; nullptr (the default) = never.
  void set_cancel_flag(const std::atomic<bool>* flag) { cancel_ = flag; }

  // The optimizer state a client keeps between its tasks (task config "keep_optimizer_state";
  // DiLoCo's inner AdamW moments): train() starts from *state (empty: a fresh optimizer) and
  // leaves the optimizer's state after its last step in *state. Its layout is the trainer's
  // (for "adamw": "adamw.step" [1], then "adamw.m.<array>" and "adamw.v.<array>" for every
  // trainable array); a state of another layout is InvalidArgument. Null (the default): every
  // task starts fresh and nothing is kept. Optimizers without state ("sgd" without momentum)
  // leave it empty. `state` must outlive the calls.
  void set_optimizer_state(ArrayRecord* state) { optimizer_state_ = state; }

 protected:
  ArrayRecord* optimizer_state() const { return optimizer_state_; }
  bool cancel_requested() const {
    return cancel_ != nullptr && cancel_->load(std::memory_order_relaxed);
  }

 private:
  const std::atomic<bool>* cancel_ = nullptr;
  ArrayRecord* optimizer_state_ = nullptr;
};

using TrainerFactory = std::function<Result<std::unique_ptr<Trainer>>()>;

}  // namespace cohort
