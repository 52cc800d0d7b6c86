// ArrayRecord: a model's named float32 tensors in one contiguous, 64-byte aligned buffer.
//
// Strategies, codecs and aggregation kernels see a model as one flat vector (so every vector
// op is one loop over one buffer) while trainers and the wire format see named tensors with
// shapes. The name -> (shape, offset) table is an ArrayLayout, immutable and shared by every
// record of the same model, so copying a record copies floats, never the table.
//
// Trainable parameters and non-trainable buffers (BatchNorm statistics) are both stored; each
// ArraySpec says which it is (docs/strategies.md, "Sign convention").
//
// Thread safety: const methods may be called concurrently; mutation needs external
// synchronisation. Records are cheap to move and explicit to copy (clone()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cohort/core/status.h"

namespace cohort {

// "[2,3]" for error messages.
std::string shape_string(const std::vector<int64_t>& shape);

struct ArraySpec {
  std::string name;
  std::vector<int64_t> shape;
  bool trainable = true;
  // Filled in by ArrayLayout::create: position of the first element in the flat buffer, and
  // the number of elements (product of shape; 1 for a scalar).
  int64_t offset = 0;
  int64_t numel = 0;
};

class ArrayLayout {
 public:
  // Validates names (non-empty, unique) and shapes (every dimension >= 0) and computes
  // offsets. Returns InvalidArgument naming the offending entry.
  static Result<std::shared_ptr<const ArrayLayout>> create(std::vector<ArraySpec> specs);

  const std::vector<ArraySpec>& specs() const { return specs_; }
  size_t num_arrays() const { return specs_.size(); }
  int64_t numel() const { return numel_; }
  int64_t num_bytes() const { return numel_ * static_cast<int64_t>(sizeof(float)); }
  // Index of the array called `name`, or -1.
  int64_t find(const std::string& name) const;
  // True when both layouts have the same names, shapes and order.
  bool same_as(const ArrayLayout& other) const;
  // "fc1.weight[200,784] fc1.bias[200] ..." for error messages.
  std::string describe() const;

 private:
  std::vector<ArraySpec> specs_;
  int64_t numel_ = 0;
};

class ArrayRecord {
 public:
  ArrayRecord() = default;
  // A zero-filled record with this layout.
  explicit ArrayRecord(std::shared_ptr<const ArrayLayout> layout);
  ArrayRecord(ArrayRecord&&) noexcept = default;
  ArrayRecord& operator=(ArrayRecord&&) noexcept = default;
  ArrayRecord(const ArrayRecord&) = delete;  // copies are explicit: clone()
  ArrayRecord& operator=(const ArrayRecord&) = delete;

  ArrayRecord clone() const;
  // Copies `other`'s values into this record. InvalidArgument if the layouts differ.
  Status copy_from(const ArrayRecord& other);

  bool empty() const { return layout_ == nullptr; }
  const std::shared_ptr<const ArrayLayout>& layout() const { return layout_; }
  int64_t numel() const { return layout_ ? layout_->numel() : 0; }
  int64_t num_bytes() const { return numel() * static_cast<int64_t>(sizeof(float)); }

  // The whole model as one flat vector.
  std::span<float> flat() { return {data_.get(), static_cast<size_t>(numel())}; }
  std::span<const float> flat() const { return {data_.get(), static_cast<size_t>(numel())}; }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }

  // One named array (index into layout()->specs()).
  std::span<float> array(size_t i);
  std::span<const float> array(size_t i) const;

  // InvalidArgument unless both records have the same layout; names the first mismatch.
  Status check_same_layout(const ArrayRecord& other, std::string_view what) const;
  // InvalidArgument naming the first array holding a NaN or an infinity.
  Status check_finite() const;
  // Stable 64-bit hash of layout and values (FNV-1a over names, shapes and float bits),
  // the same on every run and thread count; used for determinism checks. Hex string form.
  uint64_t hash() const;
  std::string hash_hex() const;

 private:
  struct AlignedDelete {
    void operator()(float* p) const;
  };
  std::shared_ptr<const ArrayLayout> layout_;
  std::unique_ptr<float[], AlignedDelete> data_;
};

}  // namespace cohort
