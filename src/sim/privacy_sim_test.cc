// Privacy in the simulator: DP-FedAvg's epsilon after the run equals the accountant's for the
// rounds run; a target epsilon stops the run before it is exceeded; every eval event carries
// the epsilon spent; client-side DP (clients clip, the server adds the noise) lands where
// server-side DP does; secure aggregation with client-side DP and dropouts trains; FedBuff
// takes DP; runs repeat for any thread count; strategies without groups are refused.
#include <gtest/gtest.h>

#include <cmath>

#include "cohort/privacy/accountant.h"
#include "cohort/sim/simulator.h"
#include "cohort/strategy/fedasync.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "cohort/strategy/scaffold.h"
#include "testing/fake_trainer.h"
#include "testing/sim_population.h"

namespace cohort::sim {
namespace {

using testing::line_dataset;
using testing::quadratic_factory;

std::vector<SimClient> population(std::shared_ptr<const Dataset> d, int64_t count, int64_t per) {
  return testing::interleaved_population(d, count, per, 0.1);
}

SimOptions options(int64_t rounds, size_t threads = 2) {
  SimOptions o;
  o.admission.warmup_bound = "none";
  o.run.rounds = rounds;
  o.run.threads = threads;
  o.run.seed = 11;
  o.training.lr = 0.2;
  o.training.local_steps = 1;
  o.privacy.dp.noise_multiplier = 0.8;
  o.privacy.dp.clip_norm = 5.0;
  return o;
}

struct SimRun {
  Result<SimSummary> summary = Status::internal("not run");
  std::vector<Json> events;
  std::vector<Json> of(const std::string& kind) const {
    std::vector<Json> out;
    for (const Json& e : events) {
      if (e.value("event", "") == kind) out.push_back(e);
    }
    return out;
  }
};

SimRun run(SimOptions o, Strategy& s, int64_t clients = 20) {
  auto d = line_dataset(clients * 4);
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(std::move(o), quadratic_factory(2), population(d, clients, 4), Shard::all(d),
                &hub);
  SimRun r;
  r.summary = sim.run(s);
  r.events = mem->events;
  return r;
}

FedAvg quarter() {
  FedAvgOptions o;
  o.round.fraction = 0.25;  // 5 of 20: q = 1/4
  return FedAvg(o);
}

TEST(PrivacySimTest, EpsilonMatchesTheAccountantAndEvalsCarryIt) {
  FedAvg s = quarter();
  SimRun r = run(options(6), s);
  ASSERT_TRUE(r.summary.ok()) << r.summary.error().to_string();
  auto want = privacy::compute_epsilon(0.25, 0.8, 6, 1e-5, privacy::Conversion::kImproved);
  ASSERT_TRUE(want.ok());
  ASSERT_TRUE(r.summary->epsilon.has_value());
  EXPECT_NEAR(*r.summary->epsilon, want->epsilon, 1e-9 * want->epsilon);
  EXPECT_DOUBLE_EQ(r.summary->delta, 1e-5);
  const Json j = r.summary->to_json();
  EXPECT_NEAR(j["epsilon"].get<double>(), want->epsilon, 1e-9 * want->epsilon);
  auto evals = r.of("eval");
  ASSERT_GE(evals.size(), 7u);  // initial + one per round
  EXPECT_EQ(evals.front()["epsilon"].get<double>(), 0.0);
  for (size_t i = 1; i < evals.size(); ++i) {
    EXPECT_GE(evals[i]["epsilon"].get<double>(), evals[i - 1]["epsilon"].get<double>());
  }
  EXPECT_EQ(r.of("privacy").size(), 6u);
}

TEST(PrivacySimTest, TargetEpsilonStopsTheRunBeforeExceedingIt) {
  SimOptions o = options(50);
  auto after4 = privacy::compute_epsilon(0.25, 0.8, 4, 1e-5, privacy::Conversion::kImproved);
  auto after5 = privacy::compute_epsilon(0.25, 0.8, 5, 1e-5, privacy::Conversion::kImproved);
  ASSERT_TRUE(after4.ok() && after5.ok());
  o.privacy.dp.target_epsilon = (after4->epsilon + after5->epsilon) / 2;
  FedAvg s = quarter();
  SimRun r = run(o, s);
  ASSERT_TRUE(r.summary.ok()) << r.summary.error().to_string();
  EXPECT_EQ(r.summary->rounds, 4);
  EXPECT_LE(*r.summary->epsilon, *o.privacy.dp.target_epsilon);
  EXPECT_NE(r.summary->stop_reason.find("privacy budget"), std::string::npos)
      << r.summary->stop_reason;
}

TEST(PrivacySimTest, NoiseMultiplierDerivedFromTheBudget) {
  SimOptions o = options(10);
  o.privacy.dp.noise_multiplier = 0;
  o.privacy.dp.target_epsilon = 2.0;
  FedAvg s = quarter();
  SimRun r = run(o, s);
  ASSERT_TRUE(r.summary.ok()) << r.summary.error().to_string();
  EXPECT_EQ(r.summary->rounds, 10);  // the whole planned run fits the budget
  EXPECT_LE(*r.summary->epsilon, 2.0);
  EXPECT_GT(*r.summary->epsilon, 1.9);
}

TEST(PrivacySimTest, ClientSideLandsWhereServerSideDoes) {
  // Same noise (the server's, from the run seed), clipping on the other side of the wire.
  FedAvg a = quarter(), b = quarter();
  SimOptions server = options(5);
  server.privacy.dp.clip_norm = 0.5;  // binding: the line's deltas are larger
  SimOptions client = server;
  client.privacy.dp.side = "client";
  SimRun rs = run(server, a);
  SimRun rc = run(client, b);
  ASSERT_TRUE(rs.summary.ok() && rc.summary.ok());
  EXPECT_NEAR(rs.summary->final_loss, rc.summary->final_loss,
              1e-4 * (1 + rs.summary->final_loss));
  EXPECT_DOUBLE_EQ(*rs.summary->epsilon, *rc.summary->epsilon);
  auto ps = rs.of("privacy");
  auto pc = rc.of("privacy");
  ASSERT_EQ(ps.size(), pc.size());
  // The unclipped fraction comes from the clients' reports on the client side.
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_DOUBLE_EQ(ps[i]["unclipped_fraction"].get<double>(),
                     pc[i]["unclipped_fraction"].get<double>());
  }
}

TEST(PrivacySimTest, RepeatsForAnyThreadCount) {
  FedAvg a = quarter(), b = quarter();
  SimRun one = run(options(4, 1), a);
  SimRun two = run(options(4, 3), b);
  ASSERT_TRUE(one.summary.ok() && two.summary.ok());
  EXPECT_EQ(one.summary->model_hash, two.summary->model_hash);
}

TEST(PrivacySimTest, SecAggWithClientDpAndDropoutsTrains) {
  SimOptions o = options(8);
  o.privacy.dp.side = "client";
  o.privacy.dp.noise_multiplier = 0.3;
  o.privacy.secagg.enabled = true;
  o.privacy.secagg.threshold = 0.5;
  o.privacy.secagg.dropout_after_masking = 0.1;
  FedAvg s = quarter();
  FedAvg plain_strategy = quarter();
  SimOptions plain = options(8);
  plain.privacy = {};
  SimRun r = run(o, s);
  SimRun p = run(plain, plain_strategy);
  ASSERT_TRUE(r.summary.ok()) << r.summary.error().to_string();
  ASSERT_TRUE(p.summary.ok());
  EXPECT_EQ(r.summary->secagg_groups + r.summary->secagg_failed, 8);
  EXPECT_GE(r.summary->secagg_groups, 6);
  EXPECT_EQ(r.of("secagg").size(), static_cast<size_t>(r.summary->secagg_groups));
  // Training still makes progress from the initial loss.
  auto evals = r.of("eval");
  EXPECT_LT(evals.back()["loss"].get<double>(), evals.front()["loss"].get<double>());
}

TEST(PrivacySimTest, Int8ClippingAndSecAggCompose) {
  // "int8 + clipping + secure aggregation": int8 becomes the protocol's 8-bit fixed point.
  SimOptions o = options(4);
  o.privacy.dp.side = "client";
  o.privacy.secagg.enabled = true;
  o.compression.uplink = "int8";
  FedAvg s = quarter();
  SimRun r = run(o, s);
  ASSERT_TRUE(r.summary.ok()) << r.summary.error().to_string();
  auto ev = r.of("secagg");
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0]["bits"], 8 + 3);  // 8 input bits + ceil(log2 5)
  // The uploads are the masked words: (2 parameters + 1 count word) x 11 bits, + 27 header.
  const int64_t per_upload = 27 + (3 * 11 + 7) / 8;
  EXPECT_EQ(r.summary->bytes_up, per_upload * r.summary->updates);
  EXPECT_EQ(r.summary->secagg_groups, 4);
  EXPECT_EQ(r.summary->rejected, 0);  // no norm bound on what the server cannot see

  // A sparsifier cannot: each client would send other coordinates.
  o.compression.uplink = "topk:0.5";
  FedAvg t = quarter();
  SimRun bad = run(o, t);
  ASSERT_FALSE(bad.summary.ok());
  EXPECT_NE(bad.summary.error().message().find("compression.uplink"), std::string::npos);
}

