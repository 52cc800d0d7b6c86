#include "cohort/core/position_set.h"

#include <algorithm>
#include <bit>

namespace cohort {
namespace {

// The loops below count bits. Built for the baseline x86-64 (no POPCNT instruction),
// std::popcount is a call into libgcc, ~10x the instruction: the functions that count are
// built twice, and the loader picks the POPCNT build on the processors that have it (all
// x86-64 since 2008). Elsewhere the attribute is empty.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__POPCNT__) && !defined(__clang__)
#define COHORT_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define COHORT_POPCNT_CLONES
#endif

// Position of the r-th set bit (0-based) of `w`. REQUIRES: r < popcount(w).
[[gnu::always_inline]] inline unsigned select_in_word(uint64_t w, int r) {
  unsigned pos = 0;
  for (unsigned width = 32; width > 0; width /= 2) {
    const int c = std::popcount(w & ((uint64_t{1} << width) - 1));
    if (r >= c) {
      r -= c;
      w >>= width;
      pos += width;
    }
  }
  return pos;
}

}  // namespace

void PositionSet::reset(size_t n, bool in) {
  size_words(n);
  if (in) {
    std::fill(words_.begin(), words_.begin() + static_cast<std::ptrdiff_t>(n / 64), ~uint64_t{0});
    if (n % 64 != 0) words_[n / 64] = (uint64_t{1} << (n % 64)) - 1;
  }
  build_tree();
}

void PositionSet::assign(const std::vector<bool>& in) {
  size_words(in.size());
  for (size_t i = 0; i < n_; ++i) {
    if (in[i]) words_[i / 64] |= uint64_t{1} << (i % 64);
  }
  build_tree();
}

void PositionSet::size_words(size_t n) {
  n_ = n;
  const size_t num_words = (n_ + 63) / 64;
  const size_t num_blocks = (num_words + kBlockWords - 1) / kBlockWords;
  words_.assign(num_blocks * kBlockWords, 0);  // whole blocks: select() reads all eight words
}

COHORT_POPCNT_CLONES void PositionSet::build_tree() {
  const size_t num_blocks = words_.size() / kBlockWords;
  tree_.assign(num_blocks + 1, 0);
  count_ = 0;
  for (size_t b = 1; b <= num_blocks; ++b) {
    int32_t c = 0;
    for (size_t w = (b - 1) * kBlockWords; w < b * kBlockWords; ++w) c += std::popcount(words_[w]);
    tree_[b] += c;
    count_ += c;
    const size_t parent = b + (b & (~b + 1));
    if (parent <= num_blocks) tree_[parent] += tree_[b];
  }
  top_bit_ = 0;
  if (num_blocks > 0) {
    top_bit_ = 1;
    while (top_bit_ * 2 <= num_blocks) top_bit_ *= 2;
  }
}

void PositionSet::set(size_t pos, bool in) {
  uint64_t& word = words_[pos / 64];
  const uint64_t bit = uint64_t{1} << (pos % 64);
  if (((word & bit) != 0) == in) return;
  word ^= bit;
  const int32_t d = in ? 1 : -1;
  count_ += d;
  for (size_t i = pos / 64 / kBlockWords + 1; i < tree_.size(); i += i & (~i + 1)) tree_[i] += d;
}

COHORT_POPCNT_CLONES void PositionSet::select_sorted(std::span<const uint64_t> ks,
                                                     std::span<size_t> out) const {
  // Few picks over many words: one descent each.
  if (ks.size() * 32 < words_.size()) {
    for (size_t j = 0; j < ks.size(); ++j) out[j] = select(static_cast<int64_t>(ks[j]));
    return;
  }
  size_t w = 0;
  uint64_t before = 0;  // positions in the set in words [0, w)
  for (size_t j = 0; j < ks.size(); ++j) {
    for (uint64_t c; before + (c = std::popcount(words_[w])) <= ks[j]; ++w) before += c;
    out[j] = w * 64 + select_in_word(words_[w], static_cast<int>(ks[j] - before));
  }
}

COHORT_POPCNT_CLONES size_t PositionSet::select(int64_t k) const {
  // Descends the implicit tree: the largest prefix of blocks whose count is <= k ends right
  // before the block that holds the k-th position.
  size_t block = 0;
  int64_t left = k;
  for (size_t step = top_bit_; step > 0; step /= 2) {
    const size_t next = block + step;
    if (next < tree_.size() && tree_[next] <= left) {
      block = next;
      left -= tree_[next];
    }
  }
  // `block` is now the 0-based index of that block; count through its words.
  for (size_t w = block * kBlockWords;; ++w) {
    const int c = std::popcount(words_[w]);
    if (left < c) return w * 64 + select_in_word(words_[w], static_cast<int>(left));
    left -= c;
  }
}

}  // namespace cohort
