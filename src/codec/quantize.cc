#include "cohort/codec/quantize.h"

#include <algorithm>
#include <cmath>

#include "bits.h"
#include "cohort/core/multiversion.h"

namespace cohort::codec {
namespace {

using detail::fmix32;

// codes[i] = q_i + s for the values of one block.
COHORT_MULTIVERSION void quantize_dense(const float* __restrict v, int64_t n, float inv, float s,
                                        uint32_t key, uint32_t lo, uint8_t* __restrict codes) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t h = fmix32((lo + static_cast<uint32_t>(i)) * 0x9e3779b1u ^ key);
    const float u = static_cast<float>(h >> 8) * (1.0f / 16777216.0f);
    float q = std::floor(v[i] * inv + u);
    q = std::min(s, std::max(-s, q));
    codes[i] = static_cast<uint8_t>(static_cast<int32_t>(q + s));
  }
}

void quantize_sparse(const float* v, int64_t n, float inv, float s, uint32_t key,
                     const uint32_t* index, uint32_t base, uint8_t* codes) {
  for (int64_t i = 0; i < n; ++i) {
    const float u = detail::uniform24(key, base + index[i]);
    float q = std::floor(v[i] * inv + u);
    q = std::min(s, std::max(-s, q));
    codes[i] = static_cast<uint8_t>(static_cast<int32_t>(q + s));
  }
}

COHORT_MULTIVERSION float block_max_abs(const float* __restrict v, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(v[i]));
  return m;
}

COHORT_MULTIVERSION void dequantize(const uint8_t* __restrict codes, int64_t n, float s,
                                    float step, float* __restrict out) {
  for (int64_t i = 0; i < n; ++i) out[i] = (static_cast<float>(codes[i]) - s) * step;
}

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
    std::vector<uint8_t> codes(static_cast<size_t>(std::min(n, block_)));
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t lo = b * block_;
      const int64_t m = std::min(block_, n - lo);
      const float scale = block_max_abs(v.data() + lo, m);
      detail::store_f32(out + 4 * b, scale);
      const float inv = scale > 0 ? s_ / scale : 0.0f;
      if (index) {
        quantize_sparse(v.data() + lo, m, inv, s_, key, index + lo, base, codes.data());
      } else {
        quantize_dense(v.data() + lo, m, inv, s_, key,
                       static_cast<uint32_t>(static_cast<uint64_t>(first + lo)), codes.data());
      }
      pack(codes.data(), lo, m, packed);
    }
  }

  Status decode(const uint8_t* in, const float*, std::span<float> out) const override {
    const int64_t n = static_cast<int64_t>(out.size());
    const int64_t blocks = (n + block_ - 1) / block_;
    const uint8_t* packed = in + 4 * blocks;
    std::vector<uint8_t> codes(static_cast<size_t>(std::min(n, block_)));
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
      unpack(packed, lo, m, codes.data());
      for (int64_t i = 0; i < m; ++i) {
        if (codes[static_cast<size_t>(i)] > max_code) {
          return Status::invalid_argument(
              spec() + ": code " + std::to_string(codes[static_cast<size_t>(i)]) +
              " of value " + std::to_string(lo + i) + " is out of range [0, " +
              std::to_string(max_code) + "]");
        }
      }
      dequantize(codes.data(), m, s_, scale / s_, out.data() + lo);
    }
    return Status();
  }

 private:
  // Codes of values [lo, lo + m) of the run into the packed area (lo is a multiple of the
  // block, so of 4: whole bytes).
  void pack(const uint8_t* codes, int64_t lo, int64_t m, uint8_t* packed) const {
    if (bits_ == 8) {
      std::copy(codes, codes + m, packed + lo);
      return;
    }
    const int per = 8 / bits_;
    uint8_t* dst = packed + lo / per;
    for (int64_t i = 0; i < m; i += per) {
      uint8_t byte = 0;
      for (int j = 0; j < per && i + j < m; ++j) byte |= static_cast<uint8_t>(codes[i + j] << (j * bits_));
      dst[i / per] = byte;
    }
  }
  void unpack(const uint8_t* packed, int64_t lo, int64_t m, uint8_t* codes) const {
    if (bits_ == 8) {
      std::copy(packed + lo, packed + lo + m, codes);
      return;
    }
    const int per = 8 / bits_;
    const uint8_t mask = static_cast<uint8_t>((1 << bits_) - 1);
    const uint8_t* src = packed + lo / per;
    for (int64_t i = 0; i < m; ++i) {
      codes[i] = static_cast<uint8_t>((src[i / per] >> ((i % per) * bits_)) & mask);
    }
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
