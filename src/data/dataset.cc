#include "cohort/data/dataset.h"

#include <numeric>

namespace cohort {

Status Dataset::validate() const {
  if (num_classes < 1) {
    return Status::invalid_argument("dataset '" + name + "': num_classes must be >= 1");
  }
  if (static_cast<int64_t>(features.size()) != size() * sample_numel()) {
    return Status::invalid_argument("dataset '" + name + "': " + std::to_string(features.size()) +
                                    " feature values for " + std::to_string(size()) +
                                    " examples of " + std::to_string(sample_numel()));
  }
  if (!groups.empty() && static_cast<int64_t>(groups.size()) != size()) {
    return Status::invalid_argument("dataset '" + name + "': " + std::to_string(groups.size()) +
                                    " group ids for " + std::to_string(size()) + " examples");
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    if (groups[i] < 0 || groups[i] >= static_cast<int32_t>(group_names.size())) {
      return Status::invalid_argument("dataset '" + name + "': example " + std::to_string(i) +
                                      " has group " + std::to_string(groups[i]) + " outside [0, " +
                                      std::to_string(group_names.size()) + ")");
    }
  }
  for (int64_t i = 0; i < size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      return Status::invalid_argument("dataset '" + name + "': example " + std::to_string(i) +
                                      " has label " + std::to_string(labels[i]) + " outside [0, " +
                                      std::to_string(num_classes) + ")");
    }
  }
  return Status();
}

Shard Shard::all(std::shared_ptr<const Dataset> data) {
  Shard s;
  s.indices.resize(static_cast<size_t>(data->size()));
  std::iota(s.indices.begin(), s.indices.end(), 0);
  s.data = std::move(data);
  return s;
}

Shard Shard::blank() {
  auto d = std::make_shared<Dataset>();
  d->name = "blank";
  d->sample_shape = {1};
  d->num_classes = 1;
  d->features = {0.0f};
  d->labels = {0};
  return all(std::move(d));
}

}  // namespace cohort
