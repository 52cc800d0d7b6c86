// QuadraticTrainer: a cheap, exactly analysable Trainer for runtime and strategy tests.
//
// Parameters: one array "w" of `dim` floats. A client's objective is
//     f_k(w) = 0.5 * ||w - t_k||^2,   t_k = mean of the client's examples' features,
// so `steps` gradient steps with rate lr give w_end = t_k + (1 - lr)^steps (w_start - t_k)
// (lr = 1: exactly t_k). With a gradient correction g_c each step is
// w <- w - lr ((w - t_k) + g_c), run step by step in double precision. `noise` adds seeded
// Gaussian noise to the result so tests can check that seeds matter. Evaluation reports
// loss = 0.5 ||w - t||^2 against the test shard's mean and accuracy = 1 / (1 + loss).
#pragma once

#include <cmath>
#include <memory>
#include <stdexcept>

#include "cohort/core/rng.h"
#include "cohort/trainer/trainer.h"

namespace cohort::testing {

class QuadraticTrainer : public Trainer {
 public:
  QuadraticTrainer(int64_t dim, double noise = 0.0, int64_t fail_on_client_examples = -1)
      : dim_(dim), noise_(noise), fail_on_(fail_on_client_examples) {}

  Result<ArrayRecord> init_params(uint64_t seed) override {
    ArrayRecord r(*ArrayLayout::create({{"w", {dim_}}}));
    Rng rng(seed);
    for (float& v : r.flat()) v = static_cast<float>(rng.normal(0.0, 0.1));
    return r;
  }

  Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                            const TrainConfig& config, const ConfigRecord& task_config,
                            uint64_t seed, const ArrayRecord* grad_correction) override {
    if (shard.size() == fail_on_) return Status::internal("injected training failure");
    if (grad_correction != nullptr) {
      COHORT_RETURN_IF_ERROR(start.check_same_layout(*grad_correction, "grad_correction"));
    }
    std::vector<double> t = target(shard);
    COHORT_ASSIGN_OR_RETURN(TaskTraining task, resolve_task_training(config, task_config));
    const double lr = task.config.lr;
    const double keep = std::pow(1.0 - lr, static_cast<double>(steps));
    TrainResult r;
    r.params = start.clone();
    Rng rng(seed);
    auto w = r.params.flat();
    for (int64_t i = 0; i < dim_; ++i) {
      double end = t[i] + keep * (w[i] - t[i]);
      if (grad_correction != nullptr) {
        const double gc = grad_correction->flat()[static_cast<size_t>(i)];
        double v = w[i];
        for (int64_t s = 0; s < steps; ++s) v -= lr * ((v - t[i]) + gc);
        end = v;
      }
      w[i] = static_cast<float>(end + (noise_ > 0 ? rng.normal(0, noise_) : 0.0));
    }
    r.num_examples = shard.size();
    r.steps = steps;
    r.metrics["train_loss"] = 0.0;
    // A stand-in optimizer state (Trainer::set_optimizer_state): the steps taken so far, which
    // the task reports as "optimizer_steps_before".
    if (ArrayRecord* state = optimizer_state()) {
      if (state->empty()) *state = ArrayRecord(*ArrayLayout::create({{"steps", {1}}}));
      r.metrics["optimizer_steps_before"] = state->flat()[0];
      state->flat()[0] += static_cast<float>(steps);
    }
    return r;
  }

  Result<EvalResult> evaluate(const ArrayRecord& params, const Shard& shard) override {
    std::vector<double> t = target(shard);
    double loss = 0;
    for (int64_t i = 0; i < dim_; ++i) {
      const double d = params.flat()[i] - t[i];
      loss += 0.5 * d * d;
    }
    return EvalResult{loss, 1.0 / (1.0 + loss), shard.size()};
  }

  // Mean feature vector of the shard (first `dim` features of each example).
  std::vector<double> target(const Shard& shard) const {
    std::vector<double> t(static_cast<size_t>(dim_), 0.0);
    for (int64_t idx : shard.indices) {
      const float* x = shard.data->example(idx);
      for (int64_t i = 0; i < dim_; ++i) t[i] += x[i];
    }
    for (double& v : t) v /= std::max<int64_t>(1, shard.size());
    return t;
  }

 private:
  int64_t dim_;
  double noise_;
  int64_t fail_on_;
};

// A dataset for the quadratic trainer: example i has features (i, 2i) (one class), so a shard's
// target is easy to compute by hand.
inline std::shared_ptr<const Dataset> line_dataset(int64_t n) {
  auto d = std::make_shared<Dataset>();
  d->name = "line";
  d->sample_shape = {2};
  d->num_classes = 1;
  for (int64_t i = 0; i < n; ++i) {
    d->features.push_back(static_cast<float>(i));
    d->features.push_back(static_cast<float>(2 * i));
    d->labels.push_back(0);
  }
  return d;
}

inline TrainerFactory quadratic_factory(int64_t dim, double noise = 0.0, int64_t fail_on = -1) {
  return [=]() -> Result<std::unique_ptr<Trainer>> {
    return std::unique_ptr<Trainer>(new QuadraticTrainer(dim, noise, fail_on));
  };
}

}  // namespace cohort::testing
