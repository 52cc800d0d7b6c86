// Fragments: a model's flat parameter vector split into P interleaved parts, so that each part
// can be synchronised on its own (Streaming DiLoCo, docs/strategies.md "streaming_diloco").
//
// The vector is cut into blocks of `block` consecutive elements (the last one may be shorter);
// block i belongs to fragment i mod P. Strided assignment spreads every layer over all the
// fragments (the Streaming DiLoCo paper prefers strided to contiguous groups of layers), keeps
// the fragments within one block of each other in size, and keeps each range long enough to
// copy at memory speed. The same (numel, P, block) gives the same split everywhere: the server,
// the simulator and a deployment client compute it from the task's settings.
//
// Thread safety: immutable after construction.
#pragma once

#include <cstdint>
#include <span>

#include "cohort/core/status.h"

namespace cohort {

class Fragments {
 public:
  // InvalidArgument unless numel >= 0, 1 <= count and block >= 1.
  static Result<Fragments> create(int64_t numel, int64_t count, int64_t block);

  int64_t numel() const { return numel_; }
  int64_t count() const { return count_; }
  int64_t block() const { return block_; }
  // Elements in fragment p. REQUIRES: 0 <= p < count().
  int64_t size(int64_t p) const;
  // Calls fn(first, n) for every range of fragment p, in ascending order.
  template <typename Fn>
  void for_each_range(int64_t p, Fn&& fn) const {
    for (int64_t first = p * block_; first < numel_; first += count_ * block_) {
      const int64_t n = first + block_ <= numel_ ? block_ : numel_ - first;
      fn(first, n);
    }
  }
  // out[0, size(p)) <- fragment p of `full`; full[fragment p] <- in. REQUIRES: sizes match.
  void gather(int64_t p, std::span<const float> full, std::span<float> out) const;
  void scatter(int64_t p, std::span<const float> in, std::span<float> full) const;

 private:
  Fragments(int64_t numel, int64_t count, int64_t block)
      : numel_(numel), count_(count), block_(block) {}
  int64_t numel_;
  int64_t count_;
  int64_t block_;
};

}  // namespace cohort
