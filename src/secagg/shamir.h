// Shamir secret sharing of 32-byte secrets over the prime field p = 2^61 - 1 (private to the
// secagg module).
//
// A secret is cut into 5 limbs of 7 bytes (little-endian; the last limb holds the final 4
// bytes), each limb < 2^56 < p, and every limb is shared with its own random polynomial of
// degree t - 1 whose coefficients come from libsodium's randombytes_buf (rejection-sampled
// into [0, p)). A share is (x, y[5]); in the protocol x is the holder's 1-based position in the
// sorted roster. combine() interpolates at 0 through all the shares it is given, so more than t
// shares of one polynomial give the same secret, and a single wrong share changes the result
// (the protocol then checks the secret against a commitment and leaves shares out one at a
// time).
//
// Thread safety: free functions; split() draws from libsodium's thread-safe generator.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/secagg/messages.h"

namespace cohort::secagg::shamir {

inline constexpr uint64_t kPrime = (uint64_t{1} << 61) - 1;
inline constexpr int kLimbs = 5;
inline constexpr int kLimbBytes = 7;

using Secret = std::array<uint8_t, 32>;

struct Share {
  uint64_t x = 0;                    // in [1, p)
  std::array<uint64_t, kLimbs> y{};  // each in [0, p)
  friend bool operator==(const Share&, const Share&) = default;
};

// a * b mod p and a + b mod p for a, b < p.
uint64_t mul_mod(uint64_t a, uint64_t b);
uint64_t add_mod(uint64_t a, uint64_t b);
uint64_t sub_mod(uint64_t a, uint64_t b);
// a^(p-2) mod p: the inverse of a != 0.
uint64_t inverse(uint64_t a);

// The secret's limbs (each < 2^56), and back (InvalidArgument when a limb is >= 2^56, or the
// last limb >= 2^32: not a secret's limb).
std::array<uint64_t, kLimbs> to_limbs(const Secret& secret);
Result<Secret> from_limbs(const std::array<uint64_t, kLimbs>& limbs);

// One share per x in xs, any t of which reconstruct the secret. InvalidArgument unless
// 1 <= t <= xs.size() and the xs are distinct and in [1, p).
Result<std::vector<Share>> split(const Secret& secret, int32_t t, std::span<const uint64_t> xs);

// The secret through all given shares. InvalidArgument for fewer than t shares or repeated
// xs; DataLoss "shares do not reconstruct a secret" when the interpolated limbs are not a
// secret's (some share was wrong).
Result<Secret> combine(std::span<const Share> shares, int32_t t);

// A share's y limbs as 40 bytes (u64 little-endian each), and back at a given x
// (InvalidArgument "limb 2 is not below 2^61 - 1" for bytes no share encodes).
ShareBytes to_bytes(const Share& share);
Result<Share> from_bytes(uint64_t x, const ShareBytes& bytes);

}  // namespace cohort::secagg::shamir
