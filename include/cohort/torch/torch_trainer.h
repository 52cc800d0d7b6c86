// The LibTorch training backend (CPU). This header includes no LibTorch header: everything
// LibTorch lives in src/torch/*.cc, the only files that include <torch/...>.
//
// Models (names used in YAML `model.name`):
//   logreg  linear layer on the flattened input;
//   mlp     FedAvg's "2NN": flatten -> hidden[0] -> ReLU -> hidden[1] -> ReLU -> classes
//           (784-200-200-10 by default, 199,210 parameters);
//   cnn     FedAvg's CNN: conv5x5(32, pad 2) -> ReLU -> maxpool2 -> conv5x5(64, pad 2) -> ReLU
//           -> maxpool2 -> fc 512 -> ReLU -> fc classes (1,663,370 parameters on 1x28x28).
// Parameters are named as LibTorch names them ("fc1.weight", ...); buffers are exported as
// non-trainable arrays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/trainer/model_config.h"
#include "cohort/trainer/trainer.h"

namespace cohort::libtorch {

// A built-in model (name, hidden: ModelConfig, the YAML model: section) for data of one shape.
struct ModelSpec : ModelConfig {
  std::vector<int64_t> input_shape;  // one example, e.g. {1, 28, 28} or {20}
  int64_t num_classes = 10;
  // InvalidArgument naming the field: ModelConfig::validate's rules, then the data's
  // ("model.input_shape: cnn needs [channels, height, width], got [20]").
  Status validate() const;
};

// A factory making one independent Trainer per call (one per worker thread). The trainers
// train with SGD (lr, momentum, weight decay from TrainConfig; "lr" and "prox_mu" from the
// task config (resolve_task_training); prox_mu adds mu/2 ||w - w_start||^2 to the local loss; a
// grad_correction is added to each parameter's gradient before every step), minibatches of
// TrainConfig::batch_size drawn without replacement from a seeded per-task permutation of the
// shard (re-drawn every pass). Evaluation runs in batches of 1000 without gradients.
// Fails with InvalidArgument for a bad spec.
Result<TrainerFactory> make_trainer_factory(const ModelSpec& spec);

// Sets LibTorch's intra-op threads (and OpenBLAS's, when it is the BLAS in use). The
// simulator trains clients in parallel with 1 thread each, which keeps results independent
// of the thread count. Call before training starts.
// Set OMP_WAIT_POLICY=PASSIVE in the environment before the process starts (LibTorch's
// OpenMP reads it once, at load time): with active waiting, idle OpenMP workers spin and
// compete with OpenBLAS's threads, and on 2 cores a training step was measured ~3.5x slower.
// The Makefile and ctest set it; it cannot be changed from here once LibTorch is loaded.
void set_torch_threads(int n);

// LibTorch's deterministic algorithms (at::globalContext().setDeterministicAlgorithms): an
// operation without a deterministic implementation then fails instead of varying
// (run.reproducible: strict).
void set_deterministic(bool on);

// Which BLAS library LibTorch runs on ("openblas-pthread", "reference", ...), for benchmarks.
std::string blas_library();

}  // namespace cohort::libtorch
