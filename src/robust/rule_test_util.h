// Shared by the robust rules' tests: a group of updates written as nested lists.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "cohort/robust/rule.h"

namespace cohort::robust::testing {

using Vectors = std::vector<std::vector<float>>;

// Inputs viewing `v` (which must outlive them), with `weights` (all 1 when empty).
inline Inputs inputs_of(const Vectors& v, std::vector<double> weights = {}) {
  Inputs in;
  for (const auto& x : v) in.vectors.emplace_back(x);
  in.weights = weights.empty() ? std::vector<double>(v.size(), 1.0) : std::move(weights);
  return in;
}

// A group that owns its vectors, weights and previous aggregate.
struct Group {
  Vectors v;
  std::vector<double> w;
  std::vector<float> previous;
  uint64_t seed = 1;
  Inputs inputs() const {
    Inputs in = inputs_of(v, w);
    in.previous = previous;
    in.seed = seed;
    return in;
  }
};

}  // namespace cohort::robust::testing
