// Encoding and decoding of the secagg messages (formats in include/cohort/secagg/messages.h).
// Every decode reads through wire::Reader, so a short, long or forged message is an error
// naming the field, never an out-of-bounds read or an allocation larger than the input.
#include "cohort/secagg/messages.h"

#include <cassert>
#include <string>

#include "secagg/shamir.h"
#include "secagg/wire.h"

namespace cohort::secagg {
namespace {

constexpr size_t kIdSize = 8;
constexpr size_t kKeyEntrySize = kIdSize + 2 * kKeySize;
constexpr size_t kEncryptedShareSize = kIdSize + kCiphertextSize;
constexpr size_t kRevealedShareSize = kIdSize + 1 + kShareSize;

std::string indexed(std::string_view field, size_t i, std::string_view member = {}) {
  std::string s(field);
  s += "[" + std::to_string(i) + "]";
  if (!member.empty()) {
    s += ".";
    s += member;
  }
  return s;
}

Status read_ids(wire::Reader& r, std::string_view field, std::vector<ClientId>* ids) {
  uint32_t n = 0;
  COHORT_RETURN_IF_ERROR(r.count(field, kIdSize, &n));
  ids->resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    COHORT_RETURN_IF_ERROR(r.i64(indexed(field, i), &(*ids)[i]));
    if (i > 0 && (*ids)[i] <= (*ids)[i - 1]) {
      return r.invalid(field, "not strictly increasing at index " + std::to_string(i) + " (" +
                                  std::to_string((*ids)[i]) + " after " +
                                  std::to_string((*ids)[i - 1]) + ")");
    }
  }
  return Status();
}

void write_ids(wire::Writer& w, const std::vector<ClientId>& ids) {
  w.u32(static_cast<uint32_t>(ids.size()));
  for (ClientId id : ids) w.i64(id);
}

Status read_encrypted(wire::Reader& r, std::string_view field, std::string_view peer_name,
                      std::vector<EncryptedShare>* out) {
  uint32_t n = 0;
  COHORT_RETURN_IF_ERROR(r.count(field, kEncryptedShareSize, &n));
  out->resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    EncryptedShare& e = (*out)[i];
    COHORT_RETURN_IF_ERROR(r.i64(indexed(field, i, peer_name), &e.peer));
    COHORT_RETURN_IF_ERROR(r.bytes(indexed(field, i, "ciphertext"), e.ciphertext));
    if (i > 0 && e.peer <= (*out)[i - 1].peer) {
      return r.invalid(indexed(field, i, peer_name), "not strictly increasing (" +
                                                         std::to_string(e.peer) + " after " +
                                                         std::to_string((*out)[i - 1].peer) + ")");
    }
  }
  return Status();
}

void write_encrypted(wire::Writer& w, const std::vector<EncryptedShare>& shares) {
  w.u32(static_cast<uint32_t>(shares.size()));
  for (const EncryptedShare& e : shares) {
    w.i64(e.peer);
    w.bytes(e.ciphertext);
  }
}

}  // namespace

std::string_view message_kind_name(MessageKind kind) {
  switch (kind) {
    case MessageKind::kAdvertiseKeys:
      return "AdvertiseKeys";
    case MessageKind::kRoster:
      return "Roster";
    case MessageKind::kShareKeys:
      return "ShareKeys";
    case MessageKind::kShareBundle:
      return "ShareBundle";
    case MessageKind::kMaskedInput:
      return "MaskedInput";
    case MessageKind::kUnmaskRequest:
      return "UnmaskRequest";
    case MessageKind::kUnmaskResponse:
      return "UnmaskResponse";
  }
  return "unknown";
}

Result<MessageKind> peek_kind(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) {
    return Status::data_loss("secagg message: " + std::to_string(bytes.size()) +
                             " bytes, shorter than the " + std::to_string(kHeaderSize) +
                             "-byte header");
  }
  if (bytes[0] != kWireVersion) {
    return Status::invalid_argument("secagg message: version: unsupported " +
                                    std::to_string(bytes[0]) + ", expected " +
                                    std::to_string(kWireVersion));
  }
  const auto kind = static_cast<MessageKind>(bytes[1]);
  if (message_kind_name(kind) == "unknown") {
    return Status::invalid_argument("secagg message: kind: unknown " + std::to_string(bytes[1]));
  }
  return kind;
}

