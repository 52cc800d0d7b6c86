#include "cohort/codec/quantize.h"

#include <algorithm>
#include <cmath>

#include "bits.h"
#include "cohort/core/multiversion.h"
#include "cohort/core/ops.h"

namespace cohort::codec {
namespace {

using detail::fmix32;

// codes[i] = q_i + s = floor(v_i * inv + u_i) + s for the values of one block. The argument
// of the conversion, v * inv + u + s + 1, is in [0, 2s + 2) for |v * inv| <= s, so truncation is
// floor and no rounding-mode instruction is needed (the baseline clone vectorises too).
COHORT_MULTIVERSION void quantize_dense(const float* __restrict v, int64_t n, float inv, float s,
                                        uint32_t key, uint32_t lo, uint8_t* __restrict codes) {
  const float hi = 2.0f * s;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t h = fmix32((lo + static_cast<uint32_t>(i)) * 0x9e3779b1u ^ key);
    const float u = static_cast<float>(static_cast<int32_t>(h >> 8)) * (1.0f / 16777216.0f);
    float c = static_cast<float>(static_cast<int32_t>(v[i] * inv + u + (s + 1.0f))) - 1.0f;
    c = std::min(hi, std::max(0.0f, c));
    codes[i] = static_cast<uint8_t>(static_cast<int32_t>(c));
  }
}

void quantize_sparse(const float* v, int64_t n, float inv, float s, uint32_t key,
                     const uint32_t* index, uint32_t base, uint8_t* codes) {
  const float hi = 2.0f * s;
  for (int64_t i = 0; i < n; ++i) {
    const float u = detail::uniform24(key, base + index[i]);
    float c = static_cast<float>(static_cast<int32_t>(v[i] * inv + u + (s + 1.0f))) - 1.0f;
    c = std::min(hi, std::max(0.0f, c));
    codes[i] = static_cast<uint8_t>(static_cast<int32_t>(c));
  }
}

// Packs codes of `bits` bits, little end first, into whole bytes (n a multiple of 8 / bits,
// or the run's last block); returns whether any code is all ones (2s + 1: out of range) when
// unpacking.
template <int kBits>
void pack_codes(const uint8_t* __restrict codes, int64_t n, uint8_t* __restrict out) {
  constexpr int kPer = 8 / kBits;
  const int64_t whole = n / kPer;
  for (int64_t b = 0; b < whole; ++b) {
    uint8_t byte = 0;
    for (int j = 0; j < kPer; ++j) byte |= static_cast<uint8_t>(codes[b * kPer + j] << (j * kBits));
    out[b] = byte;
  }
  if (whole * kPer < n) {
    uint8_t byte = 0;
    for (int64_t i = whole * kPer; i < n; ++i) {
      byte |= static_cast<uint8_t>(codes[i] << ((i - whole * kPer) * kBits));
    }
    out[whole] = byte;
  }
}

// Byte by byte (each byte's kPer codes at fixed shifts), so the loop vectorises.
template <int kBits>
COHORT_MULTIVERSION bool unpack_codes(const uint8_t* __restrict in, int64_t n,
                                      uint8_t* __restrict codes) {
  constexpr int kPer = 8 / kBits;
  constexpr uint8_t kMask = (1u << kBits) - 1;
  uint8_t bad = 0;
  const int64_t whole = n / kPer;
  for (int64_t b = 0; b < whole; ++b) {
    const uint8_t x = in[b];
    for (int j = 0; j < kPer; ++j) {
      const uint8_t c = static_cast<uint8_t>((x >> (j * kBits)) & kMask);
      bad |= static_cast<uint8_t>(c == kMask);
      codes[b * kPer + j] = c;
    }
  }
  for (int64_t i = whole * kPer; i < n; ++i) {
    const uint8_t c = static_cast<uint8_t>((in[whole] >> ((i - whole * kPer) * kBits)) & kMask);
    bad |= static_cast<uint8_t>(c == kMask);
    codes[i] = c;
  }
  return bad != 0;
}

// Whether any byte is 255 (int8's out-of-range code), without copying the codes.
COHORT_MULTIVERSION bool any_all_ones(const uint8_t* __restrict in, int64_t n) {
  uint8_t all = 0;
  for (int64_t i = 0; i < n; ++i) all |= static_cast<uint8_t>(in[i] == 0xff);
  return all != 0;
}


COHORT_MULTIVERSION void dequantize(const uint8_t* __restrict codes, int64_t n, float s,
                                    float step, float* __restrict out) {
  for (int64_t i = 0; i < n; ++i) out[i] = (static_cast<float>(codes[i]) - s) * step;
}

constexpr float kNearMaxFloat = 0x1p127f;  // half the largest float

class Quantizer final : public ValueCodec {
 public:
  Quantizer(int bits, int64_t block)
      : bits_(bits), block_(block), s_(static_cast<float>((1 << (bits - 1)) - 1)) {}

