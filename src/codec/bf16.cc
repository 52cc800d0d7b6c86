#include "cohort/codec/bf16.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "cohort/core/multiversion.h"

namespace cohort::codec {

uint16_t float_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f7f7fffu) {  // would round to Inf (or is Inf/NaN)
    return static_cast<uint16_t>(((x >> 16) & 0x8000u) |
                                 ((x & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : 0x7f7fu));
  }
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

namespace {

COHORT_MULTIVERSION void encode_run(const float* v, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = float_to_bf16(v[i]);
}
COHORT_MULTIVERSION void decode_run(const uint16_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(in[i]);
}

class Bf16 final : public ValueCodec {
 public:
  std::string spec() const override { return "bf16"; }
  int64_t encoded_bytes(int64_t n) const override { return 2 * n; }
  void encode(std::span<const float> v, int64_t, const uint32_t*, uint32_t, uint64_t,
              const float*, uint8_t* out) const override {
    uint16_t tmp[1024];
    for (size_t i = 0; i < v.size(); i += 1024) {
      const size_t n = std::min<size_t>(1024, v.size() - i);
      encode_run(v.data() + i, static_cast<int64_t>(n), tmp);
      std::memcpy(out + 2 * i, tmp, 2 * n);
    }
  }
  Status decode(const uint8_t* in, const float*, std::span<float> out) const override {
    uint16_t tmp[1024];
    for (size_t i = 0; i < out.size(); i += 1024) {
      const size_t n = std::min<size_t>(1024, out.size() - i);
      std::memcpy(tmp, in + 2 * i, 2 * n);
      decode_run(tmp, static_cast<int64_t>(n), out.data() + i);
    }
    return Status();
  }
};

}  // namespace

std::unique_ptr<ValueCodec> make_bf16() { return std::make_unique<Bf16>(); }

}  // namespace cohort::codec