// --- AdvertiseKeys

std::vector<uint8_t> AdvertiseKeys::encode() const {
  wire::Writer w(MessageKind::kAdvertiseKeys, round, kHeaderSize + kKeyEntrySize);
  w.i64(sender);
  w.bytes(channel_key);
  w.bytes(mask_key);
  return w.take();
}

Result<AdvertiseKeys> AdvertiseKeys::decode(std::span<const uint8_t> bytes) {
  wire::Reader r(bytes, MessageKind::kAdvertiseKeys);
  AdvertiseKeys m;
  COHORT_RETURN_IF_ERROR(r.header(&m.round));
  COHORT_RETURN_IF_ERROR(r.i64("sender", &m.sender));
  COHORT_RETURN_IF_ERROR(r.bytes("channel_key", m.channel_key));
  COHORT_RETURN_IF_ERROR(r.bytes("mask_key", m.mask_key));
  COHORT_RETURN_IF_ERROR(r.finish());
  return m;
}

// --- Roster

std::vector<uint8_t> Roster::encode() const {
  wire::Writer w(MessageKind::kRoster, params.round,
                 kHeaderSize + 64 + clients.size() * kIdSize + keys.size() * kKeyEntrySize);
  w.i64(recipient);
  w.i32(params.threshold);
  w.i32(params.neighbours);
  w.i32(params.bits);
  w.i64(params.length);
  w.bytes(params.graph_seed);
  write_ids(w, clients);
  w.u32(static_cast<uint32_t>(keys.size()));
  for (const KeyEntry& k : keys) {
    w.i64(k.id);
    w.bytes(k.channel_key);
    w.bytes(k.mask_key);
  }
  return w.take();
}

Result<Roster> Roster::decode(std::span<const uint8_t> bytes) {
  wire::Reader r(bytes, MessageKind::kRoster);
  Roster m;
  COHORT_RETURN_IF_ERROR(r.header(&m.params.round));
  COHORT_RETURN_IF_ERROR(r.i64("recipient", &m.recipient));
  COHORT_RETURN_IF_ERROR(r.i32("threshold", &m.params.threshold));
  COHORT_RETURN_IF_ERROR(r.i32("neighbours", &m.params.neighbours));
  COHORT_RETURN_IF_ERROR(r.i32("bits", &m.params.bits));
  COHORT_RETURN_IF_ERROR(r.i64("length", &m.params.length));
  COHORT_RETURN_IF_ERROR(r.bytes("graph_seed", m.params.graph_seed));
  COHORT_RETURN_IF_ERROR(r.wrap(m.params.validate()));
  COHORT_RETURN_IF_ERROR(read_ids(r, "clients", &m.clients));
  uint32_t n = 0;
  COHORT_RETURN_IF_ERROR(r.count("keys", kKeyEntrySize, &n));
  m.keys.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    KeyEntry& k = m.keys[i];
    COHORT_RETURN_IF_ERROR(r.i64(indexed("keys", i, "id"), &k.id));
    COHORT_RETURN_IF_ERROR(r.bytes(indexed("keys", i, "channel_key"), k.channel_key));
    COHORT_RETURN_IF_ERROR(r.bytes(indexed("keys", i, "mask_key"), k.mask_key));
    if (i > 0 && k.id <= m.keys[i - 1].id) {
      return r.invalid(indexed("keys", i, "id"), "not strictly increasing (" +
                                                     std::to_string(k.id) + " after " +
                                                     std::to_string(m.keys[i - 1].id) + ")");
    }
  }
  COHORT_RETURN_IF_ERROR(r.finish());
  return m;
}

// --- ShareKeys

