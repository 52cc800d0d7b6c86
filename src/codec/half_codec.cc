#include "half_codec.h"

#include <algorithm>
#include <cstring>

namespace cohort::codec::detail {
namespace {

constexpr size_t kStage = 1024;

class HalfCodec final : public ValueCodec {
 public:
  HalfCodec(std::string name, HalfEncodeRun encode, HalfDecodeRun decode)
      : name_(std::move(name)), encode_(encode), decode_(decode) {}
  std::string spec() const override { return name_; }
  int64_t encoded_bytes(int64_t n) const override { return 2 * n; }
  void encode(std::span<const float> v, int64_t, const uint32_t*, uint32_t, uint64_t,
              const float*, uint8_t* out) const override {
    uint16_t tmp[kStage];
    for (size_t i = 0; i < v.size(); i += kStage) {
      const size_t n = std::min(kStage, v.size() - i);
      encode_(v.data() + i, static_cast<int64_t>(n), tmp);
      std::memcpy(out + 2 * i, tmp, 2 * n);
    }
  }
  Status decode(const uint8_t* in, const float*, std::span<float> out) const override {
    uint16_t tmp[kStage];
    for (size_t i = 0; i < out.size(); i += kStage) {
      const size_t n = std::min(kStage, out.size() - i);
      std::memcpy(tmp, in + 2 * i, 2 * n);
      decode_(tmp, static_cast<int64_t>(n), out.data() + i);
    }
    return Status();
  }

 private:
  std::string name_;
  HalfEncodeRun encode_;
  HalfDecodeRun decode_;
};

}  // namespace

std::unique_ptr<ValueCodec> make_half_codec(std::string name, HalfEncodeRun encode,
                                            HalfDecodeRun decode) {
  return std::make_unique<HalfCodec>(std::move(name), encode, decode);
}

}  // namespace cohort::codec::detail
