// The cryptography of the secure-aggregation protocol, all of it libsodium (private to the
// secagg module; header-only so the module's sources stay the ones its CMake lists):
//   * X25519 key pairs (crypto_box_keypair) and agreement (crypto_scalarmult, which refuses
//     low-order points),
//   * key derivation: BLAKE2b-256 (crypto_generichash) over a purpose label, the shared point
//     and the context (round, two client ids),
//   * the commitment to a self-mask seed: BLAKE2b-256 over (label, seed, round, owner),
//   * ChaCha20-Poly1305 IETF for the shares sent through the server: each key encrypts exactly
//     one message (it is derived from the round and the ordered pair of clients, and key pairs
//     are fresh per session), so the nonce is fixed at zero,
//   * the mask PRG: word i of PRG(seed) is the little-endian u32 at byte 4i of the ChaCha20
//     IETF keystream (key = seed, zero nonce), reduced mod 2^bits. Masks are streamed in chunks
//     of kMaskChunkWords words (16 KiB of keystream, 256 ChaCha20 blocks) starting at block
//     lo / 16 with crypto_stream_chacha20_ietf_xor_ic, so chunks are independent and the result
//     is the same for any thread count.
//
// Thread safety: free functions; libsodium is thread-safe after init().
#pragma once

#include <sodium.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "cohort/core/parallel.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/secagg/messages.h"

namespace cohort::secagg::crypto {

using Key = std::array<uint8_t, 32>;

inline constexpr std::string_view kChannelLabel = "cohort.secagg.v1.channel";
inline constexpr std::string_view kMaskLabel = "cohort.secagg.v1.mask";
inline constexpr std::string_view kCommitLabel = "cohort.secagg.v1.commit";
inline constexpr int64_t kMaskChunkWords = 4096;

// sodium_init(); Internal when libsodium cannot start.
inline Status init() {
  if (sodium_init() < 0) return Status::internal("secagg: libsodium failed to initialise");
  return Status();
}

inline void random_bytes(std::span<uint8_t> out) { randombytes_buf(out.data(), out.size()); }

struct KeyPair {
  PublicKey public_key{};
  Key secret_key{};
};

inline KeyPair make_key_pair() {
  KeyPair kp;
  crypto_box_keypair(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

inline PublicKey public_key_of(const Key& secret_key) {
  PublicKey pk{};
  crypto_scalarmult_base(pk.data(), secret_key.data());
  return pk;
}

// X25519(secret_key, public_key); false for a low-order public key (the shared point would be
// known to everyone).
inline bool agree(const Key& secret_key, const PublicKey& public_key, Key* shared) {
  return crypto_scalarmult(shared->data(), secret_key.data(), public_key.data()) == 0;
}

// Whether X25519 with this public key gives a usable shared point.
inline bool usable_public_key(const PublicKey& public_key) {
  Key probe;
  probe.fill(0x5a);
  Key shared{};
  const bool ok = agree(probe, public_key, &shared);
  sodium_memzero(shared.data(), shared.size());
  return ok;
}

inline void put_u64(crypto_generichash_state* st, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  crypto_generichash_update(st, b, sizeof(b));
}

// BLAKE2b-256(label || 0 || shared || round || a || b).
inline Key derive(std::string_view label, const Key& shared, uint64_t round, ClientId a,
                  ClientId b) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(label.data()), label.size());
  const uint8_t zero = 0;
  crypto_generichash_update(&st, &zero, 1);
  crypto_generichash_update(&st, shared.data(), shared.size());
  put_u64(&st, round);
  put_u64(&st, static_cast<uint64_t>(a));
  put_u64(&st, static_cast<uint64_t>(b));
  Key out{};
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(&st, sizeof(st));
  return out;
}

// The key that encrypts shares from `sender` to `recipient`: derived from X25519 of one's
// channel secret key and the other's channel public key.
inline bool channel_key(const Key& secret_key, const PublicKey& peer_key, uint64_t round,
                        ClientId sender, ClientId recipient, Key* out) {
  Key shared{};
  if (!agree(secret_key, peer_key, &shared)) return false;
  *out = derive(kChannelLabel, shared, round, sender, recipient);
  sodium_memzero(shared.data(), shared.size());
  return true;
}

// The pairwise mask seed s_{u,v}: the same for (u, v) and (v, u).
inline bool pairwise_seed(const Key& secret_key, const PublicKey& peer_key, uint64_t round,
                          ClientId u, ClientId v, Key* out) {
  Key shared{};
  if (!agree(secret_key, peer_key, &shared)) return false;
  *out = derive(kMaskLabel, shared, round, std::min(u, v), std::max(u, v));
  sodium_memzero(shared.data(), shared.size());
  return true;
}

// BLAKE2b-256(label || 0 || seed || round || owner).
inline Digest commit(const Key& seed, uint64_t round, ClientId owner) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kCommitLabel.data()),
                            kCommitLabel.size());
  const uint8_t zero = 0;
  crypto_generichash_update(&st, &zero, 1);
  crypto_generichash_update(&st, seed.data(), seed.size());
  put_u64(&st, round);
  put_u64(&st, static_cast<uint64_t>(owner));
  Digest out{};
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

