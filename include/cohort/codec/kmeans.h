// kmeans[:k]: FedZip's quantization (Malekijoo et al., 2021): per array of the layout, k
// centroids (2 <= k <= 16, default 3) found by Lloyd's algorithm in one dimension (initialised
// evenly between the minimum and the maximum, 4 iterations, as the authors' code), every value
// replaced by its nearest centroid. Stored: k float32 centroids per array, then
// ceil(log2 k) bits per value. Deterministic (no randomness); biased, like the original.
#pragma once

#include <memory>

#include "cohort/codec/codec.h"

namespace cohort::codec {
inline constexpr int kKMeansDefaultK = 3;
inline constexpr int kKMeansIterations = 4;
std::unique_ptr<ValueCodec> make_kmeans(int k = kKMeansDefaultK);
}  // namespace cohort::codec
