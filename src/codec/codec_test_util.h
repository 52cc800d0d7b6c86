// Shared by the codec tests: seeded vectors and layouts.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cohort/codec/codec.h"
#include "cohort/core/rng.h"

namespace cohort::codec::testing {

inline std::vector<float> normal_vector(int64_t n, uint64_t seed, double stddev = 1.0) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.normal(0.0, stddev));
  return v;
}

// Offsets of arrays with these sizes.
inline std::vector<int64_t> offsets_of(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> o{0};
  for (int64_t s : sizes) o.push_back(o.back() + s);
  return o;
}

inline std::shared_ptr<const Chain> chain(const std::string& text) {
  auto c = Chain::parse(text);
  if (!c.ok()) throw std::runtime_error(c.error().to_string());
  return *c;
}

}  // namespace cohort::codec::testing
