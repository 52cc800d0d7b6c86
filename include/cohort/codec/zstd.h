// zstd[:level]: lossless compression of every frame with Debian's libzstd (levels 1..19,
// default 3). Decompression checks the frame's content size against the exact size the
// receiver expects, so a frame can neither be short nor expand beyond it.
#pragma once

#include <memory>

#include "cohort/codec/codec.h"

namespace cohort::codec {
inline constexpr int kZstdDefaultLevel = 3;
std::unique_ptr<ByteCodec> make_zstd(int level = kZstdDefaultLevel);
}  // namespace cohort::codec
