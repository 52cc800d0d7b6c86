#include "cohort/runtime/model_file.h"

#include <cstring>

#include "cohort/core/ops.h"
#include "cohort/runtime/checkpoint.h"

namespace cohort {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Empty when `file` has `want`'s arrays, in order, with the same shapes; else the first
// difference.
std::string layout_difference(const ArrayLayout& file, const ArrayLayout& want) {
  const auto& f = file.specs();
  const auto& w = want.specs();
  for (size_t i = 0; i < std::min(f.size(), w.size()); ++i) {
    if (f[i].name != w[i].name) {
      return "array " + std::to_string(i) + " is '" + f[i].name + "' in the file, '" + w[i].name +
             "' in the model";
    }
    if (f[i].shape != w[i].shape) {
      return "array '" + w[i].name + "' has shape " + shape_text(f[i].shape) +
             " in the file, the model has " + shape_text(w[i].shape);
    }
  }
  if (f.size() != w.size()) {
    return "the file has " + std::to_string(f.size()) + " arrays, the model " +
           std::to_string(w.size());
  }
  return "";
}

}  // namespace

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
  const std::string diff = layout_difference(*file->layout(), *init.layout());
  if (!diff.empty()) {
    return Status::invalid_argument("model.init: " + init_path +
                                    ": not a model of this configuration: " + diff);
  }
  if (!ops::all_finite(file->flat())) {
    return Status::invalid_argument("model.init: " + init_path +
                                    ": the model has non-finite values (NaN or Inf)");
  }
  // The trainer's layout (its trainable flags and the layout object the run shares) with the
  // file's values.
  std::memcpy(init.data(), file->data(), static_cast<size_t>(init.num_bytes()));
  return init;
}

}  // namespace cohort
