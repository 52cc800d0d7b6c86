// Shamir secret sharing over GF(2^61 - 1): limb packing, split with libsodium randomness,
// Lagrange interpolation at 0 (one coefficient per share, used for all five limbs).
#include "secagg/shamir.h"

#include <sodium.h>

#include <algorithm>
#include <string>

namespace cohort::secagg::shamir {
namespace {

// A uniform field element: 61 random bits, rejecting the one value (p itself) outside [0, p).
uint64_t random_element() {
  for (;;) {
    uint64_t v = 0;
    randombytes_buf(&v, sizeof(v));
    v &= kPrime;  // p = 2^61 - 1 is also the 61-bit mask
    if (v < kPrime) return v;
  }
}

Status check_xs(std::span<const uint64_t> xs) {
  std::vector<uint64_t> sorted(xs.begin(), xs.end());
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] == 0 || sorted[i] >= kPrime) {
      return Status::invalid_argument("shamir: x-coordinate " + std::to_string(sorted[i]) +
                                      " is not in [1, 2^61 - 1)");
    }
    if (i > 0 && sorted[i] == sorted[i - 1]) {
      return Status::invalid_argument("shamir: x-coordinate " + std::to_string(sorted[i]) +
                                      " appears twice");
    }
  }
  return Status();
}

}  // namespace

uint64_t mul_mod(uint64_t a, uint64_t b) {
  const unsigned __int128 prod = static_cast<unsigned __int128>(a) * b;
  // 2^61 = 1 (mod p): fold the high bits onto the low ones.
  uint64_t r = (static_cast<uint64_t>(prod) & kPrime) + static_cast<uint64_t>(prod >> 61);
  if (r >= kPrime) r -= kPrime;
  return r;
}

uint64_t add_mod(uint64_t a, uint64_t b) {
  uint64_t r = a + b;  // < 2^62, no overflow
  if (r >= kPrime) r -= kPrime;
  return r;
}

uint64_t sub_mod(uint64_t a, uint64_t b) { return a >= b ? a - b : a + kPrime - b; }

uint64_t inverse(uint64_t a) {
  uint64_t result = 1;
  uint64_t base = a;
  for (uint64_t e = kPrime - 2; e > 0; e >>= 1) {
    if (e & 1) result = mul_mod(result, base);
    base = mul_mod(base, base);
  }
  return result;
}

std::array<uint64_t, kLimbs> to_limbs(const Secret& secret) {
  std::array<uint64_t, kLimbs> limbs{};
  for (size_t i = 0; i < secret.size(); ++i) {
    limbs[i / kLimbBytes] |= static_cast<uint64_t>(secret[i]) << (8 * (i % kLimbBytes));
  }
  return limbs;
}

Result<Secret> from_limbs(const std::array<uint64_t, kLimbs>& limbs) {
  Secret secret{};
  for (int l = 0; l < kLimbs; ++l) {
    const int bytes = std::min<int>(kLimbBytes, static_cast<int>(secret.size()) - l * kLimbBytes);
    if (limbs[l] >> (8 * bytes) != 0) {
      return Status::data_loss("shamir: shares do not reconstruct a secret (limb " +
                               std::to_string(l) + " has more than " + std::to_string(8 * bytes) +
                               " bits)");
    }
    for (int b = 0; b < bytes; ++b) {
      secret[l * kLimbBytes + b] = static_cast<uint8_t>(limbs[l] >> (8 * b));
    }
  }
  return secret;
}

Result<std::vector<Share>> split(const Secret& secret, int32_t t, std::span<const uint64_t> xs) {
  if (t < 1 || static_cast<size_t>(t) > xs.size()) {
    return Status::invalid_argument("shamir: threshold " + std::to_string(t) + " must be in [1, " +
                                    std::to_string(xs.size()) + "]");
  }
  COHORT_RETURN_IF_ERROR(check_xs(xs));
  // coeffs[l][j]: coefficient of x^j of limb l's polynomial; coeffs[l][0] is the limb.
  std::vector<std::array<uint64_t, kLimbs>> coeffs(static_cast<size_t>(t));
  coeffs[0] = to_limbs(secret);
  for (int32_t j = 1; j < t; ++j) {
    for (int l = 0; l < kLimbs; ++l) coeffs[j][l] = random_element();
  }
  std::vector<Share> shares(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    shares[i].x = xs[i];
    for (int l = 0; l < kLimbs; ++l) {
      uint64_t y = 0;  // Horner
      for (int32_t j = t - 1; j >= 0; --j) y = add_mod(mul_mod(y, xs[i]), coeffs[j][l]);
      shares[i].y[l] = y;
    }
  }
  sodium_memzero(coeffs.data(), coeffs.size() * sizeof(coeffs[0]));
  return shares;
}

Result<Secret> combine(std::span<const Share> shares, int32_t t) {
  if (t < 1 || shares.size() < static_cast<size_t>(t)) {
    return Status::invalid_argument("shamir: " + std::to_string(shares.size()) +
                                    " shares, need at least " + std::to_string(t));
  }
  std::vector<uint64_t> xs(shares.size());
  for (size_t i = 0; i < shares.size(); ++i) xs[i] = shares[i].x;
  COHORT_RETURN_IF_ERROR(check_xs(xs));
  std::array<uint64_t, kLimbs> limbs{};
  for (size_t i = 0; i < shares.size(); ++i) {
    // Lagrange basis polynomial i at 0: prod_{j != i} x_j / (x_j - x_i).
    uint64_t num = 1;
    uint64_t den = 1;
    for (size_t j = 0; j < shares.size(); ++j) {
      if (j == i) continue;
      num = mul_mod(num, xs[j]);
      den = mul_mod(den, sub_mod(xs[j], xs[i]));
    }
    const uint64_t coeff = mul_mod(num, inverse(den));
    for (int l = 0; l < kLimbs; ++l) {
      if (shares[i].y[l] >= kPrime) {
        return Status::invalid_argument("shamir: share at x = " + std::to_string(xs[i]) +
                                        " has limb " + std::to_string(l) + " not below 2^61 - 1");
      }
      limbs[l] = add_mod(limbs[l], mul_mod(coeff, shares[i].y[l]));
    }
  }
  return from_limbs(limbs);
}

ShareBytes to_bytes(const Share& share) {
  ShareBytes out{};
  for (int l = 0; l < kLimbs; ++l) {
    for (int b = 0; b < 8; ++b) out[l * 8 + b] = static_cast<uint8_t>(share.y[l] >> (8 * b));
  }
  return out;
}

Result<Share> from_bytes(uint64_t x, const ShareBytes& bytes) {
  Share share;
  share.x = x;
  for (int l = 0; l < kLimbs; ++l) {
    uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v |= static_cast<uint64_t>(bytes[l * 8 + b]) << (8 * b);
    if (v >= kPrime) {
      return Status::invalid_argument("limb " + std::to_string(l) + " is not below 2^61 - 1");
    }
    share.y[l] = v;
  }
  return share;
}

}  // namespace cohort::secagg::shamir
