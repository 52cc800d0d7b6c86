#include "torch/tensor_convert.h"

#include <cstring>

namespace cohort::libtorch {
Result<std::shared_ptr<const ArrayLayout>> layout_of(std::span<const NamedTensor> tensors) {
  std::vector<ArraySpec> specs;
  specs.reserve(tensors.size());
  for (const NamedTensor& t : tensors) {
    // memcpy in and out relies on plain dense float storage.
    if (!t.tensor.defined() || t.tensor.scalar_type() != at::kFloat || !t.tensor.is_cpu() ||
        !t.tensor.is_contiguous()) {
      return Status::invalid_argument("model tensor '" + t.name +
                                      "': not a contiguous float32 CPU tensor");
    }
    ArraySpec s;
    s.name = t.name;
    const auto sizes = t.tensor.sizes();
    s.shape.assign(sizes.begin(), sizes.end());
    s.trainable = t.trainable;
    specs.push_back(std::move(s));
  }
  return ArrayLayout::create(std::move(specs));
}

Status check_layout(const ArrayLayout& layout, const ArrayRecord& record, std::string_view what) {
  if (record.empty()) return Status::invalid_argument(std::string(what) + ": empty record");
  if (record.layout().get() == &layout) return Status();
  const auto& want = layout.specs();
  const auto& got = record.layout()->specs();
  for (size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
    if (i >= want.size()) {
      return Status::invalid_argument(std::string(what) + ": unexpected array '" + got[i].name +
                                      "' (model arrays: " + layout.describe() + ")");
    }
    if (i >= got.size()) {
      return Status::invalid_argument(std::string(what) + ": missing array '" + want[i].name +
                                      "' (model arrays: " + layout.describe() + ")");
    }
    if (want[i].name != got[i].name) {
      return Status::invalid_argument(std::string(what) + ": array #" + std::to_string(i) +
                                      " is '" + got[i].name + "', expected '" + want[i].name + "'");
    }
    if (want[i].shape != got[i].shape) {
      return Status::invalid_argument(std::string(what) + ": array '" + want[i].name +
                                      "' has shape " + shape_string(got[i].shape) + ", expected " +
                                      shape_string(want[i].shape));
    }
  }
  return Status();
}

void copy_record_to_tensors(const ArrayRecord& record, std::span<const at::Tensor> tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::span<const float> src = record.array(i);
    std::memcpy(tensors[i].data_ptr<float>(), src.data(), src.size_bytes());
  }
}

void copy_tensors_to_record(std::span<const at::Tensor> tensors, ArrayRecord& record) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::span<float> dst = record.array(i);
    std::memcpy(dst.data(), tensors[i].data_ptr<float>(), dst.size_bytes());
  }
}

void add_proximal_gradient(std::span<const at::Tensor> params, const ArrayRecord& anchor,
                           float mu) {
  for (size_t i = 0; i < params.size(); ++i) {
    const float* w = params[i].data_ptr<float>();
    float* g = params[i].grad().data_ptr<float>();
    const std::span<const float> a = anchor.array(i);
    const size_t n = a.size();
    // Restrict-qualified locals let the compiler vectorise this loop.
    const float* __restrict wp = w;
    const float* __restrict ap = a.data();
    float* __restrict gp = g;
    for (size_t j = 0; j < n; ++j) gp[j] += mu * (wp[j] - ap[j]);
  }
}

void add_to_gradients(std::span<const at::Tensor> params, const ArrayRecord& correction) {
  for (size_t i = 0; i < params.size(); ++i) {
    float* __restrict gp = params[i].grad().data_ptr<float>();
    const std::span<const float> c = correction.array(i);
    const float* __restrict cp = c.data();
    const size_t n = c.size();
    for (size_t j = 0; j < n; ++j) gp[j] += cp[j];
  }
}

}  // namespace cohort::libtorch
