#include "cohort/core/position_set.h"

namespace cohort {

void PositionSet::reset(size_t n) { assign(std::vector<bool>(n, false)); }

void PositionSet::assign(const std::vector<bool>& in) {
  const size_t n = in.size();
  in_ = in;
  tree_.assign(n + 1, 0);
  count_ = 0;
  for (size_t i = 1; i <= n; ++i) {
    if (in[i - 1]) {
      ++tree_[i];
      ++count_;
    }
    const size_t parent = i + (i & (~i + 1));
    if (parent <= n) tree_[parent] += tree_[i];
  }
  top_bit_ = 1;
  while (top_bit_ * 2 <= n) top_bit_ *= 2;
}

void PositionSet::set(size_t pos, bool in) {
  if (in_[pos] == in) return;
  in_[pos] = in;
  const int32_t d = in ? 1 : -1;
  count_ += d;
  for (size_t i = pos + 1; i < tree_.size(); i += i & (~i + 1)) tree_[i] += d;
}

size_t PositionSet::select(int64_t k) const {
  // Descends the implicit tree: the largest prefix whose count is <= k ends right before the
  // k-th position.
  size_t pos = 0;
  int64_t left = k;
  for (size_t step = top_bit_; step > 0; step /= 2) {
    const size_t next = pos + step;
    if (next < tree_.size() && tree_[next] <= left) {
      pos = next;
      left -= tree_[next];
    }
  }
  return pos;  // 1-based index pos + 1, i.e. 0-based position pos
}

}  // namespace cohort
