// Several models in one flat vector (a run with `models:`, trainer/multi_trainer.h; FedAST):
// every array is named "<model>/<array>" and each model's arrays are consecutive, so a model is
// one range [begin, end) of the flat vector.
//
// Thread safety: plain functions over the values they are given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"

namespace cohort {

struct ModelPart {
  std::string name;
  size_t first_array = 0;  // [first_array, end_array) of the layout's arrays
  size_t end_array = 0;
  int64_t begin = 0;  // [begin, end) of the flat vector
  int64_t end = 0;
  int64_t numel() const { return end - begin; }
};

// The models of `layout`, in order; empty when no array name holds a '/' (a single model).
// InvalidArgument naming the array when some names have a model prefix and others not, or when
// a model's arrays are not consecutive.
Result<std::vector<ModelPart>> model_parts(const ArrayLayout& layout);

// The layout of one model: its arrays with the "<model>/" prefix removed.
Result<std::shared_ptr<const ArrayLayout>> part_layout(const ArrayLayout& layout,
                                                       const ModelPart& part);

}  // namespace cohort
