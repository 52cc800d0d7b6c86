// Secagg messages: round trips of every type, the exact byte size of each format, every
// truncation, an extra byte, every single-byte corruption (decode errs or succeeds, never
// crashes or reads out of bounds), forged counts and lengths, and each field-domain error.
#include "cohort/secagg/messages.h"

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/rng.h"

namespace cohort::secagg {
namespace {

template <size_t N>
std::array<uint8_t, N> filled(uint8_t start) {
  std::array<uint8_t, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = static_cast<uint8_t>(start + 7 * i);
  return a;
}

ShareBytes valid_share(uint8_t start) {
  ShareBytes s = filled<kShareSize>(start);
  for (int l = 0; l < 5; ++l) s[l * 8 + 7] &= 0x1f;  // each limb < 2^61 - 1
  return s;
}

AdvertiseKeys sample_advertise() {
  return {.round = 9, .sender = -3, .channel_key = filled<32>(1), .mask_key = filled<32>(2)};
}

Roster sample_roster() {
  Roster r;
  r.recipient = 4;
  r.params = Params{.round = 9, .threshold = 3, .neighbours = 4, .bits = 23, .length = 1000};
  r.params.graph_seed = filled<32>(3);
  r.clients = {-5, 1, 4, 8, 100, 1000};
  r.keys = {{.id = 1, .channel_key = filled<32>(4), .mask_key = filled<32>(5)},
            {.id = 8, .channel_key = filled<32>(6), .mask_key = filled<32>(7)}};
  return r;
}

ShareKeys sample_share_keys() {
  return {.round = 9,
          .sender = 4,
          .commitment = filled<32>(8),
          .shares = {{.peer = 1, .ciphertext = filled<kCiphertextSize>(9)},
                     {.peer = 8, .ciphertext = filled<kCiphertextSize>(10)},
                     {.peer = 100, .ciphertext = filled<kCiphertextSize>(11)}}};
}

ShareBundle sample_bundle() {
  return {.round = 9,
          .recipient = 4,
          .shares = {{.peer = 1, .ciphertext = filled<kCiphertextSize>(12)},
                     {.peer = 8, .ciphertext = filled<kCiphertextSize>(13)}}};
}

MaskedInput sample_masked(int32_t bits, size_t m) {
  MaskedInput x{.round = 9, .sender = 4, .bits = bits, .words = std::vector<uint32_t>(m)};
  Rng rng(static_cast<uint64_t>(bits));
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  for (uint32_t& w : x.words) w = static_cast<uint32_t>(rng.next_u64() & mask);
  return x;
}

UnmaskRequest sample_request() {
  return {.round = 9, .recipient = 4, .survivors = {-5, 1, 4, 100}, .dropped = {8, 1000}};
}

UnmaskResponse sample_response() {
  return {.round = 9,
          .sender = 4,
          .shares = {{.owner = -5, .secret = SecretKind::kSelfMaskSeed, .share = valid_share(1)},
                     {.owner = 8, .secret = SecretKind::kMaskKey, .share = valid_share(2)}},
          .unusable = {1}};
}

// Every message type as (name, bytes, decode-ok-or-not).
struct Case {
  std::string name;
  std::vector<uint8_t> bytes;
  std::function<Status(std::span<const uint8_t>)> decode;
};

template <typename M>
Case make_case(std::string name, const M& m) {
  return {std::move(name), m.encode(), [](std::span<const uint8_t> b) {
            return M::decode(b).status();
          }};
}

std::vector<Case> all_cases() {
  return {make_case("AdvertiseKeys", sample_advertise()),
          make_case("Roster", sample_roster()),
          make_case("ShareKeys", sample_share_keys()),
          make_case("ShareBundle", sample_bundle()),
          make_case("MaskedInput/23", sample_masked(23, 37)),
          make_case("MaskedInput/1", sample_masked(1, 13)),
          make_case("MaskedInput/32", sample_masked(32, 5)),
          make_case("UnmaskRequest", sample_request()),
          make_case("UnmaskResponse", sample_response())};
}

TEST(MessagesTest, RoundTrips) {
  EXPECT_EQ(*AdvertiseKeys::decode(sample_advertise().encode()), sample_advertise());
  EXPECT_EQ(*Roster::decode(sample_roster().encode()), sample_roster());
  EXPECT_EQ(*ShareKeys::decode(sample_share_keys().encode()), sample_share_keys());
  EXPECT_EQ(*ShareBundle::decode(sample_bundle().encode()), sample_bundle());
  for (int32_t bits : {1, 2, 7, 8, 9, 16, 23, 31, 32}) {
    for (size_t m : {size_t{1}, size_t{7}, size_t{8}, size_t{100}}) {
      const MaskedInput x = sample_masked(bits, m);
      EXPECT_EQ(*MaskedInput::decode(x.encode()), x) << bits << " " << m;
    }
  }
  EXPECT_EQ(*UnmaskRequest::decode(sample_request().encode()), sample_request());
  EXPECT_EQ(*UnmaskResponse::decode(sample_response().encode()), sample_response());
  EXPECT_EQ(*peek_kind(sample_bundle().encode()), MessageKind::kShareBundle);
}

TEST(MessagesTest, Sizes) {
  EXPECT_EQ(sample_advertise().encode().size(), 10u + 8 + 64);
  EXPECT_EQ(sample_roster().encode().size(), 10u + 8 + 12 + 8 + 32 + 4 + 6 * 8 + 4 + 2 * 72);
  EXPECT_EQ(sample_share_keys().encode().size(), 10u + 8 + 32 + 4 + 3 * (8 + 120));
  EXPECT_EQ(sample_bundle().encode().size(), 10u + 8 + 4 + 2 * (8 + 120));
  EXPECT_EQ(sample_masked(23, 37).encode().size(), 10u + 8 + 1 + 8 + (37 * 23 + 7) / 8);
  EXPECT_EQ(sample_request().encode().size(), 10u + 8 + 4 + 4 * 8 + 4 + 2 * 8);
  EXPECT_EQ(sample_response().encode().size(), 10u + 8 + 4 + 2 * 49 + 4 + 8);
}

TEST(MessagesTest, EveryTruncationAndExtraByteIsAnError) {
  for (const Case& c : all_cases()) {
    ASSERT_TRUE(c.decode(c.bytes).ok()) << c.name;
    for (size_t len = 0; len < c.bytes.size(); ++len) {
      const Status s = c.decode(std::span<const uint8_t>(c.bytes.data(), len));
      ASSERT_FALSE(s.ok()) << c.name << " prefix " << len;
      EXPECT_TRUE(s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kInvalidArgument)
          << c.name << " prefix " << len << ": " << s.to_string();
    }
    std::vector<uint8_t> longer = c.bytes;
    longer.push_back(0);
    const Status s = c.decode(longer);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << c.name;
    EXPECT_NE(s.message().find("1 trailing bytes after the last field"), std::string::npos)
        << s.message();
  }
}

TEST(MessagesTest, EveryByteCorruptionDecodesOrErrs) {
  for (const Case& c : all_cases()) {
    for (size_t i = 0; i < c.bytes.size(); ++i) {
      for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
        std::vector<uint8_t> b = c.bytes;
        b[i] ^= flip;
        const Status s = c.decode(b);
        if (!s.ok()) {
          EXPECT_TRUE(s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kInvalidArgument)
              << c.name << " byte " << i << ": " << s.to_string();
          EXPECT_EQ(s.message().rfind("secagg ", 0), 0u) << s.message();
        }
      }
    }
    // Header bytes: version and kind are always checked.
    std::vector<uint8_t> b = c.bytes;
    b[0] ^= 0x01;
    EXPECT_FALSE(c.decode(b).ok()) << c.name;
    b = c.bytes;
    b[1] ^= 0x01;
    EXPECT_FALSE(c.decode(b).ok()) << c.name;
  }
}

TEST(MessagesTest, HeaderErrors) {
  std::vector<uint8_t> b = sample_advertise().encode();
  b[0] = 2;
  EXPECT_EQ(AdvertiseKeys::decode(b).status().message(),
            "secagg AdvertiseKeys: version: unsupported 2, expected 1");
  EXPECT_EQ(ShareKeys::decode(sample_advertise().encode()).status().message(),
            "secagg ShareKeys: kind: expected ShareKeys (3), got AdvertiseKeys (1)");
  EXPECT_EQ(AdvertiseKeys::decode({}).status().message(),
            "secagg AdvertiseKeys: truncated in field 'version' (needs 1 bytes at offset 0, "
            "0 left)");
  const std::vector<uint8_t> good = sample_advertise().encode();
  const std::vector<uint8_t> cut(good.begin(), good.begin() + 30);
  EXPECT_EQ(AdvertiseKeys::decode(cut).status().message(),
            "secagg AdvertiseKeys: truncated in field 'channel_key' (needs 32 bytes at offset "
            "18, 12 left)");
  EXPECT_EQ(peek_kind(std::vector<uint8_t>{1, 42, 0, 0, 0, 0, 0, 0, 0, 0}).status().message(),
            "secagg message: kind: unknown 42");
}

// Offsets of the first count field of each list message.
TEST(MessagesTest, ForgedCountsFailBeforeAllocating) {
  const auto forge = [](std::vector<uint8_t> b, size_t at) {
    for (int i = 0; i < 4; ++i) b[at + i] = 0xff;
    return b;
  };
  {
    const auto b = forge(sample_share_keys().encode(), 10 + 8 + 32);
    const Status s = ShareKeys::decode(b).status();
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_EQ(s.message(),
              "secagg ShareKeys: truncated in field 'shares' (4294967295 entries need "
              "549755813760 bytes at offset 54, 384 left)");
  }
  {
    const auto b = forge(sample_roster().encode(), 10 + 8 + 12 + 8 + 32);
    EXPECT_EQ(Roster::decode(b).status().code(), StatusCode::kDataLoss);
  }
  {
    const auto b = forge(sample_request().encode(), 10 + 8);
    EXPECT_EQ(UnmaskRequest::decode(b).status().code(), StatusCode::kDataLoss);
  }
  {
    const auto b = forge(sample_response().encode(), 10 + 8);
    EXPECT_EQ(UnmaskResponse::decode(b).status().code(), StatusCode::kDataLoss);
  }
  {
    const auto b = forge(sample_bundle().encode(), 10 + 8);
    EXPECT_EQ(ShareBundle::decode(b).status().code(), StatusCode::kDataLoss);
  }
}

TEST(MessagesTest, MaskedInputFieldErrors) {
  const std::vector<uint8_t> good = sample_masked(23, 37).encode();
  std::vector<uint8_t> b = good;
  b[18] = 0;  // bits
  EXPECT_EQ(MaskedInput::decode(b).status().message(),
            "secagg MaskedInput: bits: must be in [1, 32], got 0");
  b[18] = 33;
  EXPECT_EQ(MaskedInput::decode(b).status().code(), StatusCode::kInvalidArgument);
  b = good;
  for (int i = 0; i < 8; ++i) b[19 + i] = 0xff;  // length 2^64 - 1
  EXPECT_EQ(MaskedInput::decode(b).status().message(),
            "secagg MaskedInput: length: must be <= 2^32, got 18446744073709551615");
  b = good;
  b[19] = 38;  // one word more than the bytes hold
  EXPECT_EQ(MaskedInput::decode(b).status().code(), StatusCode::kDataLoss);
  b = good;
  b[19] = 36;  // one word less: a trailing byte
  EXPECT_EQ(MaskedInput::decode(b).status().code(), StatusCode::kDataLoss);
  b = good;
  b.back() |= 0x80;  // 37 * 23 = 851 bits: the last 5 bits of the last byte are padding
  EXPECT_EQ(MaskedInput::decode(b).status().message(),
            "secagg MaskedInput: words: padding bits after the last word are not zero");
}

TEST(MessagesTest, ListFieldErrors) {
  UnmaskRequest req = sample_request();
  req.survivors = {1, 4, 4};
  EXPECT_EQ(UnmaskRequest::decode(req.encode()).status().message(),
            "secagg UnmaskRequest: survivors: not strictly increasing at index 2 (4 after 4)");
  ShareKeys sk = sample_share_keys();
  std::swap(sk.shares[0], sk.shares[1]);
  EXPECT_EQ(ShareKeys::decode(sk.encode()).status().message(),
            "secagg ShareKeys: shares[1].recipient: not strictly increasing (1 after 8)");
  Roster r = sample_roster();
  r.params.threshold = 1;
  EXPECT_EQ(Roster::decode(r.encode()).status().message(),
            "secagg Roster: secagg.threshold: must be >= 2, got 1");
  r = sample_roster();
  std::swap(r.keys[0], r.keys[1]);
  EXPECT_EQ(Roster::decode(r.encode()).status().code(), StatusCode::kInvalidArgument);
  UnmaskResponse resp = sample_response();
  std::vector<uint8_t> b = resp.encode();
  b[10 + 8 + 4 + 8] = 3;  // shares[0].secret
  EXPECT_EQ(UnmaskResponse::decode(b).status().message(),
            "secagg UnmaskResponse: shares[0].secret: must be 1 (self-mask seed) or 2 (mask "
            "key), got 3");
  resp.shares[1].share.fill(0xff);
  EXPECT_EQ(UnmaskResponse::decode(resp.encode()).status().message(),
            "secagg UnmaskResponse: shares[1].share: limb 0 is not below 2^61 - 1");
  resp = sample_response();
  resp.shares[1].owner = -5;
  EXPECT_EQ(UnmaskResponse::decode(resp.encode()).status().message(),
            "secagg UnmaskResponse: shares[1].owner: not strictly increasing (-5 after -5)");
}

}  // namespace
}  // namespace cohort::secagg
