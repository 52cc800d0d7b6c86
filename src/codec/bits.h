// Helpers the codecs share: a counter-based uniform keyed by (seed, element), so stochastic
// rounding draws the same number for an element whatever the thread or frame that encodes it,
// and little-endian loads and stores.
#pragma once

#include <cstdint>
#include <cstring>

namespace cohort::codec::detail {

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// The key of a run of elements sharing the upper 32 bits of their index.
inline uint32_t run_key(uint64_t seed, uint64_t element) {
  return fmix32(static_cast<uint32_t>(seed) ^
                fmix32(static_cast<uint32_t>(seed >> 32) ^
                       (static_cast<uint32_t>(element >> 32) * 0x27d4eb2fu)));
}

// A uniform in [0, 1) with 24 random bits (exact in float32) for element `lo` (the lower 32
// bits of its index) under `key`.
inline float uniform24(uint32_t key, uint32_t lo) {
  return static_cast<float>(fmix32(lo * 0x9e3779b1u ^ key) >> 8) * (1.0f / 16777216.0f);
}

inline void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store_f32(uint8_t* p, float v) { std::memcpy(p, &v, 4); }
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace cohort::codec::detail
