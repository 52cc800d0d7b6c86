// The secure-aggregation protocol end to end: exact sums for complete and k-neighbour graphs,
// dropouts at every stage below and above the threshold, malformed and wrong-round messages,
// a corrupted revealed share, client refusals, what the server's transcript holds, the
// neighbour graph, and thread-count independence of the mask PRG.
#include "cohort/secagg/protocol.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/parallel.h"
#include "secagg/crypto.h"
#include "secagg/graph.h"
#include "secagg/protocol_test_util.h"
#include "secagg/shamir.h"

namespace cohort::secagg {
namespace {

using testing::Drops;
using testing::RoundDriver;
using testing::spread_ids;

Params make_params(int32_t t, int32_t k, int32_t bits, int64_t m, uint64_t round = 7) {
  Params p{.round = round, .threshold = t, .neighbours = k, .bits = bits, .length = m};
  for (size_t i = 0; i < p.graph_seed.size(); ++i) p.graph_seed[i] = static_cast<uint8_t>(i * 3);
  return p;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ProtocolTest, CompleteGraphSumsExactly) {
  for (int n = 5; n <= 20; ++n) {
    const int32_t bits = std::vector<int32_t>{1, 7, 23, 32}[n % 4];
    RoundDriver d(make_params(n / 2 + 1, 0, bits, 257), spread_ids(n));
    const Result<Aggregate> agg = d.run();
    ASSERT_TRUE(agg.ok()) << "n = " << n << ": " << agg.status().to_string();
    EXPECT_EQ(agg->included, spread_ids(n)) << n;
    EXPECT_TRUE(agg->dropped.empty());
    EXPECT_EQ(agg->sum, d.plain_sum(spread_ids(n))) << "n = " << n << ", bits = " << bits;
    EXPECT_TRUE(d.rejected().empty());
    EXPECT_TRUE(d.client_errors().empty());
  }
}

TEST(ProtocolTest, NeighbourGraphSumsExactly) {
  struct Case {
    int n;
    int32_t k, t;
  };
  for (const Case& c : {Case{5, 2, 2}, Case{9, 4, 3}, Case{12, 6, 4}, Case{20, 8, 5},
                        Case{20, 18, 10}, Case{17, 4, 3}}) {
    RoundDriver d(make_params(c.t, c.k, 23, 1000), spread_ids(c.n));
    const Result<Aggregate> agg = d.run();
    ASSERT_TRUE(agg.ok()) << "n = " << c.n << ", k = " << c.k << ": " << agg.status().to_string();
    EXPECT_EQ(agg->sum, d.plain_sum(spread_ids(c.n))) << "n = " << c.n << ", k = " << c.k;
    // Each client exchanged ciphertexts with exactly k neighbours.
    const Traffic& t = d.server().total_traffic();
    EXPECT_EQ(t.received[static_cast<size_t>(MessageKind::kShareKeys)],
              static_cast<uint64_t>(c.n) * (10 + 8 + 32 + 4 + c.k * (8 + kCiphertextSize)));
  }
}

TEST(ProtocolTest, DropoutsBelowTheThresholdStillGiveTheSurvivorsSum) {
  const std::vector<ClientId> ids = spread_ids(10);  // t = 6: up to n - t - 1 = 3 may drop
  {
    RoundDriver d(make_params(6, 0, 16, 500), ids);
    d.drops.mask = {ids[1], ids[4], ids[9]};  // after ShareKeys, before masking
    const Result<Aggregate> agg = d.run();
    ASSERT_TRUE(agg.ok()) << agg.status().to_string();
    const std::vector<ClientId> alive = {ids[0], ids[2], ids[3], ids[5], ids[6], ids[7], ids[8]};
    EXPECT_EQ(agg->included, alive);
    EXPECT_EQ(agg->dropped, (std::vector<ClientId>{ids[1], ids[4], ids[9]}));
    EXPECT_EQ(agg->sum, d.plain_sum(alive));
  }
  {
    RoundDriver d(make_params(6, 0, 16, 500), ids);
    d.drops.unmask = {ids[0], ids[5], ids[6]};  // masked, then silent
    const Result<Aggregate> agg = d.run();
    ASSERT_TRUE(agg.ok()) << agg.status().to_string();
    EXPECT_EQ(agg->included, ids);  // their masked inputs are in the sum
    EXPECT_EQ(agg->sum, d.plain_sum(ids));
  }
  {
    const std::vector<ClientId> ids12 = spread_ids(12);  // t = 7: one drop at every stage
    RoundDriver d(make_params(7, 0, 20, 300), ids12);
    d.drops.advertise = {ids12[11]};
    d.drops.share = {ids12[3]};
    d.drops.mask = {ids12[7]};
    d.drops.unmask = {ids12[0]};
    const Result<Aggregate> agg = d.run();
    ASSERT_TRUE(agg.ok()) << agg.status().to_string();
    EXPECT_EQ(d.server().advertised().size(), 11u);
    EXPECT_EQ(d.server().shared().size(), 10u);
    EXPECT_EQ(agg->dropped, (std::vector<ClientId>{ids12[7]}));
    EXPECT_EQ(agg->sum, d.plain_sum(agg->included));
    EXPECT_EQ(agg->included.size(), 9u);
  }
}

TEST(ProtocolTest, DropoutsInANeighbourGraph) {
  const std::vector<ClientId> ids = spread_ids(20);  // k = 8, t = 5: any 3 may drop
  RoundDriver d(make_params(5, 8, 23, 700), ids);
  d.drops.share = {ids[2]};
  d.drops.mask = {ids[11], ids[12]};
  const Result<Aggregate> agg = d.run();
  ASSERT_TRUE(agg.ok()) << agg.status().to_string();
  EXPECT_EQ(agg->dropped, (std::vector<ClientId>{ids[11], ids[12]}));
  EXPECT_EQ(agg->included.size(), 17u);
  EXPECT_EQ(agg->sum, d.plain_sum(agg->included));

  RoundDriver late(make_params(5, 8, 23, 700), ids);
  late.drops.unmask = {ids[0], ids[7], ids[19]};
  const Result<Aggregate> agg2 = late.run();
  ASSERT_TRUE(agg2.ok()) << agg2.status().to_string();
  EXPECT_EQ(agg2->sum, late.plain_sum(ids));
}

TEST(ProtocolTest, DropoutsAboveTheThresholdFailClearly) {
  const std::vector<ClientId> ids = spread_ids(10);
  {
    RoundDriver d(make_params(6, 0, 16, 100), ids);
    d.drops.advertise = {ids[0], ids[1], ids[2], ids[3]};  // 6 left, t + 1 = 7 needed
    const Status s = d.advertise();
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.message(),
              "secure aggregation round 7: only 6 of the needed 7 clients advertised keys "
              "(threshold 6, neighbours 0)");
    EXPECT_EQ(d.server().stage(), Stage::kFailed);
    EXPECT_EQ(d.server().finish().status(), s);
  }
  {
    RoundDriver d(make_params(6, 0, 16, 100), ids);
    d.drops.mask = {ids[0], ids[1], ids[2], ids[3], ids[4]};
    ASSERT_TRUE(d.advertise().ok());
    ASSERT_TRUE(d.share().ok());
    const Status s = d.mask();
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.message(),
              "secure aggregation round 7: only 5 of the needed 6 clients sent MaskedInput");
  }
  {
    RoundDriver d(make_params(6, 0, 16, 100), ids);
    d.drops.mask = {ids[0], ids[1], ids[2], ids[3]};  // U3 = 6 >= t, but 5 neighbours each
    const Status s = d.run().status();
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.message(),
              "secure aggregation round 7: only 5 of the needed 6 neighbours of "
              "client 31 are left to reveal its self-mask seed");
  }
  {
    RoundDriver d(make_params(6, 0, 16, 100), ids);
    d.drops.unmask = {ids[0], ids[1], ids[2], ids[3]};  // n - t = 4 silent at the end
    const Result<Aggregate> agg = d.run();
    ASSERT_FALSE(agg.ok());
    EXPECT_EQ(agg.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(agg.status().message(),
              "secure aggregation round 7: only 5 of the needed 6 "
              "shares of the self-mask seed of client 31 arrived");
    EXPECT_EQ(d.server().stage(), Stage::kFailed);
  }
}

