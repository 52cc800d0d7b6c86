#include "cohort/core/array_record.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_set>

#include "cohort/core/hash.h"
#include "cohort/core/ops.h"

namespace cohort {

Result<std::shared_ptr<const ArrayLayout>> ArrayLayout::create(std::vector<ArraySpec> specs) {
  auto layout = std::make_shared<ArrayLayout>();
  std::unordered_set<std::string> seen;
  int64_t offset = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    ArraySpec& s = specs[i];
    if (s.name.empty()) {
      return Status::invalid_argument("array #" + std::to_string(i) + ": empty name");
    }
    if (!seen.insert(s.name).second) {
      return Status::invalid_argument("array '" + s.name + "': duplicate name");
    }
    int64_t n = 1;
    for (int64_t d : s.shape) {
      if (d < 0) return Status::invalid_argument("array '" + s.name + "': negative dimension");
      n *= d;
    }
    s.offset = offset;
    s.numel = n;
    offset += n;
  }
  layout->specs_ = std::move(specs);
  layout->numel_ = offset;
  return std::shared_ptr<const ArrayLayout>(std::move(layout));
}

int64_t ArrayLayout::find(const std::string& name) const {
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name == name) return static_cast<int64_t>(i);
  }
  return -1;
}

bool ArrayLayout::same_as(const ArrayLayout& other) const {
  if (this == &other) return true;
  if (specs_.size() != other.specs_.size()) return false;
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name != other.specs_[i].name || specs_[i].shape != other.specs_[i].shape) {
      return false;
    }
  }
  return true;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string ArrayLayout::describe() const {
  std::string s;
  for (const auto& spec : specs_) {
    if (!s.empty()) s += " ";
    s += spec.name + shape_string(spec.shape);
  }
  return s;
}

void ArrayRecord::AlignedDelete::operator()(float* p) const { std::free(p); }

ArrayRecord::ArrayRecord(std::shared_ptr<const ArrayLayout> layout) : layout_(std::move(layout)) {
  const size_t bytes = static_cast<size_t>(layout_->num_bytes());
  // aligned_alloc needs a size that is a multiple of the alignment.
  const size_t padded = ((bytes + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, padded == 0 ? 64 : padded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, padded == 0 ? 64 : padded);
  data_.reset(static_cast<float*>(p));
}

ArrayRecord ArrayRecord::clone() const {
  if (empty()) return ArrayRecord();
  ArrayRecord r(layout_);
  std::memcpy(r.data(), data(), static_cast<size_t>(num_bytes()));
  return r;
}

Status ArrayRecord::copy_from(const ArrayRecord& other) {
  COHORT_RETURN_IF_ERROR(check_same_layout(other, "copy source"));
  std::memcpy(data(), other.data(), static_cast<size_t>(num_bytes()));
  return Status();
}

std::span<float> ArrayRecord::array(size_t i) {
  const ArraySpec& s = layout_->specs()[i];
  return {data_.get() + s.offset, static_cast<size_t>(s.numel)};
}

std::span<const float> ArrayRecord::array(size_t i) const {
  const ArraySpec& s = layout_->specs()[i];
  return {data_.get() + s.offset, static_cast<size_t>(s.numel)};
}

Status ArrayRecord::check_same_layout(const ArrayRecord& other, std::string_view what) const {
  if (empty() || other.empty()) {
    return Status::invalid_argument(std::string(what) + ": empty record");
  }
  if (layout_ == other.layout_) return Status();
  const auto& a = layout_->specs();
  const auto& b = other.layout_->specs();
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i >= a.size()) {
      return Status::invalid_argument(std::string(what) + ": unexpected array '" + b[i].name + "'");
    }
    if (i >= b.size()) {
      return Status::invalid_argument(std::string(what) + ": missing array '" + a[i].name + "'");
    }
    if (a[i].name != b[i].name) {
      return Status::invalid_argument(std::string(what) + ": array #" + std::to_string(i) +
                                      " is '" + b[i].name + "', expected '" + a[i].name + "'");
    }
    if (a[i].shape != b[i].shape) {
      return Status::invalid_argument(std::string(what) + ": array '" + a[i].name + "' has shape " +
                                      shape_string(b[i].shape) + ", expected " +
                                      shape_string(a[i].shape));
    }
  }
  return Status();
}

Status ArrayRecord::check_finite() const {
  if (empty() || ops::all_finite(flat())) return Status();
  // Something is not finite: find the first such element to name it.
  for (size_t i = 0; i < layout_->num_arrays(); ++i) {
    auto a = array(i);
    for (size_t j = 0; j < a.size(); ++j) {
      if (!std::isfinite(a[j])) {
        return Status::invalid_argument("array '" + layout_->specs()[i].name + "' element " +
                                        std::to_string(j) + " is " +
                                        (std::isnan(a[j]) ? "NaN" : "infinite"));
      }
    }
  }
  return Status();
}

uint64_t ArrayRecord::hash() const {
  uint64_t h = kFnvOffset;
  auto mix = [&h](const void* p, size_t n) {
    h = fnv1a64(p, n, h);
  };
  if (empty()) return h;
  for (const auto& s : layout_->specs()) {
    mix(s.name.data(), s.name.size());
    mix(s.shape.data(), s.shape.size() * sizeof(int64_t));
  }
  mix(data(), static_cast<size_t>(num_bytes()));
  return h;
}

std::string ArrayRecord::hash_hex() const {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(hash()));
  return buf;
}

}  // namespace cohort
