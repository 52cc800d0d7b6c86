// The messages of a secure-aggregation round and their byte format.
//
// Every message starts with the same 10-byte header: version (u8, kWireVersion), kind (u8,
// MessageKind), round (u64). Integers are little-endian; client ids are i64; keys, digests and
// ciphertexts are fixed-size byte strings; lists are a u32 count followed by fixed-size entries.
// A message is exactly as long as its fields: decode() returns
//   * DataLoss "secagg ShareKeys: truncated in field 'shares[2].ciphertext' (needs 120 bytes at
//     offset 52, 7 left)" for a message cut short or a count larger than the bytes that follow,
//     and DataLoss "... 3 trailing bytes after the last field" for extra bytes,
//   * InvalidArgument naming the field for a value out of its domain ("version: unsupported 2,
//     expected 1", "kind: expected ShareKeys (3), got MaskedInput (5)", "clients: not strictly
//     increasing at index 4", "words: padding bits after the last word are not zero").
// Decoding never aborts, whatever the bytes, and allocates at most 32 bytes per input byte (a
// MaskedInput of 1-bit words); a count larger than the bytes that follow fails before allocating.
//
// Formats (after the header; sizes in bytes):
//   AdvertiseKeys   sender i64, channel_key 32, mask_key 32
//   Roster          recipient i64, threshold i32, neighbours i32, bits i32, length i64,
//                   graph_seed 32, count u32 + clients count x i64 (strictly increasing),
//                   count u32 + keys count x (id i64, channel_key 32, mask_key 32)
//   ShareKeys       sender i64, commitment 32, count u32 + count x (recipient i64, ciphertext 120)
//   ShareBundle     recipient i64, count u32 + count x (sender i64, ciphertext 120)
//   MaskedInput     sender i64, bits u8, length u64, ceil(length * bits / 8) bytes of words packed
//                   least-significant bit first (padding bits zero)
//   UnmaskRequest   recipient i64, count u32 + survivors count x i64, count u32 + dropped count x
//                   i64 (each strictly increasing)
//   UnmaskResponse  sender i64, count u32 + count x (owner i64, secret u8, share 40),
//                   count u32 + unusable count x i64
// A share is the 5 Shamir limbs (u64 each, < 2^61 - 1) of one secret at the holder's
// x-coordinate. The ciphertext is ChaCha20-Poly1305 (IETF) of the 104-byte plaintext
// (round u64, sender i64, recipient i64, mask-key share 40, self-mask-seed share 40) plus its
// 16-byte tag; the format of the plaintext is private to the protocol.
//
// Thread safety: plain values.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/secagg/params.h"

namespace cohort::secagg {

inline constexpr uint8_t kWireVersion = 1;
inline constexpr size_t kHeaderSize = 10;
inline constexpr size_t kKeySize = 32;
inline constexpr size_t kShareSize = 40;
inline constexpr size_t kSharePlaintextSize = 8 + 8 + 8 + 2 * kShareSize;
inline constexpr size_t kCiphertextSize = kSharePlaintextSize + 16;

using PublicKey = std::array<uint8_t, kKeySize>;
using Digest = std::array<uint8_t, kKeySize>;
using ShareBytes = std::array<uint8_t, kShareSize>;
using Ciphertext = std::array<uint8_t, kCiphertextSize>;

enum class MessageKind : uint8_t {
  kAdvertiseKeys = 1,   // client -> server, stage 0
  kRoster = 2,          // server -> client, opens stage 1
  kShareKeys = 3,       // client -> server, stage 1
  kShareBundle = 4,     // server -> client, opens stage 2
  kMaskedInput = 5,     // client -> server, stage 2
  kUnmaskRequest = 6,   // server -> client, opens stage 3
  kUnmaskResponse = 7,  // client -> server, stage 3
};
inline constexpr size_t kNumMessageKinds = 8;  // index 0 unused
// "AdvertiseKeys", ...; "unknown" for other values.
std::string_view message_kind_name(MessageKind kind);

// Which of a client's two secrets a share belongs to.
enum class SecretKind : uint8_t {
  kSelfMaskSeed = 1,  // b_u: revealed for clients whose masked input is in the sum
  kMaskKey = 2,       // s_sk_u: revealed for clients that dropped after sharing their keys
};

struct AdvertiseKeys {
  uint64_t round = 0;
  ClientId sender = 0;
  PublicKey channel_key{};  // c_pk: X25519, encrypts shares between neighbours
  PublicKey mask_key{};     // s_pk: X25519, agrees pairwise mask seeds