TEST(ProtocolTest, CorruptedCiphertextMakesOneShareUnusable) {
  const std::vector<ClientId> ids = spread_ids(8);
  RoundDriver d(make_params(4, 0, 23, 200), ids);
  ClientId victim = 0;
  d.to_server = [&](ClientId from, Stage stage, std::vector<uint8_t>* b) {
    if (from != ids[2] || stage != Stage::kShareKeys) return;
    (*b)[10 + 8 + 32 + 4 + 8 + 50] ^= 0x10;  // inside the first ciphertext
    victim = ids[0];                         // the first neighbour by id
  };
  const Result<Aggregate> agg = d.run();
  ASSERT_TRUE(agg.ok()) << agg.status().to_string();
  EXPECT_EQ(agg->sum, d.plain_sum(ids));
  EXPECT_EQ(d.client(victim).unusable_shares(), (std::vector<ClientId>{ids[2]}));
  EXPECT_EQ(d.server().complaints(),
            (std::vector<std::pair<ClientId, ClientId>>{{ids[2], victim}}));
}

TEST(ProtocolTest, MalformedAndWrongRoundMessagesDropOnlyTheirSender) {
  const std::vector<ClientId> ids = spread_ids(9);
  RoundDriver d(make_params(4, 0, 23, 300), ids);
  d.to_server = [&](ClientId from, Stage stage, std::vector<uint8_t>* b) {
    if (from == ids[3] && stage == Stage::kShareKeys) b->resize(b->size() - 5);  // truncated
    if (from == ids[5] && stage == Stage::kMaskedInput) (*b)[2] += 1;            // round 8
    if (from == ids[6] && stage == Stage::kUnmask) (*b)[1] = 3;                  // wrong kind
  };
  const Result<Aggregate> agg = d.run();
  ASSERT_TRUE(agg.ok()) << agg.status().to_string();
  ASSERT_EQ(d.rejected().size(), 3u);
  const Status& truncated = d.rejected().at(ids[3]);
  EXPECT_EQ(truncated.code(), StatusCode::kDataLoss);
  EXPECT_EQ(truncated.message(),
            "secure aggregation round 7: client 24: ShareKeys: secagg ShareKeys: truncated in "
            "field 'shares' (8 entries need 1024 bytes at offset 54, 1019 left)");
  EXPECT_EQ(d.rejected().at(ids[5]).message(),
            "secure aggregation round 7: client 38: MaskedInput: round is 8, expected 7");
  EXPECT_EQ(d.rejected().at(ids[6]).code(), StatusCode::kInvalidArgument);
  // ids[3] never joined U2; ids[5]'s masked input is not in the sum; ids[6]'s input is (its
  // y was accepted), only its response was dropped.
  EXPECT_EQ(d.server().shared().size(), 8u);
  std::vector<ClientId> want = ids;
  want.erase(std::find(want.begin(), want.end(), ids[5]));
  want.erase(std::find(want.begin(), want.end(), ids[3]));
  EXPECT_EQ(agg->included, want);
  EXPECT_EQ(agg->dropped, (std::vector<ClientId>{ids[5]}));
  EXPECT_EQ(agg->sum, d.plain_sum(want));
  // A dropped client stays dropped.
  EXPECT_EQ(d.server().receive(ids[3], std::vector<uint8_t>{1, 2, 3}).code(),
            StatusCode::kFailedPrecondition);
}

