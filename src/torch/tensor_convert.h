// Moving values between an ArrayRecord and a model's tensors. Private to src/torch.
//
// A model's tensors are listed in layout order (named_parameters(), then named_buffers());
// array i of a record with that layout is tensor i. Values move with one memcpy per tensor,
// straight between the record's buffer and the tensor's storage: no temporaries.
//
// Thread safety: none beyond the records' and tensors' own; one thread per model.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cohort/core/array_record.h"

namespace cohort::libtorch {

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
  bool trainable = true;
};

// The layout of `tensors` (names, shapes, trainable flags, in order). InvalidArgument if a
// tensor is not a contiguous float32 CPU tensor, or for duplicate names.
Result<std::shared_ptr<const ArrayLayout>> layout_of(std::span<const NamedTensor> tensors);

// OK when `record` has the same array names and shapes, in the same order, as `layout`;
// otherwise InvalidArgument "<what>: ..." naming the first array that differs.
Status check_layout(const ArrayLayout& layout, const ArrayRecord& record, std::string_view what);

// tensor i <- array i. The record's layout must match the tensors (see check_layout).
void copy_record_to_tensors(const ArrayRecord& record, std::span<const at::Tensor> tensors);
// array i <- tensor i.
void copy_tensors_to_record(std::span<const at::Tensor> tensors, ArrayRecord& record);

// The gradient of (mu/2) ||w - anchor||^2, added in place: grad(w_i) += mu * (w_i - anchor_i)
// for the first params.size() arrays of `anchor`. One fused pass per tensor, no temporaries.
// Every param must have a defined, contiguous float32 gradient.
void add_proximal_gradient(std::span<const at::Tensor> params, const ArrayRecord& anchor, float mu);

// grad(w_i) += correction_i for the first params.size() arrays of `correction` (the
// parameters; buffers have no gradient). Same requirements as add_proximal_gradient.
void add_to_gradients(std::span<const at::Tensor> params, const ArrayRecord& correction);

}  // namespace cohort::libtorch