TEST(PrivacySimTest, FedBuffBuffersGoThroughSecureAggregation) {
  // Secure aggregation alone. The first buffer holds the first four arrivals in both runs, so
  // its sum through the protocol lands where plain FedBuff's does, up to the fixed point
  // (24-bit inputs over [-100, 100]).
  auto fedbuff = [] {
    FedBuffOptions fo;
    fo.buffer_size = 4;
    return FedBuff(fo);
  };
  SimOptions plain = options(1);
  plain.privacy = {};
  SimOptions secure = plain;
  secure.privacy.secagg.enabled = true;
  secure.privacy.secagg.range = 100;
  secure.privacy.secagg.input_bits = 24;
  FedBuff a = fedbuff(), b = fedbuff();
  SimRun p = run(plain, a);
  SimRun s = run(secure, b);
  ASSERT_TRUE(p.summary.ok() && s.summary.ok()) << s.summary.error().to_string();
  EXPECT_EQ(s.summary->rounds, 1);
  EXPECT_EQ(s.summary->secagg_groups, 1);
  EXPECT_NEAR(s.summary->final_loss, p.summary->final_loss, 1e-3 * (1 + p.summary->final_loss));
  EXPECT_FALSE(s.summary->epsilon.has_value());  // no DP: no epsilon

  // Later buffers differ from plain FedBuff's: a client whose update waits in the open buffer
  // gets its next task after the flush (no client twice in a group), so every one of six
  // buffers goes through the protocol with four distinct members, and the model trains.
  secure.run.rounds = 6;
  FedBuff c = fedbuff();
  SimRun six = run(secure, c);
  ASSERT_TRUE(six.summary.ok()) << six.summary.error().to_string();
  EXPECT_EQ(six.summary->rounds, 6);
  EXPECT_EQ(six.summary->secagg_groups, 6);
  for (const Json& e : six.of("secagg")) EXPECT_EQ(e["members"].get<int64_t>(), 4);
  const std::vector<Json> evals = six.of("eval");
  ASSERT_GE(evals.size(), 2u);
  EXPECT_LT(six.summary->final_loss, 0.9 * evals.front()["loss"].get<double>());
}

