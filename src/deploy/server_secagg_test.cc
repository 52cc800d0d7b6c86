// Secure aggregation over gRPC (privacy.secagg with cohort serve): clients push their update's
// header alone and take part in the protocol through the SecAgg RPC. The committed model
// equals the plaintext weighted mean up to the fixed-point error, with and without dropouts
// below the threshold; above it the round fails with a clear error, the model is unchanged and
// the server goes on; a malformed share or a masked input for the wrong round is refused
// without stopping the round for the others; an update sent in the clear is refused; and
// nothing the server received reveals an individual update.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <atomic>
#include <thread>

#include "cohort/secagg/messages.h"
#include "deploy/client_secagg.h"
#include "deploy/server_test_util.h"
#include "secagg/crypto.h"
#include "secagg/shamir.h"

namespace cohort::deploy::server_testing {
namespace {

constexpr int kMaxClients = 6;
constexpr double kRange = 2.0;

int64_t examples_of(int k) { return 10 + 5 * k; }

// Client k's delta in round r (9 values, the test model's size).
std::vector<float> delta_of(int k, int r) {
  std::vector<float> d(9);
  for (int i = 0; i < 9; ++i) d[i] = 0.1f * static_cast<float>(k + 1) + 0.01f * i + 0.05f * r;
  return d;
}

struct SecAggFixture : Fixture {
  explicit SecAggFixture(int n, std::unique_ptr<Strategy> strategy = nullptr,
                         double stage_timeout_s = 1.5) {
    const double threshold = 3;
    std::string tokens;
    for (int k = 0; k < kMaxClients; ++k) tokens += "tok" + std::to_string(k) + " " + std::to_string(k) + "\n";
    opts.tokens_file = dir.file("tokens", tokens);
    opts.privacy.secagg.enabled = true;
    opts.privacy.secagg.threshold = threshold;
    opts.privacy.secagg.range = kRange;
    opts.privacy.secagg.stage_timeout_s = stage_timeout_s;
    opts.keep_secagg_transcript = true;
    opts.sinks.push_back(sink);
    start(strategy ? std::move(strategy) : fedavg(n));
    for (int k = 0; k < n; ++k) {
      clients.push_back(std::make_unique<TestClient>(target(), "tok" + std::to_string(k)));
      pb::RegisterReply rr;
      EXPECT_TRUE(clients.back()->reg(examples_of(k), &rr).ok());
    }
  }

  // Hooks for client k in a round.
  struct Hooks {
    std::function<void(secagg::Stage, std::string&)> tamper;
    int vanish_at_stage = -1;
  };

  // One round: every client pulls its task, pushes the header alone and takes part.
  std::vector<SecAggOutcome> round(int r, std::map<int, Hooks> hooks = {}) {
    std::vector<SecAggOutcome> out(clients.size());
    std::vector<std::thread> threads;
    for (size_t k = 0; k < clients.size(); ++k) {
      threads.emplace_back([&, k] {
        TestClient& c = *clients[k];
        const pb::PullTaskReply t = c.pull_train();
        ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
        EXPECT_TRUE(t.secagg());
        SecAggParticipant p;
        p.id = static_cast<ClientId>(k);
        p.task_id = t.task_id();
        p.update = delta_of(static_cast<int>(k), r);
        if (auto h = hooks.find(static_cast<int>(k)); h != hooks.end()) {
          p.tamper = h->second.tamper;
          p.vanish_at_stage = h->second.vanish_at_stage;
        }
        pb::UpdateChunk h = TestClient::header(t.task_id(), t.version(), examples_of(static_cast<int>(k)));
        Result<SecAggOutcome> o = push_withheld(
            c.stub(), [&](grpc::ClientContext* ctx) { c.auth(ctx); }, h.header(), std::move(p),
            nullptr);
        ASSERT_TRUE(o.ok()) << o.error().to_string();
        out[k] = *o;
      });
    }
    for (std::thread& t : threads) t.join();
    return out;
  }

  // The model after FedAvg of `included`'s round-r deltas from `before`.
  static std::vector<float> expected(const std::vector<float>& before, const std::vector<int>& included,
                                     int r) {
    std::vector<double> sum(9, 0.0);
    double w = 0;
    for (int k : included) {
      const std::vector<float> d = delta_of(k, r);
      for (int i = 0; i < 9; ++i) sum[i] += examples_of(k) * static_cast<double>(d[i]);
      w += examples_of(k);
    }
    std::vector<float> out(9);
    for (int i = 0; i < 9; ++i) out[i] = before[i] - static_cast<float>(sum[i] / w);
    return out;
  }

