#include "cohort/client/trainer.h"

#include <cmath>

namespace cohort {

int64_t TrainConfig::steps_for(int64_t num_examples) const {
  if (local_steps > 0) return local_steps;
  const double steps =
      std::ceil(local_epochs * static_cast<double>(num_examples) / static_cast<double>(batch_size));
  return std::max<int64_t>(1, static_cast<int64_t>(steps));
}

Status TrainConfig::validate() const {
  if (optimizer != "sgd") {
    return Status::invalid_argument("training.optimizer: unknown optimizer '" + optimizer +
                                    "' (known: sgd)");
  }
  if (!(lr > 0) || !std::isfinite(lr)) {
    return Status::invalid_argument("training.lr: must be > 0, got " + std::to_string(lr));
  }
  if (momentum < 0 || momentum >= 1) {
    return Status::invalid_argument("training.momentum: must be in [0, 1), got " +
                                    std::to_string(momentum));
  }
  if (weight_decay < 0) {
    return Status::invalid_argument("training.weight_decay: must be >= 0, got " +
                                    std::to_string(weight_decay));
  }
  if (batch_size < 1) {
    return Status::invalid_argument("training.batch_size: must be >= 1, got " +
                                    std::to_string(batch_size));
  }
  if (local_steps < 0) {
    return Status::invalid_argument("training.local_steps: must be >= 0, got " +
                                    std::to_string(local_steps));
  }
  if (local_steps == 0 && !(local_epochs > 0)) {
    return Status::invalid_argument("training.local_epochs: must be > 0 when local_steps is 0, got " +
                                    std::to_string(local_epochs));
  }
  return Status();
}

}  // namespace cohort
