// Fuzz target: every codec's decoder on raw bytes, without the payload's CRC-32 in front (which
// would stop almost every mutation before it reaches them). The first byte picks the codec,
// the second the value count; then the side information (terngrad's scaler, k-means
// centroids) as float32s, then the codes. Side information is checked as a receiver does
// (check_side) and a rejected one ends the input. zstd gets the rest as a frame and a claimed
// size. Decoders may refuse; a crash, a read beyond the codes, or a non-finite value from
// accepted input is a finding.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cohort/codec/bf16.h"
#include "cohort/codec/fp16.h"
#include "cohort/codec/kmeans.h"
#include "cohort/codec/quantize.h"
#include "cohort/codec/raw.h"
#include "cohort/codec/terngrad.h"
#include "cohort/codec/zstd.h"

namespace {

using cohort::codec::ValueCodec;

const std::vector<std::unique_ptr<ValueCodec>>& codecs() {
  static const std::vector<std::unique_ptr<ValueCodec>> v = [] {
    std::vector<std::unique_ptr<ValueCodec>> c;
    c.push_back(cohort::codec::make_f32());
    c.push_back(cohort::codec::make_fp16());
    c.push_back(cohort::codec::make_bf16());
    c.push_back(cohort::codec::make_quantizer(8, 8));
    c.push_back(cohort::codec::make_quantizer(4, 16));
    c.push_back(cohort::codec::make_quantizer(2, 256));
    c.push_back(cohort::codec::make_terngrad());
    c.push_back(cohort::codec::make_kmeans(3));
    c.push_back(cohort::codec::make_kmeans(16));
    return c;
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t which = data[0] % (codecs().size() + 1);
  const size_t n = data[1];
  data += 2;
  size -= 2;
  if (which == codecs().size()) {  // zstd: claimed size n * 64
    std::vector<uint8_t> out(n * 64);
    (void)cohort::codec::make_zstd()->decompress(
        std::string_view(reinterpret_cast<const char*>(data), size), out);
    return 0;
  }
  const ValueCodec& c = *codecs()[which];
  const size_t side_bytes = 4 * static_cast<size_t>(c.side_floats());
  const size_t need = side_bytes + static_cast<size_t>(c.encoded_bytes(static_cast<int64_t>(n)));
  if (size < need) return 0;
  std::vector<float> side(static_cast<size_t>(c.side_floats()));
  if (side_bytes > 0) std::memcpy(side.data(), data, side_bytes);
  if (!c.check_side(side.data()).ok()) return 0;
  // The codes in a buffer of exactly their size, so reading beyond them is caught by ASan.
  std::vector<uint8_t> codes(data + side_bytes, data + need);
  std::vector<float> out(n);
  if (!c.decode(codes.data(), side.data(), out).ok()) return 0;
  // f32, fp16 and bf16 carry any bit pattern: their non-finite values are the payload
  // decoder's to refuse. The others are built from finite scales and levels.
  if (which >= 3) {
    for (float v : out) {
      if (!std::isfinite(v)) __builtin_trap();
    }
  }
  return 0;
}