  std::shared_ptr<MemorySink> sink = std::make_shared<MemorySink>();
  std::vector<std::unique_ptr<TestClient>> clients;
};

// The fixed-point error of a weighted mean of a few inputs of 16 bits over [-2, 2].
constexpr float kTolerance = 4 * kRange / 32767;

void expect_model(const Server& s, const std::vector<float>& want) {
  const std::vector<float> got = model_values(s);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], kTolerance) << i;
}

TEST(DeploySecAgg, SumEqualsThePlaintextMeanWithAndWithoutDropouts) {
  SecAggFixture f(6);
  std::vector<float> before = model_values(*f.server);
  std::vector<SecAggOutcome> out = f.round(0);
  for (const SecAggOutcome& o : out) EXPECT_TRUE(o.included) << o.reason;
  ASSERT_TRUE(f.wait_version(1));
  expect_model(*f.server, SecAggFixture::expected(before, {0, 1, 2, 3, 4, 5}, 0));

  // Client 5 dies before its masked input (not in the sum), client 4 after it (in the sum:
  // its self-mask is rebuilt from the shares the others reveal, 3 needed of each member's).
  before = model_values(*f.server);
  out = f.round(1, {{5, {.vanish_at_stage = 2}}, {4, {.vanish_at_stage = 3}}});
  for (int k : {0, 1, 2, 3}) EXPECT_TRUE(out[k].included) << k << ": " << out[k].reason;
  ASSERT_TRUE(f.wait_version(2));
  expect_model(*f.server, SecAggFixture::expected(before, {0, 1, 2, 3, 4}, 1));
  f.server->shutdown();
  const Json* ev = nullptr;
  for (const Json& e : f.sink->events) {
    if (e["event"] == "secagg") ev = &e;
  }
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ((*ev)["included"], 5);
  EXPECT_EQ((*ev)["dropped"], Json::array({5}));
  EXPECT_EQ((*ev)["dropped_after_masking"], Json::array({4}));
  EXPECT_GT((*ev)["bytes_to_server"].get<int64_t>(), 0);
}

TEST(DeploySecAgg, TooManyDropoutsFailTheRoundKeepTheModelAndTheServerGoesOn) {
  SecAggFixture f(4);
  const std::vector<float> before = model_values(*f.server);
  std::vector<SecAggOutcome> out =
      f.round(0, {{2, {.vanish_at_stage = 2}}, {3, {.vanish_at_stage = 2}}});
  for (int k : {0, 1}) {
    EXPECT_FALSE(out[k].included);
    EXPECT_NE(out[k].reason.find("MaskedInput"), std::string::npos) << out[k].reason;
  }
  EXPECT_EQ(f.server->version(), 0);
  EXPECT_EQ(model_values(*f.server), before);
  // The next round runs with everyone.
  out = f.round(1);
  for (const SecAggOutcome& o : out) EXPECT_TRUE(o.included) << o.reason;
  ASSERT_TRUE(f.wait_version(1));
  expect_model(*f.server, SecAggFixture::expected(before, {0, 1, 2, 3}, 1));
  f.server->shutdown();
  bool failed_round = false;
  for (const Json& e : f.sink->events) {
    if (e["event"] == "round" && e.value("error", "").find("secure aggregation") != std::string::npos) {
      failed_round = true;
    }
  }
  EXPECT_TRUE(failed_round);
}

TEST(DeploySecAgg, MalformedShareAndWrongRoundMaskAreRefusedTheOthersGoOn) {
  SecAggFixture f(6);
  const std::vector<float> before = model_values(*f.server);
  SecAggFixture::Hooks truncate_share{.tamper = [](secagg::Stage s, std::string& m) {
    if (s == secagg::Stage::kShareKeys) m.resize(m.size() - 7);
  }};
  SecAggFixture::Hooks wrong_round{.tamper = [](secagg::Stage s, std::string& m) {
    if (s == secagg::Stage::kMaskedInput) m[2] = static_cast<char>(m[2] + 1);  // round, low byte
  }};
  std::vector<SecAggOutcome> out = f.round(0, {{0, truncate_share}, {1, wrong_round}});
  EXPECT_FALSE(out[0].included);
  EXPECT_NE(out[0].reason.find("ShareKeys"), std::string::npos) << out[0].reason;
  EXPECT_FALSE(out[1].included);
  EXPECT_NE(out[1].reason.find("round"), std::string::npos) << out[1].reason;
  for (int k : {2, 3, 4, 5}) EXPECT_TRUE(out[k].included) << out[k].reason;
  ASSERT_TRUE(f.wait_version(1));
  expect_model(*f.server, SecAggFixture::expected(before, {2, 3, 4, 5}, 0));
}

