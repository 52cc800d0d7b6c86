// LazyTable: one record per position 0 .. n-1, each created the first time it is asked for,
// so that a population of a million clients of which a few thousand take part costs per
// client only what the few thousand use (docs/design/scale.md).
//
// Positions are grouped in chunks of 512 pointer slots (4 KB), a chunk allocated (zeroed) the
// first time one of its records is created; reset(n) allocates only the n / 512 chunk
// pointers. (A calloc'd array of n slots was tried: reading an untouched slot maps the
// kernel's shared zero page, and the first write then replaces that mapping, which on a
// multi-threaded process costs a TLB shootdown on every core -- ~15 us each, 29 ms for the
// first round of 1,000 clients of a million.) A record lives in a deque (its address never
// changes) from the first get() of its position; find() tells whether it exists without
// creating it.
//
// Not thread-safe; the owner's loop owns it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <memory>
#include <vector>

namespace cohort {

template <typename T>
class LazyTable {
 public:
  // Empties the table and sizes it to positions 0 .. n-1, none created.
  void reset(size_t n) {
    store_.clear();
    order_.clear();
    chunks_.clear();
    chunks_.resize((n + kChunk - 1) / kChunk);
    n_ = n;
  }
  size_t size() const { return n_; }
  // The record at `pos`, or null when it was never created. REQUIRES: pos < size().
  T* find(size_t pos) const {
    const std::unique_ptr<T*[]>& chunk = chunks_[pos / kChunk];
    return chunk ? chunk[pos % kChunk] : nullptr;
  }
  // Asks the processor to fetch the slot of `pos`, which find() or get() will read soon.
  void prefetch(size_t pos) const {
    if (const std::unique_ptr<T*[]>& chunk = chunks_[pos / kChunk]) {
      __builtin_prefetch(&chunk[pos % kChunk]);
    }
  }
  // The record at `pos`, created as make() the first time. REQUIRES: pos < size().
  template <typename Make>
  T& get(size_t pos, Make&& make) {
    std::unique_ptr<T*[]>& chunk = chunks_[pos / kChunk];
    if (!chunk) chunk = std::make_unique<T*[]>(kChunk);  // zeroed
    T*& slot = chunk[pos % kChunk];
    if (slot == nullptr) {
      slot = &store_.emplace_back(make());
      order_.push_back(pos);
    }
    return *slot;
  }
  // How many records exist.
  size_t created() const { return store_.size(); }
  // The positions whose records exist, ascending.
  std::vector<size_t> created_positions() const {
    std::vector<size_t> out = order_;
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  static constexpr size_t kChunk = 512;
  std::vector<std::unique_ptr<T*[]>> chunks_;
  std::deque<T> store_;
  std::vector<size_t> order_;  // positions in creation order
  size_t n_ = 0;
};

}  // namespace cohort