// Offset of the first share's bytes in an UnmaskResponse: header, sender, count, owner, secret.
constexpr size_t kFirstShareOffset = 10 + 8 + 4 + 8 + 1;

TEST(ProtocolTest, CorruptedRevealedShareIsFoundAndItsSenderRejected) {
  const std::vector<ClientId> ids = spread_ids(8);
  RoundDriver d(make_params(4, 0, 23, 200), ids);
  d.to_server = [&](ClientId from, Stage stage, std::vector<uint8_t>* b) {
    if (from == ids[4] && stage == Stage::kUnmask) (*b)[kFirstShareOffset] ^= 0x01;
  };
  const Result<Aggregate> agg = d.run();
  ASSERT_TRUE(agg.ok()) << agg.status().to_string();
  EXPECT_EQ(agg->sum, d.plain_sum(ids));  // ids[4]'s input stays in
  ASSERT_EQ(d.server().rejections().size(), 1u);
  const Rejection& r = d.server().rejections()[0];
  EXPECT_EQ(r.client, ids[4]);
  EXPECT_EQ(r.stage, Stage::kUnmask);
  EXPECT_EQ(r.status.code(), StatusCode::kDataLoss);
  EXPECT_EQ(r.status.message(),
            "secure aggregation round 7: client 31: Unmask: its share of the self-mask seed of "
            "client -42 is inconsistent with the others; all its shares are discarded");
}