TEST(DeploySecAgg, FedBuffBuffersAreSummedSecurely) {
  SecAggFixture f(3, std::move(*make_strategy("fedbuff", {{"buffer_size", int64_t{3}},
                                                           {"server_lr", 1.0},
                                                           {"server_momentum", 0.0},
                                                           {"reduce", std::string("mean")}})));
  const std::vector<float> before = model_values(*f.server);
  std::vector<SecAggOutcome> out = f.round(0);
  for (const SecAggOutcome& o : out) EXPECT_TRUE(o.included) << o.reason;
  ASSERT_TRUE(f.wait_version(1));
  // Equal example weights, no staleness: the plain mean of the three deltas.
  std::vector<float> want(9);
  for (int i = 0; i < 9; ++i) {
    want[i] = before[i] - (delta_of(0, 0)[i] + delta_of(1, 0)[i] + delta_of(2, 0)[i]) / 3;
  }
  expect_model(*f.server, want);
}

// A shutdown while a round waits for a silent member ends the round at once (the stage
// timeout here is 10 minutes: a round that ignored the shutdown would hang the test), the
// model is unchanged, and every member's SecAgg calls end.
TEST(DeploySecAgg, ShutdownDuringARoundEndsItAndEveryCall) {
  SecAggFixture f(4, nullptr, 600.0);
  const std::vector<float> before = model_values(*f.server);
  std::vector<std::thread> members;
  std::atomic<int> ended{0};
  for (int k = 0; k < 4; ++k) {
    members.emplace_back([&, k] {
      TestClient& c = *f.clients[static_cast<size_t>(k)];
      const pb::PullTaskReply t = c.pull_train();
      if (t.kind() != pb::PullTaskReply::TRAIN) return;
      SecAggParticipant p;
      p.id = k;
      p.task_id = t.task_id();
      p.update = delta_of(k, 0);
      if (k == 3) p.vanish_at_stage = 2;  // never sends its masked input
      pb::UpdateChunk h = TestClient::header(t.task_id(), t.version(), examples_of(k));
      Result<SecAggOutcome> o = push_withheld(
          c.stub(), [&](grpc::ClientContext* ctx) { c.auth(ctx); }, h.header(), std::move(p),
          nullptr);
      // Ended one way or the other: not in any sum, or the connection went away.
      EXPECT_TRUE(!o.ok() || !o->included) << k;
      ++ended;
    });
  }
  // Give the round time to reach its masked-input stage (it passes whatever stage it is in).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  f.server->shutdown();
  for (std::thread& t : members) t.join();
  EXPECT_EQ(ended.load(), 4);
  EXPECT_EQ(f.server->version(), 0);
  EXPECT_EQ(model_values(*f.server), before);
}

// Client 0's task in a fresh three-client run (the others pull once so the round starts).
std::pair<std::unique_ptr<SecAggFixture>, pb::PullTaskReply> first_task() {
  auto f = std::make_unique<SecAggFixture>(3);
  f->clients[1]->pull();
  f->clients[2]->pull();
  pb::PullTaskReply t = f->clients[0]->pull_train();
  EXPECT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  return {std::move(f), t};
}

TEST(DeploySecAgg, UpdatesInTheClearAreRefused) {
  {
    auto [f, t] = first_task();
    TestClient& c = *f->clients[0];
    // Nothing held yet: SecAgg has nothing to say.
    grpc::ClientContext ctx;
    c.auth(&ctx);
    pb::SecAggRequest req;
    req.set_task_id(t.task_id());
    pb::SecAggReply rep;
    grpc::Status s = c.stub().SecAgg(&ctx, req, &rep);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(s.error_message().find("holds no update"), std::string::npos) << s.error_message();
    pb::PushReply reply;
    s = c.push(t, delta_of(0, 0), 10, &reply);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("takes no update in the clear"), std::string::npos)
        << s.error_message();
    EXPECT_EQ(f->server->version(), 0);
  }
  {
    // A header with secagg set but a payload behind it.
    auto [f, t] = first_task();
    TestClient& c = *f->clients[0];
    std::vector<pb::UpdateChunk> msgs = {TestClient::header(t.task_id(), t.version(), 10)};
    msgs[0].mutable_header()->set_secagg(true);
    for (auto& m : TestClient::chunks(delta_of(0, 0), 12)) msgs.push_back(m);
    pb::PushReply reply;
    grpc::Status s = c.push_raw(msgs, &reply);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("header alone"), std::string::npos) << s.error_message();
    EXPECT_EQ(f->server->version(), 0);
  }
}

