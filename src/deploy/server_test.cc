// Tests of the deployment server: tokens, TLS, rounds, bad updates, liveness.
#include "deploy/server_test_util.h"

namespace cohort::deploy {
namespace {

using namespace server_testing;  // NOLINT
namespace pb = cohort::v1;
namespace fs = std::filesystem;

TEST(ParseTokens, ReadsLinesAndNamesBadOnes) {
  auto t = parse_tokens("# c\nabc 0\n  def 7 # x\n", "toks");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->at("abc"), 0);
  EXPECT_EQ(t->at("def"), 7);
  auto bad = parse_tokens("abc 0\nxyz -1\n", "toks");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("toks:2"), std::string::npos) << bad.error().message();
  auto dup = parse_tokens("abc 0\nabc 1\n", "toks");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message().find("duplicate"), std::string::npos);
  EXPECT_FALSE(parse_tokens("abc\n", "toks").ok());
}

TEST(DeployServer, StartRequiresTlsOrInsecure) {
  Fixture f;
  f.opts.insecure = false;
  Server s(f.opts, fedavg(1), initial_model());
  Result<int> p = s.start();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.error().message().find("--insecure"), std::string::npos);
}

TEST(DeployServer, WrongTokenIsUnauthenticated) {
  Fixture f;
  f.start(fedavg(1));
  TestClient bad(f.target(), "nope");
  pb::RegisterReply reply;
  grpc::Status s = bad.reg(10, &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("unknown or revoked token"), std::string::npos);
  pb::PushReply pr;
  s = bad.push_raw({TestClient::header(1, 0, 1)}, &pr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // No metadata at all.
  auto stub =
      pb::Fleet::NewStub(grpc::CreateChannel(f.target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  s = stub->Register(&ctx, pb::RegisterRequest(), &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A good token works.
  TestClient good(f.target(), "tok2");
  ASSERT_TRUE(good.reg(5, &reply).ok());
  EXPECT_EQ(reply.client_id(), 2);
  ASSERT_EQ(reply.layout().arrays_size(), 2);
  EXPECT_EQ(reply.layout().arrays(0).name(), "w");
  EXPECT_EQ(reply.layout().arrays(1).shape(0), 3);
}

TEST(DeployServer, FedAvgRoundAveragesTwoClients) {
  Fixture f;
  auto sink = std::make_shared<MemorySink>();
  f.opts.sinks.push_back(sink);
  f.opts.max_rounds = 1;
  f.opts.max_concurrent_pushes = 1;  // the two pushes below take turns
  f.start(fedavg(2));
  TestClient c0(f.target(), "tok0"), c1(f.target(), "tok1");
  pb::RegisterReply rr;
  ASSERT_TRUE(c0.reg(1, &rr).ok());
  ASSERT_TRUE(c1.reg(3, &rr).ok());
  EXPECT_EQ(c0.pull().kind(), pb::PullTaskReply::WAIT);  // one idle client: no round yet
  pb::PullTaskReply t1 = c1.pull_train();
  pb::PullTaskReply t0 = c0.pull_train();
  ASSERT_EQ(t0.kind(), pb::PullTaskReply::TRAIN);
  ASSERT_EQ(t1.kind(), pb::PullTaskReply::TRAIN);
  EXPECT_EQ(t0.version(), 0);
  EXPECT_NE(t0.task_id(), t1.task_id());
  std::vector<float> model;
  ASSERT_TRUE(c0.download(t0.task_id(), &model).ok());
  const std::vector<float> init = {1, 2, 3, 4, 5, 6, 0.5f, 0.5f, 0.5f};
  EXPECT_EQ(model, init);
  // Another client's task id is not ours.
  std::vector<float> other;
  EXPECT_EQ(c0.download(t1.task_id(), &other).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  const std::vector<float> d0 = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  const std::vector<float> d1 = {-1, 0, 1, 2, 3, 4, 5, 6, 7};
  pb::PushReply reply0, reply1;
  grpc::Status s0, s1;
  std::thread p0([&] {
    s0 = c0.push(t0, d0, 1, &reply0);
  });
  std::thread p1([&] {
    s1 = c1.push(t1, d1, 3, &reply1);
  });
  p0.join();
  p1.join();
  ASSERT_TRUE(s0.ok()) << s0.error_message();
  ASSERT_TRUE(s1.ok()) << s1.error_message();
  EXPECT_TRUE(reply0.accepted());
  EXPECT_TRUE(reply1.accepted());
  ASSERT_TRUE(f.wait_version(1));
  const std::vector<float> got = model_values(*f.server);
  for (size_t i = 0; i < init.size(); ++i) {
    const float expect = init[i] - (1 * d0[i] + 3 * d1[i]) / 4;
    EXPECT_FLOAT_EQ(got[i], expect) << "element " << i;
  }
  EXPECT_EQ(c0.pull().kind(), pb::PullTaskReply::DONE);
  ASSERT_TRUE(f.server->wait().ok());
  bool saw_start = false, saw_summary = false;
  for (const Json& e : sink->events) {
    if (e["event"] == "start") saw_start = true;
    if (e["event"] == "summary") {
      saw_summary = true;
      EXPECT_EQ(e["rounds"], 1);
      EXPECT_EQ(e["updates"], 2);
      EXPECT_EQ(e["rejected"], 0);
    }
  }
  EXPECT_TRUE(saw_start);
  EXPECT_TRUE(saw_summary);
}

TEST(DeployServer, BadUpdatesAreRejectedAndServerKeepsServing) {
  Fixture f;
  auto sink = std::make_shared<MemorySink>();
  f.opts.sinks.push_back(sink);
  f.start(fedavg(1));
  TestClient c(f.target(), "tok0");
  pb::RegisterReply rr;
  ASSERT_TRUE(c.reg(4, &rr).ok());
  const std::vector<float> good(9, 0.25f);
  pb::PushReply reply;
  int rejections = 0;

  auto expect_rejected = [&](const std::vector<pb::UpdateChunk>& msgs, grpc::StatusCode code,
                             const std::string& needle) {
    reply.Clear();
    grpc::Status s = c.push_raw(msgs, &reply);
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_NE(s.error_message().find(needle), std::string::npos) << s.error_message();
    ++rejections;
  };

  // Wrong shape: names the array.
  pb::PullTaskReply t = c.pull_train();
  ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  {
    std::vector<pb::UpdateChunk> msgs = {
        TestClient::header(t.task_id(), t.version(), 4, {{"w", {2, 3}}, {"b", {4}}})};
    for (auto& m : TestClient::chunks(std::vector<float>(10, 0.f), 8)) msgs.push_back(m);
    expect_rejected(msgs, grpc::StatusCode::INVALID_ARGUMENT, "\"b\" has shape [4]");
  }
  // NaN: names the array.
  t = c.pull_train();
  ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  {
    std::vector<float> nan = good;
    nan[7] = std::numeric_limits<float>::quiet_NaN();
    std::vector<pb::UpdateChunk> msgs = {TestClient::header(t.task_id(), t.version(), 4)};
    for (auto& m : TestClient::chunks(nan, 8)) msgs.push_back(m);
    expect_rejected(msgs, grpc::StatusCode::INVALID_ARGUMENT, "b");
  }
  // Truncated: one chunk missing at the end.
  t = c.pull_train();
  {
    std::vector<pb::UpdateChunk> msgs = {TestClient::header(t.task_id(), t.version(), 4)};
    auto ch = TestClient::chunks(good, 8);
    ch.pop_back();
    for (auto& m : ch) msgs.push_back(m);
    expect_rejected(msgs, grpc::StatusCode::DATA_LOSS, "truncated");
  }
  // Oversize: more bytes than the model, total_bytes honest about the model.
  t = c.pull_train();
  {
    std::vector<pb::UpdateChunk> msgs = {TestClient::header(t.task_id(), t.version(), 4)};
    for (auto& m : TestClient::chunks(std::vector<float>(12, 0.f), 8, 36)) msgs.push_back(m);
    expect_rejected(msgs, grpc::StatusCode::RESOURCE_EXHAUSTED, "exceeds");
  }
  // Wrong total_bytes.
  t = c.pull_train();
  {
    std::vector<pb::UpdateChunk> msgs = {TestClient::header(t.task_id(), t.version(), 4)};
    for (auto& m : TestClient::chunks(good, 8, 40)) msgs.push_back(m);
    expect_rejected(msgs, grpc::StatusCode::INVALID_ARGUMENT, "total_bytes 40, expected 36");
  }
  // Out-of-order chunks.
  t = c.pull_train();
  {
    std::vector<pb::UpdateChunk> msgs = {TestClient::header(t.task_id(), t.version(), 4)};
    auto ch = TestClient::chunks(good, 8);
    std::swap(ch[0], ch[1]);
    for (auto& m : ch) msgs.push_back(m);
    expect_rejected(msgs, grpc::StatusCode::INVALID_ARGUMENT, "contiguous");
  }
  // Garbage header: the stream starts with data.
  t = c.pull_train();
  expect_rejected(TestClient::chunks(good, 8), grpc::StatusCode::INVALID_ARGUMENT, "UpdateHeader");
  // Unknown task id.
  expect_rejected({TestClient::header(t.task_id() + 999, t.version(), 4)},
                  grpc::StatusCode::FAILED_PRECONDITION, "not client 0's current task");
  // The strategy's own validation (no examples).
  {
    std::vector<pb::UpdateChunk> msgs = {TestClient::header(t.task_id(), t.version(), 0)};
    for (auto& m : TestClient::chunks(good, 8)) msgs.push_back(m);
    expect_rejected(msgs, grpc::StatusCode::INVALID_ARGUMENT, "num_examples");
  }
  EXPECT_EQ(f.server->version(), 0);

  // A good update afterwards is accepted.
  t = c.pull_train();
  ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  ASSERT_TRUE(c.push(t, good, 4, &reply).ok()) << reply.reason();
  EXPECT_TRUE(reply.accepted());
  ASSERT_TRUE(f.wait_version(1));
  EXPECT_FLOAT_EQ(model_values(*f.server)[0], 1.0f - 0.25f);
  f.server->shutdown();
  int rejected_events = 0;
  for (const Json& e : sink->events) {
    if (e["event"] == "rejected") ++rejected_events;
    if (e["event"] == "summary") {
      EXPECT_EQ(e["rejected"], rejections);
    }
  }
  EXPECT_EQ(rejected_events, rejections);
}

TEST(DeployServer, ScaffoldServerStateAndStateDeltaTravel) {
  Fixture f;
  f.opts.max_rounds = 5;
  f.start(std::move(*make_strategy("scaffold", {{"min_clients", int64_t{1}}})));
  TestClient c(f.target(), "tok0");
  pb::RegisterReply rr;
  ASSERT_TRUE(c.reg(2, &rr).ok());
  pb::PullTaskReply t = c.pull_train();
  ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  ASSERT_TRUE(t.has_server_state());
  ASSERT_TRUE(t.config().count("client_state"));
  EXPECT_EQ(t.config().at("client_state").string_value(), "scaffold");
  {
    grpc::ClientContext ctx;
    c.auth(&ctx);
    pb::DownloadRequest req;
    req.set_task_id(t.task_id());
    req.set_what(pb::DownloadRequest::SERVER_STATE);
    auto stub =
        pb::Fleet::NewStub(grpc::CreateChannel(f.target(), grpc::InsecureChannelCredentials()));
    auto reader = stub->Download(&ctx, req);
    pb::TensorChunk ch;
    int64_t bytes = 0;
    while (reader->Read(&ch)) {
      for (char b : ch.data()) EXPECT_EQ(b, 0);  // c starts at zero
      bytes += static_cast<int64_t>(ch.data().size());
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(bytes, 36);
  }
  // Without the state delta: refused, naming the mismatch.
  pb::PushReply reply;
  grpc::Status s = c.push(t, std::vector<float>(9, 1.f), 2, &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("has_state_delta"), std::string::npos) << s.error_message();
  // With it: delta then state delta in one buffer of 72 bytes.
  t = c.pull_train();
  ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  pb::UpdateChunk h = TestClient::header(t.task_id(), t.version(), 2);
  h.mutable_header()->set_has_state_delta(true);
  std::vector<float> both(18, 1.f);
  std::vector<pb::UpdateChunk> msgs = {h};
  for (auto& m : TestClient::chunks(both, 16)) msgs.push_back(m);
  s = c.push_raw(msgs, &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(reply.accepted());
  ASSERT_TRUE(f.wait_version(1));
}

TEST(DeployServer, SilentClientDoesNotStallRoundWithDeadline) {
  Fixture f;
  f.opts.client_timeout_s = 30;  // only the round deadline can close the round
  f.start(fedavg(2, /*deadline_s=*/0.3));
  TestClient c0(f.target(), "tok0"), c1(f.target(), "tok1");
  pb::RegisterReply rr;
  ASSERT_TRUE(c0.reg(1, &rr).ok());
  ASSERT_TRUE(c1.reg(1, &rr).ok());
  c0.pull();
  pb::PullTaskReply t1 = c1.pull_train();
  pb::PullTaskReply t0 = c0.pull_train();
  ASSERT_EQ(t0.kind(), pb::PullTaskReply::TRAIN);
  ASSERT_EQ(t1.kind(), pb::PullTaskReply::TRAIN);
  // Client 1 vanishes; client 0 delivers.
  ASSERT_TRUE(c0.push(t0, std::vector<float>(9, 1.f), 1).ok());
  ASSERT_TRUE(f.wait_version(1));
  EXPECT_FLOAT_EQ(model_values(*f.server)[0], 0.0f);
  // Client 1's update for the closed round is now stale.
  pb::PushReply reply;
  grpc::Status s = c1.push(t1, std::vector<float>(9, 1.f), 1, &reply);
  EXPECT_FALSE(reply.accepted());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
}

TEST(DeployServer, ClientWithoutHeartbeatIsLost) {
  Fixture f;
  auto sink = std::make_shared<MemorySink>();
  f.opts.sinks.push_back(sink);
  f.opts.client_timeout_s = 0.3;  // no round deadline: only liveness can close the round
  f.start(fedavg(2));
  TestClient c0(f.target(), "tok0"), c1(f.target(), "tok1");
  pb::RegisterReply rr;
  ASSERT_TRUE(c0.reg(1, &rr).ok());
  ASSERT_TRUE(c1.reg(1, &rr).ok());
  c0.pull();
  pb::PullTaskReply t1 = c1.pull_train();
  pb::PullTaskReply t0 = c0.pull_train();
  ASSERT_EQ(t1.kind(), pb::PullTaskReply::TRAIN);
  ASSERT_TRUE(c0.push(t0, std::vector<float>(9, 2.f), 1).ok());
  ASSERT_TRUE(f.wait_version(1));
  EXPECT_FLOAT_EQ(model_values(*f.server)[0], -1.0f);
  bool wanted = true;
  ASSERT_TRUE(c1.heartbeat(t1.task_id(), &wanted).ok());
  EXPECT_FALSE(wanted);
  f.server->shutdown();
  bool lost = false;
  for (const Json& e : sink->events) {
    if (e["event"] == "lost" && e["client"] == 1 && e["reason"] == "timeout") lost = true;
  }
  EXPECT_TRUE(lost);
}

}  // namespace
}  // namespace cohort::deploy