TEST(ProtocolTest, CorruptedShareWithExactlyTSharesFails) {
  const std::vector<ClientId> ids = spread_ids(6);  // t = 5 = every client's 5 neighbours
  RoundDriver d(make_params(5, 0, 23, 50), ids);
  d.to_server = [&](ClientId from, Stage stage, std::vector<uint8_t>* b) {
    if (from == ids[1] && stage == Stage::kUnmask) (*b)[kFirstShareOffset] ^= 0x01;
  };
  const Status s = d.run().status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "secure aggregation round 7: cannot reconstruct the self-mask seed of "
            "client -42 from 5 shares: they do not match its commitment");
}

TEST(ProtocolTest, CorruptedMaskKeyShareOfADroppedClient) {
  const std::vector<ClientId> ids = spread_ids(8);
  RoundDriver d(make_params(4, 0, 23, 200), ids);
  d.drops.mask = {ids[0]};  // ids[0] = -42 is the first owner in every response
  d.to_server = [&](ClientId from, Stage stage, std::vector<uint8_t>* b) {
    if (from == ids[6] && stage == Stage::kUnmask) (*b)[kFirstShareOffset + 9] ^= 0x04;
  };
  const Result<Aggregate> agg = d.run();
  ASSERT_TRUE(agg.ok()) << agg.status().to_string();
  EXPECT_EQ(agg->sum, d.plain_sum(agg->included));
  ASSERT_EQ(d.server().rejections().size(), 1u);
  EXPECT_TRUE(contains(d.server().rejections()[0].status.message(),
                       "its share of the mask key of client -42 is inconsistent"));
}

