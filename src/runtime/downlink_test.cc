// DownlinkDeltas: the model as clients hold it, the deltas' payloads, plans for every kind of
// client, and the client's arithmetic matching the server's bit for bit.
#include "cohort/runtime/downlink.h"

#include <gtest/gtest.h>

#include <cmath>

#include "cohort/core/rng.h"
#include "cohort/runtime/compression.h"

namespace cohort::runtime {
namespace {

std::shared_ptr<const ArrayLayout> layout() {
  return *ArrayLayout::create({{.name = "w", .shape = {300, 7}}, {.name = "b", .shape = {7}}});
}

ArrayRecord random_model(uint64_t seed, float scale) {
  ArrayRecord m(layout());
  Rng rng(seed);
  for (float& v : m.flat()) v = static_cast<float>(rng.normal(0.0, scale));
  return m;
}

std::shared_ptr<const codec::Chain> chain(const std::string& spec) {
  return *codec::Chain::parse(spec);
}

double max_abs_diff(const ArrayRecord& a, const ArrayRecord& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(a.flat()[i]) - b.flat()[i]));
  }
  return m;
}

TEST(DownlinkDeltasTest, FirstVersionIsTheModelWholeAndPlansFullCopies) {
  DownlinkDeltas d(chain("int8"), 4, 7);
  EXPECT_TRUE(d.empty());
  ArrayRecord m0 = random_model(1, 1.0f);
  ASSERT_TRUE(d.advance(3, m0).ok());
  EXPECT_EQ(d.version(), 3);
  EXPECT_EQ(d.hash(), m0.hash());  // an exact copy
  DownlinkDeltas::Plan p = d.plan(std::nullopt);
  EXPECT_TRUE(p.full);
  EXPECT_EQ(p.bytes, m0.num_bytes());
  // A client that already holds it gets nothing.
  p = d.plan(DownlinkDeltas::Held{3, m0.hash()});
  EXPECT_FALSE(p.full);
  EXPECT_EQ(p.bytes, 0);
  EXPECT_TRUE(p.payloads.empty());
  // Same version, other contents (another run, a restarted server): the model whole.
  p = d.plan(DownlinkDeltas::Held{3, m0.hash() + 1});
  EXPECT_TRUE(p.full);
}

TEST(DownlinkDeltasTest, ClientsApplyingThePayloadsHoldTheServersModelBitForBit) {
  DownlinkDeltas d(chain("int8:64"), 8, 11);
  ArrayRecord server = random_model(1, 1.0f);
  ASSERT_TRUE(d.advance(0, server).ok());
  ArrayRecord client = server.clone();  // got version 0 whole
  ArrayRecord late = server.clone();    // will skip versions 1 and 2
  ModelVersion late_version = 0;
  uint64_t late_hash = d.hash();
  for (ModelVersion v = 1; v <= 5; ++v) {
    ArrayRecord step = random_model(100 + v, 0.01f);
    for (int64_t i = 0; i < server.numel(); ++i) server.flat()[i] -= step.flat()[i];
    const DownlinkDeltas::Held held{v - 1, client.hash()};
    ASSERT_TRUE(d.advance(v, server).ok());
    DownlinkDeltas::Plan p = d.plan(held);
    ASSERT_FALSE(p.full) << v;
    ASSERT_EQ(p.payloads.size(), 1u);
    EXPECT_EQ(p.bytes, static_cast<int64_t>(p.payloads[0]->size()));
    // int8 with blocks of 64: about a quarter of float32.
    EXPECT_LT(p.bytes, server.num_bytes() / 3);
    ASSERT_TRUE(DownlinkDeltas::apply(*chain("int8:64"), *p.payloads[0], client, "delta").ok());
    EXPECT_EQ(client.hash(), d.hash()) << v;
    // Error feedback on the server side: the held model stays within one encoding's error of
    // the server's model (the int8 error of a 0.01-scale change, not of five).
    EXPECT_LT(max_abs_diff(*d.model(), server), 0.01 * 4.5 / 127 * 2) << v;
    if (v == 3) {
      // The late client catches up from version 0 with three payloads, in order.
      DownlinkDeltas::Plan lp = d.plan(DownlinkDeltas::Held{late_version, late_hash});
      ASSERT_FALSE(lp.full);
      ASSERT_EQ(lp.payloads.size(), 3u);
      int64_t bytes = 0;
      for (const auto& payload : lp.payloads) {
        ASSERT_TRUE(DownlinkDeltas::apply(*chain("int8:64"), *payload, late, "delta").ok());
        bytes += static_cast<int64_t>(payload->size());
      }
      EXPECT_EQ(lp.bytes, bytes);
      EXPECT_EQ(late.hash(), d.hash());
    }
  }
}

