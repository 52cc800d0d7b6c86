#include "cohort/trainer/model_config.h"

#include "cohort/core/array_record.h"
#include "cohort/core/validate.h"

namespace cohort {

Status ModelConfig::validate() const {
  bool known = false;
  for (std::string_view k : kNames) known = known || name == k;
  if (!known)
    return field_error("model.name",
                       "unknown model '" + name + "' (known: logreg, mlp, cnn, char_lstm)");
  if (name != "mlp" && name != "char_lstm") return Status();
  if (hidden.empty()) {
    return field_error("model.hidden", name + " needs at least one hidden layer");
  }
  if (name == "char_lstm") {
    for (int64_t w : hidden) {
      if (w != hidden[0]) {
        return field_error("model.hidden",
                           "char_lstm layers all have one width (the LSTM's), got " +
                               shape_string(hidden));
      }
    }
  }
  for (size_t i = 0; i < hidden.size(); ++i) {
    COHORT_RETURN_IF_ERROR(
        check_field("model.hidden[" + std::to_string(i) + "]", hidden[i], Range::at_least(1)));
  }
  return Status();
}

}  // namespace cohort