// Associated data of a share ciphertext: round, sender, recipient (u64 little-endian each).
inline std::array<uint8_t, 24> share_ad(uint64_t round, ClientId sender, ClientId recipient) {
  std::array<uint8_t, 24> ad{};
  const uint64_t v[3] = {round, static_cast<uint64_t>(sender), static_cast<uint64_t>(recipient)};
  for (int f = 0; f < 3; ++f) {
    for (int i = 0; i < 8; ++i) ad[f * 8 + i] = static_cast<uint8_t>(v[f] >> (8 * i));
  }
  return ad;
}

inline Ciphertext seal(const Key& key, std::span<const uint8_t, kSharePlaintextSize> plaintext,
                       std::span<const uint8_t> ad) {
  static_assert(kCiphertextSize == kSharePlaintextSize + crypto_aead_chacha20poly1305_ietf_ABYTES);
  const std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce{};
  Ciphertext out{};
  unsigned long long out_len = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &out_len, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            nonce.data(), key.data());
  return out;
}

// False when the tag does not verify (wrong key, associated data or bytes).
inline bool open(const Key& key, const Ciphertext& ciphertext, std::span<const uint8_t> ad,
                 std::span<uint8_t, kSharePlaintextSize> plaintext) {
  const std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce{};
  unsigned long long out_len = 0;
  return crypto_aead_chacha20poly1305_ietf_decrypt(plaintext.data(), &out_len, nullptr,
                                                   ciphertext.data(), ciphertext.size(), ad.data(),
                                                   ad.size(), nonce.data(), key.data()) == 0 &&
         out_len == kSharePlaintextSize;
}

// One PRG stream added to or subtracted from a vector.
struct MaskTerm {
  Key seed{};
  bool subtract = false;
};

// words[lo, hi) += / -= PRG(seed)[lo, hi) for every term (mod 2^32); lo is a multiple of 16
// and hi - lo <= kMaskChunkWords.
inline void apply_masks_chunk(uint32_t* words, int64_t lo, int64_t hi,
                              std::span<const MaskTerm> terms) {
  static const uint8_t kZeros[kMaskChunkWords * 4] = {};
  alignas(64) uint32_t stream[kMaskChunkWords];
  const std::array<uint8_t, crypto_stream_chacha20_ietf_NONCEBYTES> nonce{};
  const size_t n = static_cast<size_t>(hi - lo);
  const uint32_t block = static_cast<uint32_t>(lo / 16);
  uint32_t* w = words + lo;
  for (const MaskTerm& term : terms) {
    crypto_stream_chacha20_ietf_xor_ic(reinterpret_cast<uint8_t*>(stream), kZeros, n * 4,
                                       nonce.data(), block, term.seed.data());
    if constexpr (std::endian::native == std::endian::big) {
      for (size_t i = 0; i < n; ++i) stream[i] = __builtin_bswap32(stream[i]);
    }
    if (term.subtract) {
      for (size_t i = 0; i < n; ++i) w[i] -= stream[i];
    } else {
      for (size_t i = 0; i < n; ++i) w[i] += stream[i];
    }
  }
  sodium_memzero(stream, sizeof(stream));
}

// words = words +/- sum of the terms' PRG streams, reduced to `mask` (2^bits - 1). Splits the
// vector into fixed chunks on `pool` when given (bit-identical for any thread count).
inline void apply_masks(std::span<uint32_t> words, std::span<const MaskTerm> terms, uint32_t mask,
                        ThreadPool* pool) {
  const auto body = [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; c += kMaskChunkWords) {
      const int64_t end = std::min(hi, c + kMaskChunkWords);
      apply_masks_chunk(words.data(), c, end, terms);
      for (int64_t i = c; i < end; ++i) words[static_cast<size_t>(i)] &= mask;
    }
  };
  const int64_t m = static_cast<int64_t>(words.size());
  if (pool != nullptr && pool->size() > 1 && m > kMaskChunkWords) {
    // Chunks of 16 mask chunks per job: few enough jobs to keep the pool's overhead small.
    pool->parallel_for(0, m, 16 * kMaskChunkWords, body);
  } else {
    body(0, m);
  }
}

}  // namespace cohort::secagg::crypto