  std::vector<uint8_t> encode() const;
  static Result<AdvertiseKeys> decode(std::span<const uint8_t> bytes);
  friend bool operator==(const AdvertiseKeys&, const AdvertiseKeys&) = default;
};

struct KeyEntry {
  ClientId id = 0;
  PublicKey channel_key{};
  PublicKey mask_key{};
  friend bool operator==(const KeyEntry&, const KeyEntry&) = default;
};

// The clients that advertised keys (U1) and the keys of the recipient's neighbours.
struct Roster {
  ClientId recipient = 0;
  Params params;                  // params.round is the header's round
  std::vector<ClientId> clients;  // U1, strictly increasing
  std::vector<KeyEntry> keys;     // the recipient's neighbours, in increasing id order

  std::vector<uint8_t> encode() const;
  static Result<Roster> decode(std::span<const uint8_t> bytes);
  friend bool operator==(const Roster&, const Roster&) = default;
};

struct EncryptedShare {
  ClientId peer = 0;  // the recipient in ShareKeys, the sender in ShareBundle
  Ciphertext ciphertext{};
  friend bool operator==(const EncryptedShare&, const EncryptedShare&) = default;
};

struct ShareKeys {
  uint64_t round = 0;
  ClientId sender = 0;
  Digest commitment{};                 // BLAKE2b(b_u || round || u), checks a reconstructed b_u
  std::vector<EncryptedShare> shares;  // one per neighbour

  std::vector<uint8_t> encode() const;
  static Result<ShareKeys> decode(std::span<const uint8_t> bytes);
  friend bool operator==(const ShareKeys&, const ShareKeys&) = default;
};

// The ciphertexts addressed to one client by its neighbours in U2.
struct ShareBundle {
  uint64_t round = 0;
  ClientId recipient = 0;
  std::vector<EncryptedShare> shares;

  std::vector<uint8_t> encode() const;
  static Result<ShareBundle> decode(std::span<const uint8_t> bytes);
  friend bool operator==(const ShareBundle&, const ShareBundle&) = default;
};

struct MaskedInput {
  uint64_t round = 0;
  ClientId sender = 0;
  int32_t bits = 32;            // 1..32
  std::vector<uint32_t> words;  // each < 2^bits

  // Asserts on words >= 2^bits (a bug in the caller); decode cannot produce them.
  std::vector<uint8_t> encode() const;
  static Result<MaskedInput> decode(std::span<const uint8_t> bytes);
  friend bool operator==(const MaskedInput&, const MaskedInput&) = default;
};

struct UnmaskRequest {
  uint64_t round = 0;
  ClientId recipient = 0;
  std::vector<ClientId> survivors;  // U3, strictly increasing
  std::vector<ClientId> dropped;    // U2 \ U3, strictly increasing

  std::vector<uint8_t> encode() const;
  static Result<UnmaskRequest> decode(std::span<const uint8_t> bytes);
  friend bool operator==(const UnmaskRequest&, const UnmaskRequest&) = default;
};

struct RevealedShare {
  ClientId owner = 0;
  SecretKind secret = SecretKind::kSelfMaskSeed;
  ShareBytes share{};
  friend bool operator==(const RevealedShare&, const RevealedShare&) = default;
};

struct UnmaskResponse {
  uint64_t round = 0;
  ClientId sender = 0;
  std::vector<RevealedShare> shares;
  // Neighbours whose ciphertext to the sender failed to decrypt or named the wrong round or
  // clients (reported, so the server can tell a missing share from a silent client).
  std::vector<ClientId> unusable;

  std::vector<uint8_t> encode() const;
  static Result<UnmaskResponse> decode(std::span<const uint8_t> bytes);
  friend bool operator==(const UnmaskResponse&, const UnmaskResponse&) = default;
};

// The kind byte of an encoded message; InvalidArgument when too short or unknown.
Result<MessageKind> peek_kind(std::span<const uint8_t> bytes);

}  // namespace cohort::secagg
