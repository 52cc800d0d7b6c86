// fp16: IEEE half precision, round to nearest even. Magnitudes beyond 65504 (the largest
// half) are saturated to it; magnitudes below 2^-24 round to zero. Relative error <= 2^-11 for
// normal halves.
#pragma once

#include <cstdint>
#include <memory>

#include "cohort/codec/codec.h"

namespace cohort::codec {
std::unique_ptr<ValueCodec> make_fp16();
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
}  // namespace cohort::codec
