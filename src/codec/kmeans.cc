#include "cohort/codec/kmeans.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace cohort::codec {
namespace {

int bits_for(int k) {
  int b = 1;
  while ((1 << b) < k) ++b;
  return b == 3 ? 4 : b;  // 1, 2 or 4 bits: whole symbols per byte
}

// Index of the nearest centroid (centroids ascending).
int nearest(const float* c, int k, float x) {
  int best = 0;
  float d = std::fabs(x - c[0]);
  for (int j = 1; j < k; ++j) {
    const float dj = std::fabs(x - c[j]);
    if (dj < d) {
      d = dj;
      best = j;
    }
  }
  return best;
}

class KMeans final : public ValueCodec {
 public:
  explicit KMeans(int k) : k_(k), bits_(bits_for(k)) {}

  std::string spec() const override { return "kmeans:" + std::to_string(k_); }
  int side_floats() const override { return k_; }

  void fit(std::span<const float> v, float* c) const override {
    if (v.empty()) {
      std::fill(c, c + k_, 0.0f);
      return;
    }
    const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
    for (int j = 0; j < k_; ++j) {
      c[j] = *mn + (*mx - *mn) * static_cast<float>(j) / static_cast<float>(k_ - 1);
    }
    std::vector<double> sum(static_cast<size_t>(k_));
    std::vector<int64_t> cnt(static_cast<size_t>(k_));
    for (int it = 0; it < kKMeansIterations; ++it) {
      std::fill(sum.begin(), sum.end(), 0.0);
      std::fill(cnt.begin(), cnt.end(), 0);
      for (float x : v) {
        const int j = nearest(c, k_, x);
        sum[static_cast<size_t>(j)] += x;
        ++cnt[static_cast<size_t>(j)];
      }
      for (int j = 0; j < k_; ++j) {  // an empty cluster keeps its centroid
        if (cnt[static_cast<size_t>(j)] > 0) {
          c[j] = static_cast<float>(sum[static_cast<size_t>(j)] /
                                    static_cast<double>(cnt[static_cast<size_t>(j)]));
        }
      }
      std::sort(c, c + k_);
    }
  }

  Status check_side(const float* c) const override {
    for (int j = 0; j < k_; ++j) {
      if (!std::isfinite(c[j])) {
        return Status::invalid_argument("kmeans: centroid " + std::to_string(j) +
                                        " is not finite");
      }
    }
    return Status();
  }

  int64_t encoded_bytes(int64_t n) const override { return (n * bits_ + 7) / 8; }

  void encode(std::span<const float> v, int64_t, const uint32_t*, uint32_t, uint64_t,
              const float* c, uint8_t* out) const override {
    const int per = 8 / bits_;
    std::fill(out, out + encoded_bytes(static_cast<int64_t>(v.size())), uint8_t{0});
    for (size_t i = 0; i < v.size(); ++i) {
      out[i / per] |= static_cast<uint8_t>(nearest(c, k_, v[i]) << ((i % per) * bits_));
    }
  }

  Status decode(const uint8_t* in, const float* c, std::span<float> out) const override {
    const int per = 8 / bits_;
    const uint8_t mask = static_cast<uint8_t>((1 << bits_) - 1);
    for (size_t i = 0; i < out.size(); ++i) {
      const int j = (in[i / per] >> ((i % per) * bits_)) & mask;
      if (j >= k_) {
        return Status::invalid_argument("kmeans: symbol " + std::to_string(j) + " of value " +
                                        std::to_string(i) + " names no centroid (k = " +
                                        std::to_string(k_) + ")");
      }
      out[i] = c[j];
    }
    return Status();
  }

 private:
  int k_;
  int bits_;
};

}  // namespace

std::unique_ptr<ValueCodec> make_kmeans(int k) { return std::make_unique<KMeans>(k); }

}  // namespace cohort::codec
