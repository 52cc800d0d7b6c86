// The ValueCodec of the 16-bit float formats (fp16.cc, bf16.cc): two bytes per value, converted
// by a format's vectorised run functions a block at a time through an aligned staging buffer
// (a payload's bytes need not be aligned).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cohort/codec/codec.h"

namespace cohort::codec::detail {

using HalfEncodeRun = void (*)(const float* in, int64_t n, uint16_t* out);
using HalfDecodeRun = void (*)(const uint16_t* in, int64_t n, float* out);

std::unique_ptr<ValueCodec> make_half_codec(std::string name, HalfEncodeRun encode,
                                            HalfDecodeRun decode);

}  // namespace cohort::codec::detail
