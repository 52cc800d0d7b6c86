#include "cohort/codec/sparsify.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <unordered_set>

#include "cohort/core/rng.h"

namespace cohort::codec {

int64_t SparsifyOptions::k(int64_t numel) const {
  if (numel <= 0) return 0;
  const int64_t want = count > 0 ? count
                                 : static_cast<int64_t>(std::ceil(fraction * static_cast<double>(numel)));
  return std::clamp<int64_t>(want, 1, numel);
}

std::string SparsifyOptions::spec() const {
  std::ostringstream os;
  os << (kind == Kind::kTopK ? "topk:" : "randk:");
  if (count > 0) {
    os << count;
  } else {
    os << fraction;
  }
  if (!error_feedback) os << ":noef";
  return os.str();
}

std::vector<uint32_t> select_topk(std::span<const float> values, int64_t k) {
  const int64_t n = static_cast<int64_t>(values.size());
  std::vector<uint32_t> out;
  if (k <= 0) return out;
  out.reserve(static_cast<size_t>(std::min(k, n)));
  if (k >= n) {
    for (int64_t i = 0; i < n; ++i) out.push_back(static_cast<uint32_t>(i));
    return out;
  }
  // The k-th largest magnitude t: everything above t is kept, then elements equal to t in
  // index order until k are.
  std::vector<float> mag(values.size());
  for (size_t i = 0; i < values.size(); ++i) mag[i] = std::fabs(values[i]);
  std::nth_element(mag.begin(), mag.begin() + (k - 1), mag.end(), std::greater<float>());
  const float t = mag[static_cast<size_t>(k - 1)];
  int64_t above = 0;
  for (float m : mag) above += m > t;
  int64_t ties = k - above;
  for (int64_t i = 0; i < n; ++i) {
    const float m = std::fabs(values[static_cast<size_t>(i)]);
    if (m > t || (m == t && ties-- > 0)) out.push_back(static_cast<uint32_t>(i));
  }
  return out;
}

std::vector<uint32_t> select_randk(int64_t numel, int64_t k, uint64_t seed) {
  Rng rng = Rng::derive(seed, "randk");
  k = std::clamp<int64_t>(k, 0, numel);
  std::vector<uint32_t> out;
  out.reserve(static_cast<size_t>(k));
  if (k * 4 >= numel) {
    // Dense: a partial Fisher-Yates shuffle of every index.
    std::vector<uint32_t> idx(static_cast<size_t>(numel));
    for (int64_t i = 0; i < numel; ++i) idx[static_cast<size_t>(i)] = static_cast<uint32_t>(i);
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = i + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(numel - i)));
      std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(j)]);
    }
    out.assign(idx.begin(), idx.begin() + k);
  } else {
    // Sparse: Floyd's algorithm, O(k) memory.
    std::unordered_set<uint32_t> chosen;
    chosen.reserve(static_cast<size_t>(2 * k));
    for (int64_t j = numel - k; j < numel; ++j) {
      const auto t = static_cast<uint32_t>(rng.uniform_int(static_cast<uint64_t>(j + 1)));
      const uint32_t pick = chosen.count(t) ? static_cast<uint32_t>(j) : t;
      chosen.insert(pick);
      out.push_back(pick);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint32_t> select(const SparsifyOptions& o, std::span<const float> values,
                             uint64_t seed) {
  const int64_t k = o.k(static_cast<int64_t>(values.size()));
  return o.kind == SparsifyOptions::Kind::kTopK
             ? select_topk(values, k)
             : select_randk(static_cast<int64_t>(values.size()), k, seed);
}

}  // namespace cohort::codec
