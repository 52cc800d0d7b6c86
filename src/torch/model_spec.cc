// ModelSpec::validate: plain C++, no LibTorch headers.
#include <string>
#include <vector>

#include "cohort/core/validate.h"
#include "cohort/torch/torch_trainer.h"

namespace cohort::libtorch {

Status ModelSpec::validate() const {
  COHORT_RETURN_IF_ERROR(ModelConfig::validate());
  if (input_shape.empty()) return field_error("model.input_shape", "must not be empty");
  for (size_t i = 0; i < input_shape.size(); ++i) {
    COHORT_RETURN_IF_ERROR(check_field("model.input_shape[" + std::to_string(i) + "]",
                                       input_shape[i], Range::at_least(1)));
  }
  COHORT_RETURN_IF_ERROR(check_field("model.num_classes", num_classes, Range::at_least(2)));
  if (name == "char_lstm" && input_shape.size() != 1) {
    return field_error("model.input_shape",
                       "char_lstm needs windows of character ids [seq_len] (data.dataset text), "
                       "got " + shape_string(input_shape));
  }
  if (name == "cnn") {
    if (input_shape.size() != 3) {
      return field_error("model.input_shape",
                         "cnn needs [channels, height, width], got " + shape_string(input_shape));
    }
    if (input_shape[1] < 4 || input_shape[2] < 4) {
      return field_error(
          "model.input_shape",
          "cnn needs height and width >= 4 (two 2x2 max-pools), got " + shape_string(input_shape));
    }
  }
  return Status();
}

}  // namespace cohort::libtorch
