#include "cohort/codec/raw.h"

#include <cstring>

namespace cohort::codec {
namespace {

class F32 final : public ValueCodec {
 public:
  std::string spec() const override { return "f32"; }
  bool lossless() const override { return true; }
  int64_t encoded_bytes(int64_t n) const override { return 4 * n; }
  void encode(std::span<const float> v, int64_t, const uint32_t*, uint32_t, uint64_t,
              const float*, uint8_t* out) const override {
    if (!v.empty()) std::memcpy(out, v.data(), v.size() * sizeof(float));
  }
  Status decode(const uint8_t* in, const float*, std::span<float> out) const override {
    if (!out.empty()) std::memcpy(out.data(), in, out.size() * sizeof(float));
    return Status();
  }
};

}  // namespace

std::unique_ptr<ValueCodec> make_f32() { return std::make_unique<F32>(); }

}  // namespace cohort::codec