  std::string spec() const override {
    return "int" + std::to_string(bits_) + ":" + std::to_string(block_);
  }
  int64_t encoded_bytes(int64_t n) const override {
    const int64_t blocks = (n + block_ - 1) / block_;
    return 4 * blocks + (n * bits_ + 7) / 8;
  }

  void encode(std::span<const float> v, int64_t first, const uint32_t* index, uint32_t base,
              uint64_t seed, const float*, uint8_t* out) const override {
    const int64_t n = static_cast<int64_t>(v.size());
    const int64_t blocks = (n + block_ - 1) / block_;
    const uint64_t element0 = index ? base : static_cast<uint64_t>(first);
    const uint32_t key = detail::run_key(seed, element0);
    uint8_t* packed = out + 4 * blocks;
    std::vector<uint8_t> scratch(static_cast<size_t>(bits_ == 8 ? 0 : std::min(n, block_)));
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t lo = b * block_;
      const int64_t m = std::min(block_, n - lo);
      // The values are finite (the payload checks them first): ops::max_abs is their largest |v|.
      const float scale = ops::max_abs(v.subspan(static_cast<size_t>(lo), static_cast<size_t>(m)));
      detail::store_f32(out + 4 * b, scale);
      const float inv = scale > 0 ? s_ / scale : 0.0f;
      // int8 codes are the packed bytes: written in place.
      uint8_t* codes = bits_ == 8 ? packed + lo : scratch.data();
      if (index) {
        quantize_sparse(v.data() + lo, m, inv, s_, key, index + lo, base, codes);
      } else {
        quantize_dense(v.data() + lo, m, inv, s_, key,
                       static_cast<uint32_t>(static_cast<uint64_t>(first + lo)), codes);
      }
      if (bits_ != 8) pack(codes, lo, m, packed);
    }
  }

  Status decode(const uint8_t* in, const float*, std::span<float> out) const override {
    const int64_t n = static_cast<int64_t>(out.size());
    const int64_t blocks = (n + block_ - 1) / block_;
    const uint8_t* packed = in + 4 * blocks;
    std::vector<uint8_t> codes(static_cast<size_t>(bits_ == 8 ? 0 : std::min(n, block_)));
    const uint8_t max_code = static_cast<uint8_t>(2 * s_);
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t lo = b * block_;
      const int64_t m = std::min(block_, n - lo);
      const float scale = detail::load_f32(in + 4 * b);
      if (!(scale >= 0.0f) || !std::isfinite(scale)) {
        return Status::invalid_argument(spec() + ": block " + std::to_string(b) + " has scale " +
                                        std::to_string(scale) +
                                        " (must be finite and >= 0)");
      }
      // int8 codes are the packed bytes: read in place.
      const uint8_t* c = bits_ == 8 ? packed + lo : codes.data();
      if (bits_ == 8 ? any_all_ones(c, m) : unpack(packed, lo, m, codes.data())) {
        for (int64_t i = 0; i < m; ++i) {
          if (c[i] > max_code) {
            return Status::invalid_argument(
                spec() + ": code " + std::to_string(c[i]) + " of value " + std::to_string(lo + i) +
                " is out of range [0, " + std::to_string(max_code) + "]");
          }
        }
      }
      float* dst = out.data() + lo;
      dequantize(c, m, s_, scale / s_, dst);
      // |value| <= |code - s| * (scale / s), at most the scale up to rounding: finite unless the
      // scale is within rounding of the largest float (then checked here; decodes_finite()).
      if (scale >= kNearMaxFloat) {
        for (int64_t i = 0; i < m; ++i) {
          if (!std::isfinite(dst[i])) {
            return Status::invalid_argument(spec() + ": value " + std::to_string(lo + i) +
                                            " decodes to a non-finite value (block scale " +
                                            std::to_string(scale) + ")");
          }
        }
      }
    }
    return Status();
  }
  bool decodes_finite() const override { return true; }

 private:
  // Codes of values [lo, lo + m) of the run into the packed area (lo is a multiple of the
  // block, so of 8: whole bytes).
  void pack(const uint8_t* codes, int64_t lo, int64_t m, uint8_t* packed) const {
    if (bits_ == 8) {
      std::copy(codes, codes + m, packed + lo);
    } else if (bits_ == 4) {
      pack_codes<4>(codes, m, packed + lo / 2);
    } else {
      pack_codes<2>(codes, m, packed + lo / 4);
    }
  }
  // The codes back; true when one is out of range.
  bool unpack(const uint8_t* packed, int64_t lo, int64_t m, uint8_t* codes) const {
    if (bits_ == 8) return unpack_codes<8>(packed + lo, m, codes);
    if (bits_ == 4) return unpack_codes<4>(packed + lo / 2, m, codes);
    return unpack_codes<2>(packed + lo / 4, m, codes);
  }

  int bits_;
  int64_t block_;
  float s_;
};

}  // namespace

std::unique_ptr<ValueCodec> make_quantizer(int bits, int64_t block) {
  return std::make_unique<Quantizer>(bits, block);
}

}  // namespace cohort::codec
