// FNV-1a, 64-bit: the stable, non-cryptographic hash of model hashes, seeds and checkpoint
// checksums. Never for anything an adversary chooses to collide (libsodium for that).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cohort {

inline constexpr uint64_t kFnvOffset = 1469598103934665603ULL;

// Continues hash `h` over `n` bytes at `p`.
inline uint64_t fnv1a64(const void* p, size_t n, uint64_t h = kFnvOffset) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) {
    h ^= b[i];
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace cohort