std::vector<uint8_t> ShareKeys::encode() const {
  wire::Writer w(MessageKind::kShareKeys, round,
                 kHeaderSize + kIdSize + kKeySize + 4 + shares.size() * kEncryptedShareSize);
  w.i64(sender);
  w.bytes(commitment);
  write_encrypted(w, shares);
  return w.take();
}

Result<ShareKeys> ShareKeys::decode(std::span<const uint8_t> bytes) {
  wire::Reader r(bytes, MessageKind::kShareKeys);
  ShareKeys m;
  COHORT_RETURN_IF_ERROR(r.header(&m.round));
  COHORT_RETURN_IF_ERROR(r.i64("sender", &m.sender));
  COHORT_RETURN_IF_ERROR(r.bytes("commitment", m.commitment));
  COHORT_RETURN_IF_ERROR(read_encrypted(r, "shares", "recipient", &m.shares));
  COHORT_RETURN_IF_ERROR(r.finish());
  return m;
}

// --- ShareBundle

std::vector<uint8_t> ShareBundle::encode() const {
  wire::Writer w(MessageKind::kShareBundle, round,
                 kHeaderSize + kIdSize + 4 + shares.size() * kEncryptedShareSize);
  w.i64(recipient);
  write_encrypted(w, shares);
  return w.take();
}

Result<ShareBundle> ShareBundle::decode(std::span<const uint8_t> bytes) {
  wire::Reader r(bytes, MessageKind::kShareBundle);
  ShareBundle m;
  COHORT_RETURN_IF_ERROR(r.header(&m.round));
  COHORT_RETURN_IF_ERROR(r.i64("recipient", &m.recipient));
  COHORT_RETURN_IF_ERROR(read_encrypted(r, "shares", "sender", &m.shares));
  COHORT_RETURN_IF_ERROR(r.finish());
  return m;
}

// --- MaskedInput

std::vector<uint8_t> MaskedInput::encode() const {
  assert(bits >= 1 && bits <= 32);
  const uint64_t packed = (static_cast<uint64_t>(words.size()) * bits + 7) / 8;
  wire::Writer w(MessageKind::kMaskedInput, round, kHeaderSize + kIdSize + 1 + 8 + packed);
  w.i64(sender);
  w.u8(static_cast<uint8_t>(bits));
  w.u64(words.size());
  std::vector<uint8_t>& out = w.out();
  size_t pos = out.size();
  out.resize(pos + packed);
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t acc = 0;  // pending bits, least significant first
  int n = 0;
  for (uint32_t word : words) {
    assert((word & ~mask) == 0);
    acc |= (static_cast<uint64_t>(word) & mask) << n;
    n += bits;
    while (n >= 8) {
      out[pos++] = static_cast<uint8_t>(acc);
      acc >>= 8;
      n -= 8;
    }
  }
  if (n > 0) out[pos++] = static_cast<uint8_t>(acc);
  assert(pos == out.size());
  return w.take();
}

Result<MaskedInput> MaskedInput::decode(std::span<const uint8_t> bytes) {
  wire::Reader r(bytes, MessageKind::kMaskedInput);
  MaskedInput m;
  COHORT_RETURN_IF_ERROR(r.header(&m.round));
  COHORT_RETURN_IF_ERROR(r.i64("sender", &m.sender));
  uint8_t bits = 0;
  COHORT_RETURN_IF_ERROR(r.u8("bits", &bits));
  if (bits < 1 || bits > 32) {
    return r.invalid("bits", "must be in [1, 32], got " + std::to_string(bits));
  }
  m.bits = bits;
  uint64_t length = 0;
  COHORT_RETURN_IF_ERROR(r.u64("length", &length));
  if (length > static_cast<uint64_t>(Params::kMaxLength)) {
    return r.invalid("length", "must be <= 2^32, got " + std::to_string(length));
  }
  const uint64_t packed = (length * bits + 7) / 8;  // < 2^38, no overflow
  std::span<const uint8_t> data;
  COHORT_RETURN_IF_ERROR(r.view("words", static_cast<size_t>(packed), &data));
  COHORT_RETURN_IF_ERROR(r.finish());
  m.words.resize(static_cast<size_t>(length));
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t acc = 0;
  int n = 0;
  size_t pos = 0;
  for (uint32_t& word : m.words) {
    while (n < bits) {
      acc |= static_cast<uint64_t>(data[pos++]) << n;
      n += 8;
    }
    word = static_cast<uint32_t>(acc & mask);
    acc >>= bits;
    n -= bits;
  }
  if (acc != 0) return r.invalid("words", "padding bits after the last word are not zero");
  return m;
}

