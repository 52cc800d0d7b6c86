// Rng: Cohort's one source of randomness. Seeded, portable, reproducible.
//
// xoshiro256** seeded through splitmix64, with its own uniform / normal / exponential /
// gamma / Dirichlet samplers (std:: distributions differ between standard libraries, which
// would break "same seed, same run" across machines). derive() makes independent child
// streams from a parent seed and a label, e.g. Rng::derive(seed, "partition") or
// Rng::derive(seed, client_id, task_number), so adding a consumer never shifts another's draws.
//
// Thread safety: none; give each thread or component its own Rng.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace cohort {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0);

  // Independent stream for (seed, label[, a, b]); stable across versions of Cohort.
  static Rng derive(uint64_t seed, std::string_view label, uint64_t a = 0, uint64_t b = 0);
  static uint64_t mix_seed(uint64_t seed, std::string_view label, uint64_t a = 0, uint64_t b = 0);

  uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n). n must be > 0.
  uint64_t uniform_int(uint64_t n);
  double normal(double mean = 0.0, double stddev = 1.0);
  // Exponential with the given mean (not rate).
  double exponential(double mean);
  double gamma(double shape);  // scale 1; shape > 0
  // A draw from Dirichlet(alphas); every alpha > 0.
  std::vector<double> dirichlet(std::span<const double> alphas);
  // Fisher-Yates shuffle.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(uniform_int(i));
      std::swap(v[i - 1], v[j]);
    }
  }
  // k distinct indices from [0, n), in the order drawn (partial Fisher-Yates). k <= n.
  std::vector<uint64_t> sample_without_replacement(uint64_t n, uint64_t k);

  // The full generator state, for checkpoints.
  std::vector<uint64_t> state() const;
  void set_state(std::span<const uint64_t> s);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace cohort
