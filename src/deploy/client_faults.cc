#include "deploy/client_faults.h"

#include <limits>
#include <string>

namespace cohort::deploy {

Result<InjectedFault> parse_injected_fault(const std::string& name) {
  if (name == "none" || name.empty()) return InjectedFault::kNone;
  if (name == "wrong-shape") return InjectedFault::kWrongShape;
  if (name == "nan") return InjectedFault::kNaN;
  return Status::invalid_argument("--inject-fault: unknown fault '" + name +
                                  "' (known: none, wrong-shape, nan)");
}

const char* inject_fault(InjectedFault fault, const ArrayLayout& layout, std::span<float> delta,
                         ::cohort::v1::UpdateHeader* header, wire::ByteRange* payload) {
  if (fault == InjectedFault::kNaN) {
    delta[0] = std::numeric_limits<float>::quiet_NaN();
    return "nan";
  }
  if (fault == InjectedFault::kWrongShape) {
    // First array's first dimension one smaller, in the header and the payload.
    ::cohort::v1::ArraySpec* a0 = header->mutable_layout()->mutable_arrays(0);
    const ArraySpec& s0 = layout.specs()[0];
    const int64_t d0 = s0.shape.empty() ? 1 : s0.shape[0];
    const int64_t removed = d0 > 0 ? s0.numel / d0 : 0;
    if (a0->shape_size() > 0) a0->set_shape(0, d0 - 1);
    payload->size -= removed * static_cast<int64_t>(sizeof(float));
    return "wrong-shape";
  }
  return nullptr;
}

}  // namespace cohort::deploy