TEST(PrivacySimTest, SecAggFailingGroupAfterGroupFailsTheRun) {
  // A threshold the dropouts never leave: ten failed groups in a row end the run with the
  // protocol's reason instead of retrying forever.
  SimOptions o = options(1000);
  o.privacy = {};
  o.privacy.secagg.enabled = true;
  o.privacy.secagg.threshold = 0.95;
  o.privacy.secagg.dropout_before_masking = 0.5;
  FedAvg s = quarter();
  SimRun r = run(o, s);
  ASSERT_FALSE(r.summary.ok());
  EXPECT_NE(r.summary.error().message().find("10 groups in a row failed secure aggregation"),
            std::string::npos)
      << r.summary.error().to_string();

  // SCAFFOLD's control variates would bypass privacy: refused.
  SimOptions dp = options(2);
  Scaffold scaffold;
  SimRun refused = run(dp, scaffold);
  ASSERT_FALSE(refused.summary.ok());
  EXPECT_NE(refused.summary.error().message().find("scaffold"), std::string::npos);
}

TEST(PrivacySimTest, FedBuffTakesDpAndFedAsyncIsRefused) {
  FedBuffOptions fo;
  fo.buffer_size = 4;
  FedBuff fb(fo);
  SimOptions o = options(6);
  SimRun r = run(o, fb);
  ASSERT_TRUE(r.summary.ok()) << r.summary.error().to_string();
  // K = 4 of 20: q = 0.2 per buffer.
  auto want = privacy::compute_epsilon(0.2, 0.8, r.summary->rounds, 1e-5,
                                       privacy::Conversion::kImproved);
  ASSERT_TRUE(want.ok());
  EXPECT_NEAR(*r.summary->epsilon, want->epsilon, 1e-9 * want->epsilon);

  FedAsync fa({});
  SimRun bad = run(options(3), fa);
  ASSERT_FALSE(bad.summary.ok());
  EXPECT_NE(bad.summary.error().message().find("privacy"), std::string::npos)
      << bad.summary.error().to_string();
}

}  // namespace
}  // namespace cohort::sim
