// PositionSet: a subset of the positions 0 .. n-1 that answers "how many are in it" and "which
// is the k-th of them" in O(log n) (a Fenwick tree of counts over a bitmap), so that the runtime
// can sample a few of a million idle clients without listing them all (docs/design/scale.md).
//
// Memory: 4 bytes and one bit per position. Not thread-safe; the runtime's loop owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cohort {

class PositionSet {
 public:
  // Empties the set and resizes it to positions 0 .. n-1 (none in the set).
  void reset(size_t n);
  // Builds the set from `in` (in[i] == position i is in the set) in O(n).
  void assign(const std::vector<bool>& in);
  size_t capacity() const { return in_.size(); }
  // Puts position `pos` in the set or takes it out. REQUIRES: pos < capacity().
  void set(size_t pos, bool in);
  bool contains(size_t pos) const { return in_[pos]; }
  // How many positions are in the set.
  int64_t count() const { return count_; }
  // The k-th position in the set in ascending order, 0-based. REQUIRES: 0 <= k < count().
  size_t select(int64_t k) const;

 private:
  std::vector<int32_t> tree_;  // Fenwick tree, 1-based: tree_[i] counts (i - lowbit(i), i]
  std::vector<bool> in_;
  int64_t count_ = 0;
  size_t top_bit_ = 0;  // highest power of two <= capacity()
};

}  // namespace cohort
