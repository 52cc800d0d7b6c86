// int8 / int4 / int2: stochastic uniform quantization with a scale per block of `block`
// consecutive values (QSGD-style with the block's max |v| as its scale, as in per-block int8
// schemes). With s = 2^(bits-1) - 1 levels per sign (127, 7, 1), a value v of a block with
// scale m becomes q = floor(v * s / m + u), u uniform in [0, 1) keyed by (seed, element), so
// E[q * m / s] = v (unbiased; u has 24 random bits) and |q * m / s - v| < m / s. Stored: the
// block's float32 scale, then the codes q + s packed little-end first (2, 4 or 8 per byte...
// i.e. one byte, a nibble, or two bits each).
#pragma once

#include <memory>

#include "cohort/codec/codec.h"

namespace cohort::codec {
inline constexpr int64_t kDefaultBlock = 256;
// bits in {2, 4, 8}; block in [8, 65536].
std::unique_ptr<ValueCodec> make_quantizer(int bits, int64_t block = kDefaultBlock);
}  // namespace cohort::codec
