// The neighbour graph of a secure-aggregation round (private to the secagg module).
//
// Nodes are the positions 0..n-1 of the sorted roster (U1). With k == 0 the graph is complete.
// Otherwise (SecAgg+, Bell et al. 2020) the positions are permuted by a Fisher-Yates shuffle
// driven by the ChaCha20 IETF keystream of the public graph seed (zero nonce; each draw is a
// little-endian u32, rejection-sampled so every index is equally likely), placed on a ring in
// that order, and each node's neighbours are the k/2 nodes on either side of it. Clients and
// the server compute the same graph from (n, k, seed).
//
// Thread safety: immutable after build().
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "cohort/core/status.h"

namespace cohort::secagg {

class Graph {
 public:
  // InvalidArgument "secagg.neighbours: ..." for odd k, k < 0 or k >= n (k > 0).
  static Result<Graph> build(int64_t n, int32_t k, const std::array<uint8_t, 32>& seed);

  int64_t size() const { return n_; }
  bool complete() const { return complete_; }
  // The neighbours of a position, increasing (a complete graph stores no lists).
  std::vector<int32_t> neighbours(int64_t pos) const;
  int64_t degree() const { return complete_ ? n_ - 1 : k_; }
  bool adjacent(int64_t a, int64_t b) const;
  // The ring order (slot -> position); empty for a complete graph.
  const std::vector<int32_t>& ring() const { return ring_; }

 private:
  int64_t n_ = 0;
  int64_t k_ = 0;
  bool complete_ = true;
  std::vector<int32_t> ring_;
  std::vector<int32_t> adjacency_;  // k entries per position, increasing
};

}  // namespace cohort::secagg
