// f32: values as they are (4 bytes each, little-endian). The value codec of chains that name
// none, e.g. "topk:0.01" alone or "zstd" alone.
#pragma once

#include <memory>

#include "cohort/codec/codec.h"

namespace cohort::codec {
std::unique_ptr<ValueCodec> make_f32();
}
