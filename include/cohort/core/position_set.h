// PositionSet: a subset of the positions 0 .. n-1 that answers "how many are in it" and "which
// is the k-th of them" in O(log n), so that the runtime can sample a few of a million idle
// clients without listing them all (docs/design/scale.md).
//
// A bitmap, cut into blocks of 512 positions (eight words: one cache line), and a Fenwick tree
// of the blocks' counts. select() descends the tree (8 KB for a million positions: it stays in
// the L1 cache) and then counts bits in one block, so each pick touches one line of the bitmap
// instead of twenty levels of a per-position tree spread over megabytes.
//
// Memory: one bit per position and 4 bytes per 512. Not thread-safe; the runtime's loop owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace cohort {

class PositionSet {
 public:
  // Resizes the set to positions 0 .. n-1, all of them in it or none, in O(n / 64).
  void reset(size_t n, bool in = false);
  // Builds the set from `in` (in[i] == position i is in the set) in O(n).
  void assign(const std::vector<bool>& in);
  size_t capacity() const { return n_; }
  // Puts position `pos` in the set or takes it out. REQUIRES: pos < capacity().
  void set(size_t pos, bool in);
  bool contains(size_t pos) const { return ((words_[pos / 64] >> (pos % 64)) & 1) != 0; }
  // How many positions are in the set.
  int64_t count() const { return count_; }
  // The k-th position in the set in ascending order, 0-based. REQUIRES: 0 <= k < count().
  size_t select(int64_t k) const;
  // select(ks[j]) for every j into out[j], in one pass over the bitmap: for a sorted sample
  // that is a sizeable fraction of the words (a round's clients), cheaper than one descent
  // each. REQUIRES: ks ascending, each < count(); out.size() == ks.size().
  void select_sorted(std::span<const uint64_t> ks, std::span<size_t> out) const;

 private:
  static constexpr size_t kBlockWords = 8;  // 512 positions per block

  // Sizes the bitmap for n positions, all clear.
  void size_words(size_t n);
  // Recomputes the tree and the count from the bitmap.
  void build_tree();

  std::vector<uint64_t> words_;  // bit p % 64 of words_[p / 64]: position p is in the set
  std::vector<int32_t> tree_;    // Fenwick tree over blocks, 1-based: tree_[i] counts blocks
                                 // (i - lowbit(i), i]
  size_t n_ = 0;
  int64_t count_ = 0;
  size_t top_bit_ = 0;  // highest power of two <= the number of blocks
};

}  // namespace cohort