TEST(DownlinkDeltasTest, HistoryBoundsHowFarBackDeltasReach) {
  DownlinkDeltas d(chain("fp16"), 2, 3);
  ArrayRecord m = random_model(2, 1.0f);
  ASSERT_TRUE(d.advance(0, m).ok());
  const DownlinkDeltas::Held at0{0, d.hash()};
  m.flat()[0] += 1.0f;
  ASSERT_TRUE(d.advance(1, m).ok());
  const DownlinkDeltas::Held at1{1, d.hash()};
  m.flat()[1] += 1.0f;
  ASSERT_TRUE(d.advance(2, m).ok());
  EXPECT_EQ(d.plan(at0).payloads.size(), 2u);
  m.flat()[2] += 1.0f;
  ASSERT_TRUE(d.advance(4, m).ok());  // versions need not be consecutive
  // Two deltas kept (1->2, 2->4): version 0 is too old, version 1 gets both.
  EXPECT_TRUE(d.plan(at0).full);
  EXPECT_EQ(d.plan(at1).payloads.size(), 2u);
  // An older or equal version changes nothing.
  const uint64_t h = d.hash();
  ASSERT_TRUE(d.advance(3, random_model(9, 1.0f)).ok());
  EXPECT_EQ(d.hash(), h);
  EXPECT_EQ(d.version(), 4);
}

TEST(DownlinkDeltasTest, SparseDeltasCarryWhatWasDroppedLater) {
  // top-k 10% of a change made once: the rest arrives over the next versions (the server's
  // held model keeps what was not sent as part of the next delta).
  DownlinkDeltas d(chain("topk:0.1"), 4, 5);
  ArrayRecord m(layout());
  ASSERT_TRUE(d.advance(0, m).ok());
  for (int64_t i = 0; i < m.numel(); ++i) m.flat()[i] = 1.0f + static_cast<float>(i % 10);
  int64_t sent_before = 0;
  for (ModelVersion v = 1; v <= 10; ++v) {
    ASSERT_TRUE(d.advance(v, m).ok());
    int64_t exact = 0;
    for (int64_t i = 0; i < m.numel(); ++i) exact += d.model()->flat()[i] == m.flat()[i];
    EXPECT_GT(exact, sent_before) << v;
    sent_before = exact;
  }
  EXPECT_EQ(d.hash(), m.hash());  // ten versions of 10% each: all of it
}

TEST(DownlinkDeltasTest, StartAdvancesPlansAndSendsOlderTasksTheirOwnModel) {
  DownlinkDeltas d(chain("int8"), 4, 5);
  auto m0 = std::make_shared<const ArrayRecord>(random_model(1, 1.0f));
  Result<DownlinkDeltas::Start> s = d.start(0, m0, std::nullopt);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->plan.full);
  EXPECT_EQ(s->model->hash(), m0->hash());
  ASSERT_TRUE(s->holds.has_value());
  const DownlinkDeltas::Held held0 = *s->holds;
  auto m1 = std::make_shared<const ArrayRecord>(random_model(2, 1.0f));
  s = d.start(1, m1, held0);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->plan.full);
  EXPECT_EQ(s->plan.payloads.size(), 1u);
  EXPECT_EQ(s->model, d.model());
  EXPECT_EQ(s->holds->version, 1);
  // A task of version 0 fetched now: its own model, whole; the client is off the chain.
  s = d.start(0, m0, held0);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->model, m0);
  EXPECT_TRUE(s->plan.full);
  EXPECT_EQ(s->plan.bytes, m0->num_bytes());
  EXPECT_FALSE(s->holds.has_value());
}

TEST(DownlinkDeltasTest, ErrorsNameWhatWasWrong) {
  DownlinkDeltas d(chain("int8"), 4, 5);
  ASSERT_TRUE(d.advance(0, random_model(1, 1.0f)).ok());
  ArrayRecord other(*ArrayLayout::create({{.name = "w", .shape = {3}}}));
  Status s = d.advance(1, other);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  ArrayRecord m = random_model(1, 1.0f);
  ASSERT_TRUE(d.advance(1, random_model(2, 1.0f)).ok());
  std::string payload = *d.plan(DownlinkDeltas::Held{0, random_model(1, 1.0f).hash()}).payloads[0];
  payload[payload.size() / 2] ^= 0x5a;
  s = DownlinkDeltas::apply(*chain("int8"), payload, m, "model delta 0->1");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model delta 0->1"), std::string::npos) << s.message();
}

TEST(CompressionOptionsTest, DownlinkDeltaSettingsAreChecked) {
  CompressionOptions o;
  o.downlink_delta = true;
  EXPECT_NE(o.validate().message().find("compression.downlink_delta: needs a downlink chain"),
            std::string::npos);
  o.downlink = "topk:0.01 -> int8";
  EXPECT_TRUE(o.validate().ok());  // sparsifying the changes is fine
  o.downlink_delta = false;
  EXPECT_NE(o.validate().message().find("compression.downlink_delta: true"), std::string::npos);
  o.downlink_delta = true;
  o.downlink_history = 0;
  EXPECT_NE(o.validate().message().find("compression.downlink_history: must be >= 1"),
            std::string::npos);
}

}  // namespace
}  // namespace cohort::runtime
