// ModelConfig: the YAML `model:` section, which of the built-in models a trainer builds.
//
// The built-in models (the LibTorch backend's, torch/torch_trainer.h) are named here, with
// their rules, so the config loader checks a model section without linking LibTorch. A
// trainer for a user's own model ignores it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/core/status.h"

namespace cohort {

struct ModelConfig {
  // logreg: multinomial logistic regression; mlp: ReLU layers of `hidden` widths (the FedAvg
  // paper's 2NN: 200, 200); cnn: the FedAvg paper's CNN (two 5x5 conv + 2x2 max-pool blocks);
  // char_lstm: a character-level language model (embedding, LSTM layers of the `hidden` width,
  // one layer per entry, all widths equal, a linear read-out; for data.dataset text).
  std::string name = "mlp";
  std::vector<int64_t> hidden = {200, 200};  // mlp, char_lstm
  // A model file to start from instead of the seeded initialisation (runtime/model_file.h:
  // a run's model.cohort or a server's checkpoint.cohort); empty = none.
  std::string init;

  static constexpr std::array<std::string_view, 4> kNames = {"logreg", "mlp", "cnn", "char_lstm"};
  // InvalidArgument naming the key: an unknown name, an mlp without hidden layers, a width
  // < 1 ("model.hidden[1]: must be >= 1, got 0").
  Status validate() const;
};

}  // namespace cohort
