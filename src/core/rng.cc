#include "cohort/core/rng.h"

#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

#include "cohort/core/hash.h"

namespace cohort {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Rng::mix_seed(uint64_t seed, std::string_view label, uint64_t a, uint64_t b) {
  const uint64_t h = fnv1a64(label.data(), label.size(), kFnvOffset ^ seed);
  uint64_t x = h;
  uint64_t r = splitmix64(x);
  x ^= a * 0x9e3779b97f4a7c15ULL;
  r ^= splitmix64(x);
  x ^= b * 0xc2b2ae3d27d4eb4fULL;
  r ^= splitmix64(x);
  return r;
}

Rng Rng::derive(uint64_t seed, std::string_view label, uint64_t a, uint64_t b) {
  return Rng(mix_seed(seed, label, a, b));
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

uint64_t Rng::uniform_int(uint64_t n) {
  // Lemire's nearly divisionless method with rejection: unbiased.
  __uint128_t m = static_cast<__uint128_t>(next_u64()) * n;
  uint64_t l = static_cast<uint64_t>(m);
  if (l < n) {
    const uint64_t t = -n % n;
    while (l < t) {
      m = static_cast<__uint128_t>(next_u64()) * n;
      l = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

double Rng::normal(double mean, double stddev) {
  if (has_spare_) {
    has_spare_ = false;
    return mean + stddev * spare_;
  }
  // Marsaglia polar method.
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double f = std::sqrt(-2.0 * std::log(s) / s);
  spare_ = v * f;
  has_spare_ = true;
  return mean + stddev * u * f;
}

double Rng::exponential(double mean) {
  double u;
  do {
    u = uniform();
  } while (u == 0.0);
  return -mean * std::log(u);
}

double Rng::gamma(double shape) {
  // Marsaglia & Tsang; shape < 1 via the boost gamma(a) = gamma(a+1) * U^(1/a).
  if (shape < 1.0) {
    double u;
    do {
      u = uniform();
    } while (u == 0.0);
    return gamma(shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0.0 && std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

std::vector<double> Rng::dirichlet(std::span<const double> alphas) {
  std::vector<double> out(alphas.size());
  double sum = 0;
  for (size_t i = 0; i < alphas.size(); ++i) {
    out[i] = gamma(alphas[i]);
    sum += out[i];
  }
  if (sum <= 0.0) {
    // All draws underflowed (tiny alphas): put all mass on one uniformly chosen component.
    std::fill(out.begin(), out.end(), 0.0);
    if (!out.empty()) out[uniform_int(out.size())] = 1.0;
    return out;
  }
  for (double& v : out) v /= sum;
  return out;
}

std::vector<uint64_t> Rng::sample_without_replacement(uint64_t n, uint64_t k) {
  k = std::min(k, n);
  if (k < n / 8) {
    // The same partial Fisher-Yates on a sparse array (positions that moved, in a hash table):
    // the same picks in the same order, in O(k) time and memory, so that sampling 1,000 of a
    // million clients does not touch a million-entry array. The table is open addressing in
    // one allocation (at most k entries, at least twice as many slots): sampling runs between
    // rounds, while the training threads wait for the next round's tasks.
    size_t slots = 16;
    while (slots < 2 * static_cast<size_t>(k)) slots *= 2;
    constexpr uint64_t kFree = ~uint64_t{0};  // positions are < n <= 2^64 - 1
    std::vector<std::pair<uint64_t, uint64_t>> moved(slots, {kFree, 0});
    const size_t mask = slots - 1;
    auto slot = [&](uint64_t p) -> std::pair<uint64_t, uint64_t>& {
      size_t h = static_cast<size_t>((p * 0x9E3779B97F4A7C15ull) >> 32) & mask;
      while (moved[h].first != kFree && moved[h].first != p) h = (h + 1) & mask;
      return moved[h];
    };
    std::vector<uint64_t> out(static_cast<size_t>(k));
    for (uint64_t i = 0; i < k; ++i) {
      const uint64_t j = i + uniform_int(n - i);
      const auto& si = slot(i);
      const uint64_t vi = si.first == kFree ? i : si.second;
      auto& sj = slot(j);
      out[static_cast<size_t>(i)] = sj.first == kFree ? j : sj.second;
      sj = {j, vi};
    }
    return out;
  }
  std::vector<uint64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  for (uint64_t i = 0; i < k && i < n; ++i) {
    const uint64_t j = i + uniform_int(n - i);
    std::swap(idx[i], idx[j]);
  }
  idx.resize(std::min(k, n));
  return idx;
}

std::vector<uint64_t> Rng::state() const {
  uint64_t spare_bits;
  static_assert(sizeof(spare_bits) == sizeof(spare_));
  std::memcpy(&spare_bits, &spare_, sizeof(spare_));
  return {s_[0], s_[1], s_[2], s_[3], has_spare_ ? 1u : 0u, spare_bits};
}

void Rng::set_state(std::span<const uint64_t> s) {
  for (int i = 0; i < 4; ++i) s_[i] = s[i];
  has_spare_ = s.size() > 4 && s[4] != 0;
  if (s.size() > 5) std::memcpy(&spare_, &s[5], sizeof(spare_));
}

}  // namespace cohort