TEST(DeploySecAgg, NothingTheServerReceivedRevealsAnUpdate) {
  SecAggFixture f(5);
  // Client 2 drops after its masked input: the server then learns its self-mask seed b (to
  // remove it from the sum), the case where the least hides its input.
  std::vector<SecAggOutcome> out = f.round(0, {{2, {.vanish_at_stage = 3}}});
  ASSERT_TRUE(f.wait_version(1));
  const auto transcript = f.server->secagg_transcript();
  ASSERT_FALSE(transcript.empty());
  std::vector<ClientId> u1;
  std::map<ClientId, secagg::MaskedInput> masked;
  std::map<ClientId, std::vector<secagg::shamir::Share>> seed_shares;
  for (const auto& [client, stage, bytes] : transcript) {
    // Only protocol messages; no update's float32 bytes anywhere.
    Result<secagg::MessageKind> kind = secagg::peek_kind(bytes);
    ASSERT_TRUE(kind.ok());
    for (int k = 0; k < 5; ++k) {
      const std::vector<float> d = delta_of(k, 0);
      const auto* raw = reinterpret_cast<const uint8_t*>(d.data());
      EXPECT_EQ(std::search(bytes.begin(), bytes.end(), raw, raw + 4 * d.size()), bytes.end());
    }
    if (stage == static_cast<int>(secagg::Stage::kAdvertiseKeys)) u1.push_back(client);
    if (stage == static_cast<int>(secagg::Stage::kMaskedInput)) {
      masked.emplace(client, *secagg::MaskedInput::decode(bytes));
    }
  }
  std::sort(u1.begin(), u1.end());
  for (const auto& [client, stage, bytes] : transcript) {
    if (stage != static_cast<int>(secagg::Stage::kUnmask)) continue;
    const auto x = static_cast<uint64_t>(std::lower_bound(u1.begin(), u1.end(), client) - u1.begin()) + 1;
    const Result<secagg::UnmaskResponse> response = secagg::UnmaskResponse::decode(bytes);
    ASSERT_TRUE(response.ok());
    for (const secagg::RevealedShare& r : response->shares) {
      if (r.secret == secagg::SecretKind::kSelfMaskSeed) {
        seed_shares[r.owner].push_back(*secagg::shamir::from_bytes(x, r.share));
      }
    }
  }
  ASSERT_EQ(masked.size(), 5u);
  // Even with b_u's mask removed, a masked input still carries the pairwise masks: no word
  // equals either rounding of the client's encoded value.
  const secagg::FixedPoint fp{kRange, 16};
  const double w_max = examples_of(4);
  for (auto& [client, m] : masked) {
    ASSERT_GE(seed_shares[client].size(), 3u);
    const secagg::shamir::Secret b = *secagg::shamir::combine(seed_shares[client], 3);
    std::vector<uint32_t> y = m.words;
    const secagg::crypto::MaskTerm minus_b{.seed = b, .subtract = true};
    const uint32_t mask = m.bits == 32 ? 0xFFFFFFFFu : (1u << m.bits) - 1;
    secagg::crypto::apply_masks(y, std::span(&minus_b, 1), mask, nullptr);
    const std::vector<float> d = delta_of(static_cast<int>(client), 0);
    int equal = 0;
    for (int i = 0; i < 9; ++i) {
      const double q = d[i] * examples_of(static_cast<int>(client)) / w_max * fp.max_magnitude() / kRange;
      for (double r : {std::floor(q), std::ceil(q)}) {
        equal += y[i] == (static_cast<uint32_t>(static_cast<int64_t>(r)) & mask);
      }
    }
    EXPECT_EQ(equal, 0) << "client " << client;
  }
}

}  // namespace
}  // namespace cohort::deploy::server_testing
