// topk / randk: which elements of a vector travel. Top-k keeps the k largest magnitudes (ties
// broken by the lower index, so exactly k); random-k keeps k elements drawn uniformly without
// replacement from the seeded stream (not rescaled: with error feedback what is not sent now
// is sent later, Stich et al., "Sparsified SGD with Memory", NeurIPS 2018). Indices come back
// ascending. Error feedback itself (the residual a client keeps across its tasks) is applied by
// Chain::encode.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cohort/codec/codec.h"

namespace cohort::codec {
std::vector<uint32_t> select_topk(std::span<const float> values, int64_t k);
std::vector<uint32_t> select_randk(int64_t numel, int64_t k, uint64_t seed);
std::vector<uint32_t> select(const SparsifyOptions& o, std::span<const float> values,
                             uint64_t seed);
}  // namespace cohort::codec