// --- UnmaskRequest

std::vector<uint8_t> UnmaskRequest::encode() const {
  wire::Writer w(MessageKind::kUnmaskRequest, round,
                 kHeaderSize + kIdSize + 8 + (survivors.size() + dropped.size()) * kIdSize);
  w.i64(recipient);
  write_ids(w, survivors);
  write_ids(w, dropped);
  return w.take();
}

Result<UnmaskRequest> UnmaskRequest::decode(std::span<const uint8_t> bytes) {
  wire::Reader r(bytes, MessageKind::kUnmaskRequest);
  UnmaskRequest m;
  COHORT_RETURN_IF_ERROR(r.header(&m.round));
  COHORT_RETURN_IF_ERROR(r.i64("recipient", &m.recipient));
  COHORT_RETURN_IF_ERROR(read_ids(r, "survivors", &m.survivors));
  COHORT_RETURN_IF_ERROR(read_ids(r, "dropped", &m.dropped));
  COHORT_RETURN_IF_ERROR(r.finish());
  return m;
}

// --- UnmaskResponse

std::vector<uint8_t> UnmaskResponse::encode() const {
  wire::Writer w(
      MessageKind::kUnmaskResponse, round,
      kHeaderSize + kIdSize + 8 + shares.size() * kRevealedShareSize + unusable.size() * kIdSize);
  w.i64(sender);
  w.u32(static_cast<uint32_t>(shares.size()));
  for (const RevealedShare& s : shares) {
    w.i64(s.owner);
    w.u8(static_cast<uint8_t>(s.secret));
    w.bytes(s.share);
  }
  write_ids(w, unusable);
  return w.take();
}

Result<UnmaskResponse> UnmaskResponse::decode(std::span<const uint8_t> bytes) {
  wire::Reader r(bytes, MessageKind::kUnmaskResponse);
  UnmaskResponse m;
  COHORT_RETURN_IF_ERROR(r.header(&m.round));
  COHORT_RETURN_IF_ERROR(r.i64("sender", &m.sender));
  uint32_t n = 0;
  COHORT_RETURN_IF_ERROR(r.count("shares", kRevealedShareSize, &n));
  m.shares.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    RevealedShare& s = m.shares[i];
    COHORT_RETURN_IF_ERROR(r.i64(indexed("shares", i, "owner"), &s.owner));
    if (i > 0 && s.owner <= m.shares[i - 1].owner) {
      return r.invalid(indexed("shares", i, "owner"),
                       "not strictly increasing (" + std::to_string(s.owner) + " after " +
                           std::to_string(m.shares[i - 1].owner) + ")");
    }
    uint8_t secret = 0;
    COHORT_RETURN_IF_ERROR(r.u8(indexed("shares", i, "secret"), &secret));
    if (secret != static_cast<uint8_t>(SecretKind::kSelfMaskSeed) &&
        secret != static_cast<uint8_t>(SecretKind::kMaskKey)) {
      return r.invalid(indexed("shares", i, "secret"),
                       "must be 1 (self-mask seed) or 2 (mask key), got " + std::to_string(secret));
    }
    s.secret = static_cast<SecretKind>(secret);
    COHORT_RETURN_IF_ERROR(r.bytes(indexed("shares", i, "share"), s.share));
    const Status limbs = shamir::from_bytes(1, s.share).status();
    if (!limbs.ok()) return r.invalid(indexed("shares", i, "share"), limbs.message());
  }
  COHORT_RETURN_IF_ERROR(read_ids(r, "unusable", &m.unusable));
  COHORT_RETURN_IF_ERROR(r.finish());
  return m;
}

}  // namespace cohort::secagg
