#include "cohort/core/fragments.h"

#include <algorithm>
#include <string>

namespace cohort {

Result<Fragments> Fragments::create(int64_t numel, int64_t count, int64_t block) {
  if (numel < 0) return Status::invalid_argument("fragments: negative element count");
  if (count < 1) {
    return Status::invalid_argument("fragments: the count must be >= 1, got " +
                                    std::to_string(count));
  }
  if (block < 1) {
    return Status::invalid_argument("fragments: the block size must be >= 1, got " +
                                    std::to_string(block));
  }
  return Fragments(numel, count, block);
}

int64_t Fragments::size(int64_t p) const {
  int64_t n = 0;
  for_each_range(p, [&](int64_t, int64_t len) { n += len; });
  return n;
}

void Fragments::gather(int64_t p, std::span<const float> full, std::span<float> out) const {
  int64_t at = 0;
  for_each_range(p, [&](int64_t first, int64_t n) {
    std::copy_n(full.begin() + first, n, out.begin() + at);
    at += n;
  });
}

void Fragments::scatter(int64_t p, std::span<const float> in, std::span<float> full) const {
  int64_t at = 0;
  for_each_range(p, [&](int64_t first, int64_t n) {
    std::copy_n(in.begin() + at, n, full.begin() + first);
    at += n;
  });
}

}  // namespace cohort
