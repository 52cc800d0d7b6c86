#include "cohort/trainer/model_config.h"

#include "cohort/core/validate.h"

namespace cohort {

Status ModelConfig::validate() const {
  bool known = false;
  for (std::string_view k : kNames) known = known || name == k;
  if (!known)
    return field_error("model.name", "unknown model '" + name + "' (known: logreg, mlp, cnn)");
  if (name != "mlp") return Status();
  if (hidden.empty()) return field_error("model.hidden", "mlp needs at least one hidden layer");
  for (size_t i = 0; i < hidden.size(); ++i) {
    COHORT_RETURN_IF_ERROR(
        check_field("model.hidden[" + std::to_string(i) + "]", hidden[i], Range::at_least(1)));
  }
  return Status();
}

}  // namespace cohort
