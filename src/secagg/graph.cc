// The SecAgg+ ring graph (ChaCha20-driven Fisher-Yates) and Params' validation, whose
// roster-size rules are the graph's (k < n, t <= neighbours).
#include "secagg/graph.h"

#include <sodium.h>

#include <algorithm>
#include <string>

#include "cohort/core/validate.h"
#include "cohort/secagg/params.h"

namespace cohort::secagg {
namespace {

// Little-endian u32 draws from the ChaCha20 IETF keystream of a 32-byte key (zero nonce).
class KeystreamWords {
 public:
  explicit KeystreamWords(const std::array<uint8_t, 32>& key) : key_(key) {}
  uint32_t next() {
    if (pos_ == buf_.size()) refill();
    const uint8_t* b = buf_.data() + pos_;
    pos_ += 4;
    return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
           static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
  }
  // Uniform in [0, bound), bound >= 1, by rejection of the top partial range.
  uint32_t uniform(uint32_t bound) {
    // The largest multiple of bound that fits in 2^32 (2^32 itself for a power of two).
    const uint64_t limit = (uint64_t{1} << 32) - (uint64_t{1} << 32) % bound;
    for (;;) {
      const uint32_t v = next();
      if (v < limit) return v % bound;
    }
  }

 private:
  void refill() {
    static const std::array<uint8_t, 1024> kZeros{};
    const std::array<uint8_t, crypto_stream_chacha20_ietf_NONCEBYTES> nonce{};
    crypto_stream_chacha20_ietf_xor_ic(buf_.data(), kZeros.data(), buf_.size(), nonce.data(),
                                       block_, key_.data());
    block_ += static_cast<uint32_t>(buf_.size() / 64);
    pos_ = 0;
  }
  std::array<uint8_t, 32> key_;
  std::array<uint8_t, 1024> buf_{};
  size_t pos_ = 1024;
  uint32_t block_ = 0;
};

}  // namespace

// --- Params

Status Params::validate() const {
  COHORT_RETURN_IF_ERROR(check_field("secagg.threshold", int64_t{threshold}, Range::at_least(2)));
  COHORT_RETURN_IF_ERROR(check_field("secagg.neighbours", int64_t{neighbours}, Range::at_least(0)));
  if (neighbours % 2 != 0) {
    return field_error("secagg.neighbours", "must be even (k/2 on each side of the ring), got " +
                                                std::to_string(neighbours));
  }
  if (neighbours > 0 && threshold > neighbours) {
    return field_error("secagg.threshold",
                       "must be <= secagg.neighbours = " + std::to_string(neighbours) + ", got " +
                           std::to_string(threshold));
  }
  COHORT_RETURN_IF_ERROR(check_field("secagg.bits", int64_t{bits}, Range::closed(1, 32)));
  if (length < 1 || length > kMaxLength) {
    return field_error("secagg.length", "must be in [1, 2^32], got " + std::to_string(length));
  }
  return Status();
}

Status Params::validate_roster(int64_t num_clients) const {
  COHORT_RETURN_IF_ERROR(validate());
  if (num_clients > (int64_t{1} << 30)) {
    return field_error("secagg.clients",
                       "at most 2^30 clients, got " + std::to_string(num_clients));
  }
  if (neighbours > 0 && neighbours >= num_clients) {
    return field_error("secagg.neighbours", "must be < the number of clients " +
                                                std::to_string(num_clients) + ", got " +
                                                std::to_string(neighbours));
  }
  const int64_t k = neighbour_count(num_clients);
  if (threshold > k) {
    return field_error("secagg.threshold", "must be <= the " + std::to_string(k) +
                                               " neighbours of each of " +
                                               std::to_string(num_clients) + " clients, got " +
                                               std::to_string(threshold));
  }
  return Status();
}

int64_t Params::neighbour_count(int64_t num_clients) const {
  return neighbours == 0 ? std::max<int64_t>(num_clients - 1, 0) : neighbours;
}

uint32_t Params::word_mask() const { return bits >= 32 ? 0xFFFFFFFFu : (uint32_t{1} << bits) - 1; }

// --- Graph

Result<Graph> Graph::build(int64_t n, int32_t k, const std::array<uint8_t, 32>& seed) {
  if (n < 1 || n > (int64_t{1} << 30)) {
    return field_error("secagg.clients", "must be in [1, 2^30], got " + std::to_string(n));
  }
  if (k < 0 || k % 2 != 0 || (k > 0 && k >= n)) {
    return field_error("secagg.neighbours", "must be 0 or even and < " + std::to_string(n) +
                                                ", got " + std::to_string(k));
  }
  Graph g;
  g.n_ = n;
  g.complete_ = k == 0;
  g.k_ = k;
  if (g.complete_) return g;
  g.ring_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) g.ring_[i] = static_cast<int32_t>(i);
  KeystreamWords stream(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = stream.uniform(static_cast<uint32_t>(i + 1));
    std::swap(g.ring_[i], g.ring_[j]);
  }
  std::vector<int64_t> slot(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) slot[g.ring_[s]] = s;
  const int64_t half = k / 2;
  g.adjacency_.reserve(static_cast<size_t>(n * k));
  std::vector<int32_t> nb;
  for (int64_t p = 0; p < n; ++p) {
    nb.clear();
    for (int64_t d = 1; d <= half; ++d) {
      nb.push_back(g.ring_[(slot[p] + d) % n]);
      nb.push_back(g.ring_[(slot[p] - d + n) % n]);
    }
    std::sort(nb.begin(), nb.end());
    g.adjacency_.insert(g.adjacency_.end(), nb.begin(), nb.end());
  }
  return g;
}

std::vector<int32_t> Graph::neighbours(int64_t pos) const {
  std::vector<int32_t> out;
  if (complete_) {
    out.reserve(static_cast<size_t>(n_ - 1));
    for (int64_t q = 0; q < n_; ++q) {
      if (q != pos) out.push_back(static_cast<int32_t>(q));
    }
    return out;
  }
  const auto begin = adjacency_.begin() + pos * k_;
  return std::vector<int32_t>(begin, begin + k_);
}

bool Graph::adjacent(int64_t a, int64_t b) const {
  if (a == b || a < 0 || b < 0 || a >= n_ || b >= n_) return false;
  if (complete_) return true;
  const auto begin = adjacency_.begin() + a * k_;
  return std::binary_search(begin, begin + k_, static_cast<int32_t>(b));
}

}  // namespace cohort::secagg
