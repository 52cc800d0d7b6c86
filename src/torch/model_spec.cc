// ModelSpec::validate: plain C++, no LibTorch headers.
#include <string>
#include <vector>

#include "cohort/torch/torch_trainer.h"

namespace cohort::libtorch {
Status ModelSpec::validate() const {
  if (name != "logreg" && name != "mlp" && name != "cnn") {
    return Status::invalid_argument("model.name: unknown model '" + name +
                                    "' (known: logreg, mlp, cnn)");
  }
  if (input_shape.empty()) {
    return Status::invalid_argument("model.input_shape: must not be empty");
  }
  for (size_t i = 0; i < input_shape.size(); ++i) {
    if (input_shape[i] < 1) {
      return Status::invalid_argument("model.input_shape[" + std::to_string(i) +
                                      "]: must be >= 1, got " + std::to_string(input_shape[i]));
    }
  }
  if (num_classes < 2) {
    return Status::invalid_argument("model.num_classes: must be >= 2, got " +
                                    std::to_string(num_classes));
  }
  if (name == "mlp") {
    if (hidden.empty()) {
      return Status::invalid_argument("model.hidden: mlp needs at least one hidden layer");
    }
    for (size_t i = 0; i < hidden.size(); ++i) {
      if (hidden[i] < 1) {
        return Status::invalid_argument("model.hidden[" + std::to_string(i) +
                                        "]: must be >= 1, got " + std::to_string(hidden[i]));
      }
    }
  }
  if (name == "cnn") {
    if (input_shape.size() != 3) {
      return Status::invalid_argument(
          "model.input_shape: cnn needs [channels, height, width], got " +
          shape_string(input_shape));
    }
    if (input_shape[1] < 4 || input_shape[2] < 4) {
      return Status::invalid_argument(
          "model.input_shape: cnn needs height and width >= 4 (two 2x2 max-pools), got " +
          shape_string(input_shape));
    }
  }
  return Status();
}

}  // namespace cohort::libtorch
