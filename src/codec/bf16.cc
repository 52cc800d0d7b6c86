#include "cohort/codec/bf16.h"

#include <algorithm>
#include <bit>

#include "cohort/core/multiversion.h"
#include "half_codec.h"

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

}  // namespace

std::unique_ptr<ValueCodec> make_bf16() {
  return detail::make_half_codec("bf16", encode_run, decode_run);
}

}  // namespace cohort::codec