TEST(ProtocolTest, ClientsRefuseUnsafeUnmaskRequests) {
  const std::vector<ClientId> ids = spread_ids(6);
  RoundDriver d(make_params(4, 0, 23, 64), ids);
  ASSERT_TRUE(d.advertise().ok());
  ASSERT_TRUE(d.share().ok());
  ASSERT_TRUE(d.mask().ok());
  const auto request = [&](ClientId to, std::vector<ClientId> survivors,
                           std::vector<ClientId> dropped) {
    return UnmaskRequest{.round = 7, .recipient = to, .survivors = survivors, .dropped = dropped}
        .encode();
  };
  // Both secrets of ids[1].
  Result<std::vector<uint8_t>> r = d.client(ids[0]).unmask(request(ids[0], ids, {ids[1]}));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(),
            "secure aggregation round 7: client -42: UnmaskRequest asks for both the self-mask "
            "seed and the mask key of client 10; refused");
  EXPECT_EQ(d.client(ids[0]).stage(), Stage::kFailed);
  // Fewer survivors than t.
  r = d.client(ids[1]).unmask(request(ids[1], {ids[1], ids[2], ids[3]}, {ids[4], ids[5]}));
  EXPECT_EQ(r.status().message(),
            "secure aggregation round 7: client 10: UnmaskRequest names 3 survivors, fewer than "
            "the threshold 4; refused");
  // Not itself a survivor.
  r = d.client(ids[2]).unmask(request(ids[2], {ids[0], ids[1], ids[3], ids[4], ids[5]}, {ids[2]}));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  // A neighbour listed nowhere.
  r = d.client(ids[3]).unmask(request(ids[3], {ids[0], ids[1], ids[2], ids[3]}, {ids[4]}));
  EXPECT_EQ(r.status().message(),
            "secure aggregation round 7: client 24: UnmaskRequest lists "
            "neighbour 38 neither as a survivor nor as dropped");
  // A correct request is answered once; a second one is refused.
  ASSERT_TRUE(d.client(ids[4]).unmask(d.pending().at(ids[4])).ok());
  EXPECT_EQ(d.client(ids[4]).unmask(d.pending().at(ids[4])).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(ProtocolTest, ClientsCheckTheRoster) {
  const std::vector<ClientId> ids = spread_ids(5);
  RoundDriver d(make_params(3, 0, 23, 64), ids);
  d.to_client = [&](ClientId to, Stage stage, std::vector<uint8_t>* b) {
    if (stage != Stage::kShareKeys) return;
    Roster r = *Roster::decode(*b);
    if (to == ids[0]) r.params.threshold = 2;  // a server lowering the threshold
    if (to == ids[1]) r.keys.pop_back();
    if (to == ids[2]) r.keys[0].mask_key.fill(0);  // a low-order point
    if (to == ids[3]) r.clients.erase(r.clients.begin() + 3);
    *b = r.encode();
  };
  EXPECT_TRUE(d.advertise().ok());
  EXPECT_FALSE(d.share().ok());  // 1 client left of the needed t
  EXPECT_EQ(d.client_errors().at(ids[0]).message(),
            "secure aggregation round 7: client -42: Roster: params.threshold is 2, expected 3");
  EXPECT_EQ(d.client_errors().at(ids[1]).message(),
            "secure aggregation round 7: client 10: Roster: keys has 3 entries, expected the 4 "
            "neighbours of this client");
  EXPECT_TRUE(contains(d.client_errors().at(ids[2]).message(), "has a low-order public key"));
  EXPECT_EQ(d.client_errors().at(ids[3]).message(),
            "secure aggregation round 7: client 24: Roster: clients does not include this client");
}

TEST(ProtocolTest, ServerRejectsUnexpectedMessages) {
  const std::vector<ClientId> ids = spread_ids(5);
  RoundDriver d(make_params(3, 0, 23, 64), ids);
  ServerSession& s = d.server();
  const std::vector<uint8_t> keys = d.client(ids[0]).advertise_keys().value();
  EXPECT_EQ(s.receive(999, keys).message(),
            "secure aggregation round 7: client 999: AdvertiseKeys: not invited to this round");
  EXPECT_EQ(s.receive(ids[1], keys).message(),
            "secure aggregation round 7: client 10: AdvertiseKeys: sender is -42, but the "
            "message came from client 10");
  ASSERT_TRUE(s.receive(ids[0], keys).ok());
  EXPECT_EQ(s.receive(ids[0], keys).message(),
            "secure aggregation round 7: client -42: AdvertiseKeys: a second message at this "
            "stage");
  EXPECT_EQ(s.advance().status().code(), StatusCode::kFailedPrecondition);  // ids[0] dropped
  EXPECT_EQ(s.finish().status().code(), StatusCode::kFailedPrecondition);
}

TEST(ProtocolTest, TranscriptHoldsOneSecretPerClientAndNoInput) {
  const int32_t bits = 16;
  const std::vector<ClientId> ids = spread_ids(10);
  RoundDriver d(make_params(6, 0, bits, 2000), ids);
  d.drops.mask = {ids[2], ids[8]};
  const Result<Aggregate> agg = d.run();
  ASSERT_TRUE(agg.ok()) << agg.status().to_string();
  const std::vector<ClientId>& u1 = d.server().advertised();
  const auto x_of = [&](ClientId id) {
    return static_cast<uint64_t>(std::lower_bound(u1.begin(), u1.end(), id) - u1.begin()) + 1;
  };
  // Everything the server received: masked inputs and revealed shares.
  std::map<ClientId, MaskedInput> masked;
  std::map<ClientId, std::vector<shamir::Share>> seed_shares, key_shares;
  for (const TranscriptEntry& e : d.server().transcript()) {
    if (e.stage == Stage::kMaskedInput) masked.emplace(e.client, *MaskedInput::decode(e.bytes));
    if (e.stage != Stage::kUnmask) continue;
    const UnmaskResponse response = *UnmaskResponse::decode(e.bytes);
    for (const RevealedShare& r : response.shares) {
      auto& dest = r.secret == SecretKind::kSelfMaskSeed ? seed_shares : key_shares;
      dest[r.owner].push_back(*shamir::from_bytes(x_of(e.client), r.share));
    }
  }
  for (ClientId id : ids) {
    const bool dropped = id == ids[2] || id == ids[8];
    EXPECT_EQ(seed_shares.count(id), dropped ? 0u : 1u) << id;
    EXPECT_EQ(key_shares.count(id), dropped ? 1u : 0u) << id;
    if (dropped) {
      EXPECT_EQ(masked.count(id), 0u);
      continue;
    }
    ASSERT_GE(seed_shares[id].size(), 6u);
    // The server can remove b_u's mask; what is left still hides x_u.
    const shamir::Secret b = *shamir::combine(seed_shares[id], 6);
    std::vector<uint32_t> y = masked.at(id).words;
    const crypto::MaskTerm minus_b{.seed = b, .subtract = true};
    crypto::apply_masks(y, std::span(&minus_b, 1), 0xFFFF, nullptr);
    const std::vector<uint32_t>& x = d.input(id);
    int64_t equal = 0;
    for (size_t i = 0; i < x.size(); ++i) equal += y[i] == x[i];
    EXPECT_LT(equal, static_cast<int64_t>(x.size() / 100)) << id;
  }
  // The byte counters agree with the transcript.
  uint64_t transcript_bytes = 0;
  for (const TranscriptEntry& e : d.server().transcript()) transcript_bytes += e.bytes.size();
  EXPECT_EQ(d.server().total_traffic().total_received(), transcript_bytes);
  const Traffic& one = d.server().traffic().at(ids[0]);
  EXPECT_EQ(one.received[static_cast<size_t>(MessageKind::kMaskedInput)],
            10u + 8 + 1 + 8 + 2000 * 16 / 8);
  EXPECT_GT(one.sent[static_cast<size_t>(MessageKind::kRoster)], 0u);
}

TEST(ProtocolTest, GraphIsARingOfKNeighbours) {
  std::array<uint8_t, 32> seed{};
  seed[0] = 1;
  const Graph g = *Graph::build(50, 6, seed);
  std::set<int32_t> ring(g.ring().begin(), g.ring().end());
  EXPECT_EQ(ring.size(), 50u);  // a permutation
  for (int64_t p = 0; p < 50; ++p) {
    const auto nb = g.neighbours(p);
    ASSERT_EQ(nb.size(), 6u);
    for (int32_t q : nb) {
      EXPECT_NE(q, p);
      EXPECT_TRUE(g.adjacent(q, p));  // symmetric
    }
  }
  // Ring slot 0's neighbours are slots 1, 2, 3, 47, 48, 49.
  std::vector<int32_t> want;
  for (int s : {1, 2, 3, 47, 48, 49}) want.push_back(g.ring()[s]);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(g.neighbours(g.ring()[0]), want);
  EXPECT_EQ(Graph::build(50, 6, seed)->ring(), g.ring());  // deterministic
  seed[0] = 2;
  EXPECT_NE(Graph::build(50, 6, seed)->ring(), g.ring());
  EXPECT_EQ(Graph::build(6, 6, seed).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Graph::build(10, 3, seed).status().message(),
            "secagg.neighbours: must be 0 or even and < 10, got 3");
  EXPECT_EQ(Graph::build(4, 0, seed)->neighbours(2), (std::vector<int32_t>{0, 1, 3}));
}

TEST(ProtocolTest, ParamsRules) {
  EXPECT_EQ(make_params(1, 0, 23, 10).validate().message(),
            "secagg.threshold: must be >= 2, got 1");
  EXPECT_EQ(make_params(3, 5, 23, 10).validate().message(),
            "secagg.neighbours: must be even (k/2 on each side of the ring), got 5");
  EXPECT_EQ(make_params(5, 4, 23, 10).validate().message(),
            "secagg.threshold: must be <= secagg.neighbours = 4, got 5");
  EXPECT_EQ(make_params(3, 0, 33, 10).validate().message(),
            "secagg.bits: must be in [1, 32], got 33");
  EXPECT_EQ(make_params(3, 0, 8, 0).validate().message(),
            "secagg.length: must be in [1, 2^32], got 0");
  EXPECT_EQ(make_params(3, 4, 8, 10).validate_roster(4).message(),
            "secagg.neighbours: must be < the number of clients 4, got 4");
  EXPECT_EQ(make_params(5, 0, 8, 10).validate_roster(5).message(),
            "secagg.threshold: must be <= the 4 neighbours of each of 5 clients, got 5");
  EXPECT_TRUE(make_params(4, 0, 8, 10).validate_roster(5).ok());
}

TEST(ProtocolTest, MasksAreTheSameForAnyThreadCount) {
  std::vector<crypto::MaskTerm> terms(3);
  for (size_t i = 0; i < terms.size(); ++i) {
    terms[i].seed.fill(static_cast<uint8_t>(i + 1));
    terms[i].subtract = i == 1;
  }
  const size_t m = 16 * 4096 * 3 + 1001;  // several pool jobs, the last one short
  std::vector<uint32_t> serial(m, 5), pooled(m, 5);
  crypto::apply_masks(serial, terms, 0x7FFFFF, nullptr);
  ThreadPool pool(3);
  crypto::apply_masks(pooled, terms, 0x7FFFFF, &pool);
  EXPECT_EQ(serial, pooled);
  // Word 0 of a stream is the first 4 keystream bytes; check against libsodium directly.
  std::array<uint8_t, 64> block{};
  const std::array<uint8_t, 12> nonce{};
  crypto_stream_chacha20_ietf(block.data(), block.size(), nonce.data(), terms[0].seed.data());
  std::vector<uint32_t> one(20, 0);
  crypto::apply_masks(one, std::span(terms.data(), 1), 0xFFFFFFFF, nullptr);
  EXPECT_EQ(one[1], static_cast<uint32_t>(block[4]) | static_cast<uint32_t>(block[5]) << 8 |
                        static_cast<uint32_t>(block[6]) << 16 |
                        static_cast<uint32_t>(block[7]) << 24);
  // And the protocol on a pool gives the exact sum.
  RoundDriver d(make_params(3, 0, 23, static_cast<int64_t>(m)), spread_ids(5), &pool);
  const Result<Aggregate> agg = d.run();
  ASSERT_TRUE(agg.ok()) << agg.status().to_string();
  EXPECT_EQ(agg->sum, d.plain_sum(spread_ids(5)));
}

}  // namespace
}  // namespace cohort::secagg
