#include "cohort/codec/terngrad.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "bits.h"

namespace cohort::codec {
namespace {

class TernGrad final : public ValueCodec {
 public:
  explicit TernGrad(double clip) : clip_(clip) {}

  std::string spec() const override {
    std::ostringstream os;
    os << "terngrad:" << clip_;
    return os.str();
  }
  int side_floats() const override { return 1; }
  void fit(std::span<const float> v, float* side) const override {
    double scaler = 0.0;
    if (clip_ > 0 && !v.empty()) {
      double mean = 0.0;
      for (float x : v) mean += x;
      mean /= static_cast<double>(v.size());
      double var = 0.0;
      for (float x : v) var += (x - mean) * (x - mean);
      scaler = clip_ * std::sqrt(var / static_cast<double>(v.size()));
    } else {
      for (float x : v) scaler = std::max(scaler, static_cast<double>(std::fabs(x)));
    }
    side[0] = static_cast<float>(scaler);
  }
  Status check_side(const float* side) const override {
    if (!std::isfinite(side[0]) || side[0] < 0) {
      return Status::invalid_argument("terngrad: scaler " + std::to_string(side[0]) +
                                      " is not a finite number >= 0");
    }
    return Status();
  }
  int64_t encoded_bytes(int64_t n) const override { return (n + 3) / 4; }

  void encode(std::span<const float> v, int64_t first, const uint32_t* index, uint32_t base,
              uint64_t seed, const float* side, uint8_t* out) const override {
    const float s = side[0];
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    const uint64_t element0 = index ? base : static_cast<uint64_t>(first);
    const uint32_t key = detail::run_key(seed, element0);
    const uint32_t lo = static_cast<uint32_t>(element0);
    const size_t n = v.size();
    std::fill(out, out + (n + 3) / 4, uint8_t{0});
    for (size_t i = 0; i < n; ++i) {
      const float u = detail::uniform24(key, index ? base + index[i] : lo + static_cast<uint32_t>(i));
      const float p = std::fabs(v[i]) * inv;  // >= 1 beyond the scaler: always kept (clipped)
      uint8_t code = 1;                        // zero
      if (u < p) code = v[i] > 0 ? 2 : 0;
      out[i / 4] |= static_cast<uint8_t>(code << ((i % 4) * 2));
    }
  }

  Status decode(const uint8_t* in, const float* side, std::span<float> out) const override {
    const float s = side[0];
    for (size_t i = 0; i < out.size(); ++i) {
      const uint8_t code = (in[i / 4] >> ((i % 4) * 2)) & 3u;
      if (code == 3) {
        return Status::invalid_argument("terngrad: code 3 of value " + std::to_string(i) +
                                        " is not a ternary symbol");
      }
      out[i] = (static_cast<float>(code) - 1.0f) * s;
    }
    return Status();
  }

 private:
  double clip_;
};

}  // namespace

std::unique_ptr<ValueCodec> make_terngrad(double clip_factor) {
  return std::make_unique<TernGrad>(clip_factor);
}

}  // namespace cohort::codec
