#include "cohort/runtime/model_file.h"

#include <cstring>

#include "cohort/runtime/checkpoint.h"

namespace cohort {

Status write_model_file(const std::string& path, const ArrayRecord& model,
                        const std::string& strategy, ModelVersion version) {
  Checkpoint c;
  c.strategy = strategy;
  c.version = version;
  c.state.arrays.emplace("model", model.clone());
  return write_checkpoint_file(path, c);
}

Result<ArrayRecord> read_model_file(const std::string& path) {
  COHORT_ASSIGN_OR_RETURN(Checkpoint c, read_checkpoint_file(path));
  auto it = c.state.arrays.find("model");
  if (it == c.state.arrays.end()) {
    return Status::data_loss(path + ": holds no model (no array named 'model')");
  }
  return std::move(it->second);
}

Result<ArrayRecord> initial_model(Trainer& trainer, const std::string& init_path, uint64_t seed) {
  COHORT_ASSIGN_OR_RETURN(ArrayRecord init, trainer.init_params(seed));
  if (init_path.empty()) return init;
  Result<ArrayRecord> file = read_model_file(init_path);
  if (!file.ok()) {
    if (file.error().code() == StatusCode::kNotFound) {
      return Status::invalid_argument("model.init: " + init_path + ": cannot open (no such file?)");
    }
    return Status::invalid_argument("model.init: " + file.error().message());
  }
  const std::string where = "model.init: " + init_path;
  if (Status st = init.check_same_layout(*file, where + ": not a model of this configuration");
      !st.ok()) {
    return st;
  }
  if (Status st = file->check_finite(); !st.ok()) {
    return Status::invalid_argument(where + ": " + st.message());
  }
  // The trainer's layout (its trainable flags and the layout object the run shares) with the
  // file's values.
  std::memcpy(init.data(), file->data(), static_cast<size_t>(init.num_bytes()));
  return init;
}

}  // namespace cohort
