// bf16: bfloat16 (the upper half of a float32), round to nearest even. Same range as float32
// (magnitudes that would round to infinity saturate at the largest bfloat16); relative error
// <= 2^-8.
#pragma once

#include <cstdint>
#include <memory>

#include "cohort/codec/codec.h"

namespace cohort::codec {
std::unique_ptr<ValueCodec> make_bf16();
uint16_t float_to_bf16(float f);
float bf16_to_float(uint16_t h);
}  // namespace cohort::codec
