// Tests of the deployment server with an in-process server on 127.0.0.1:0 and a minimal
// client written with the generated stub.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <cstring>
#include <thread>

#include "cohort/runtime/checkpoint.h"
#include "cohort/deploy/server.h"
#include "cohort/strategy/registry.h"
#include "cohort/v1/fleet.grpc.pb.h"

namespace cohort::deploy {
namespace {

namespace pb = cohort::v1;
namespace fs = std::filesystem;

// Model: "w" [2,3] = 1..6 and "b" [3] = 0.5, 0.5, 0.5 (9 floats).
ArrayRecord initial_model() {
  ArrayRecord r(*ArrayLayout::create({{"w", {2, 3}}, {"b", {3}}}));
  for (int i = 0; i < 6; ++i) r.flat()[i] = static_cast<float>(i + 1);
  for (int i = 6; i < 9; ++i) r.flat()[i] = 0.5f;
  return r;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cohort_server_test_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

std::unique_ptr<Strategy> fedavg(int64_t min_clients, double deadline_s = 0) {
  ConfigRecord p{{"min_clients", min_clients}};
  if (deadline_s > 0) p["round_deadline_s"] = deadline_s;
  return std::move(*make_strategy("fedavg", p));
}

struct Fixture {
  TempDir dir;
  ServerOptions opts;
  std::unique_ptr<Server> server;
  int port = 0;

  Fixture() {
    opts.insecure = true;
    opts.tokens_file = dir.file("tokens", "# test tokens\ntok0 0\ntok1 1\n\ntok2 2  # third\n");
    opts.pull_wait_s = 0.05;
    opts.done_grace_s = 0.0;
    opts.max_rounds = 100;
    opts.chunk_bytes = 8;  // several chunks even for the tiny model
  }
  void start(std::unique_ptr<Strategy> s, ArrayRecord init = initial_model()) {
    server = std::make_unique<Server>(opts, std::move(s), std::move(init));
    Result<int> p = server->start();
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    port = *p;
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(port); }
  // Waits (bounded) until the server reaches `v`.
  bool wait_version(ModelVersion v) const {
    for (int i = 0; i < 2000 && server->version() < v; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return server->version() >= v;
  }
};

// A minimal client over the generated stub.
class TestClient {
 public:
  TestClient(const std::string& target, std::string token,
             std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials(),
             const grpc::ChannelArguments& args = {})
      : stub_(pb::Fleet::NewStub(grpc::CreateCustomChannel(target, creds, args))),
        token_(std::move(token)) {}

  void auth(grpc::ClientContext* ctx) const {
    ctx->AddMetadata("authorization", "Bearer " + token_);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  grpc::Status reg(int64_t examples, pb::RegisterReply* reply) {
    grpc::ClientContext ctx;
    auth(&ctx);
    pb::RegisterRequest req;
    req.set_num_examples(examples);
    return stub_->Register(&ctx, req, reply);
  }

  pb::PullTaskReply pull() {
    grpc::ClientContext ctx;
    auth(&ctx);
    pb::PullTaskReply reply;
    grpc::Status s = stub_->PullTask(&ctx, pb::PullTaskRequest(), &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply;
  }

  // Pulls until TRAIN (or DONE); bounded.
  pb::PullTaskReply pull_train() {
    pb::PullTaskReply r;
    for (int i = 0; i < 400; ++i) {
      r = pull();
      if (r.kind() != pb::PullTaskReply::WAIT) return r;
    }
    return r;
  }

  grpc::Status download(int64_t task_id, std::vector<float>* out) {
    grpc::ClientContext ctx;
    auth(&ctx);
    pb::DownloadRequest req;
    req.set_task_id(task_id);
    req.set_what(pb::DownloadRequest::MODEL);
    auto reader = stub_->Download(&ctx, req);
    pb::TensorChunk ch;
    std::string bytes;
    while (reader->Read(&ch)) {
      EXPECT_EQ(ch.offset(), static_cast<int64_t>(bytes.size()));
      bytes += ch.data();
    }
    grpc::Status s = reader->Finish();
    out->resize(bytes.size() / 4);
    std::memcpy(out->data(), bytes.data(), out->size() * 4);
    return s;
  }

  // Streams `msgs` as an update and returns the status (and reply).
  grpc::Status push_raw(const std::vector<pb::UpdateChunk>& msgs, pb::PushReply* reply) {
    grpc::ClientContext ctx;
    auth(&ctx);
    auto writer = stub_->PushUpdate(&ctx, reply);
    for (const auto& m : msgs) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  static pb::UpdateChunk header(int64_t task_id, int64_t version, int64_t examples,
                                std::vector<std::pair<std::string, std::vector<int64_t>>> layout = {
                                    {"w", {2, 3}}, {"b", {3}}}) {
    pb::UpdateChunk m;
    pb::UpdateHeader* h = m.mutable_header();
    h->set_task_id(task_id);
    h->set_base_version(version);
    h->set_num_examples(examples);
    h->set_local_steps(1);
    for (auto& [name, shape] : layout) {
      pb::ArraySpec* a = h->mutable_layout()->add_arrays();
      a->set_name(name);
      for (int64_t d : shape) a->add_shape(d);
    }
    return m;
  }

  // Chunks of `chunk` bytes of `values`, claiming total `total` (default: the real size).
  static std::vector<pb::UpdateChunk> chunks(const std::vector<float>& values, size_t chunk,
                                             int64_t total = -1) {
    std::string bytes(values.size() * 4, '\0');
    std::memcpy(bytes.data(), values.data(), bytes.size());
    if (total < 0) total = static_cast<int64_t>(bytes.size());
    std::vector<pb::UpdateChunk> out;
    for (size_t off = 0; off < bytes.size(); off += chunk) {
      pb::UpdateChunk m;
      m.mutable_chunk()->set_offset(static_cast<int64_t>(off));
      m.mutable_chunk()->set_total_bytes(total);
      m.mutable_chunk()->set_data(bytes.substr(off, chunk));
      out.push_back(m);
    }
    return out;
  }

  grpc::Status push(const pb::PullTaskReply& task, const std::vector<float>& delta,
                    int64_t examples, pb::PushReply* reply = nullptr) {
    std::vector<pb::UpdateChunk> msgs = {header(task.task_id(), task.version(), examples)};
    for (auto& c : chunks(delta, 12)) msgs.push_back(c);
    pb::PushReply r;
    return push_raw(msgs, reply ? reply : &r);
  }

  grpc::Status heartbeat(int64_t task_id, bool* wanted) {
    grpc::ClientContext ctx;
    auth(&ctx);
    pb::HeartbeatRequest req;
    req.set_task_id(task_id);
    pb::HeartbeatReply reply;
    grpc::Status s = stub_->Heartbeat(&ctx, req, &reply);
    *wanted = reply.task_still_wanted();
    return s;
  }

 private:
  std::unique_ptr<pb::Fleet::Stub> stub_;
  std::string token_;
};

std::vector<float> model_values(const Server& s) {
  auto m = s.global_model();
  return std::vector<float>(m->flat().begin(), m->flat().end());
}

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
  auto stub = pb::Fleet::NewStub(grpc::CreateChannel(f.target(), grpc::InsecureChannelCredentials()));
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
  std::thread p0([&] { s0 = c0.push(t0, d0, 1, &reply0); });
  std::thread p1([&] { s1 = c1.push(t1, d1, 3, &reply1); });
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
    auto stub = pb::Fleet::NewStub(grpc::CreateChannel(f.target(), grpc::InsecureChannelCredentials()));
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

TEST(DeployServer, CheckpointAndResumeContinueTheVersion) {
  TempDir ckpt;
  std::vector<float> after_one;
  int64_t old_task = 0;
  {
    Fixture f;
    f.opts.checkpoint_dir = ckpt.path();
    f.opts.checkpoint_every = 1;
    f.start(fedavg(1));
    TestClient c(f.target(), "tok0");
    pb::RegisterReply rr;
    ASSERT_TRUE(c.reg(2, &rr).ok());
    pb::PullTaskReply t = c.pull_train();
    ASSERT_TRUE(c.push(t, std::vector<float>(9, 1.f), 2).ok());
    ASSERT_TRUE(f.wait_version(1));
    // The next round's task, in flight when the server "crashes".
    t = c.pull_train();
    ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
    old_task = t.task_id();
    after_one = model_values(*f.server);
    f.server->shutdown();
  }
  ASSERT_TRUE(fs::exists(ckpt.path() + "/" + kCheckpointFile));
  {
    Fixture f;
    f.opts.checkpoint_dir = ckpt.path();
    f.opts.resume = true;
    f.start(fedavg(1));
    EXPECT_EQ(f.server->version(), 1);
    EXPECT_EQ(model_values(*f.server), after_one);
    TestClient c(f.target(), "tok0");
    // The task from before the crash is stale.
    pb::PushReply reply;
    pb::PullTaskReply old;
    old.set_task_id(old_task);
    old.set_version(1);
    EXPECT_EQ(c.push(old, std::vector<float>(9, 1.f), 2, &reply).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
    pb::PullTaskReply t = c.pull_train();
    ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
    EXPECT_EQ(t.version(), 1);
    EXPECT_NE(t.task_id(), old_task);
    ASSERT_TRUE(c.push(t, std::vector<float>(9, 1.f), 2, &reply).ok()) << reply.reason();
    ASSERT_TRUE(f.wait_version(2));
    EXPECT_FLOAT_EQ(model_values(*f.server)[0], -1.0f);
  }
  // A strategy without checkpoint support fails --resume clearly.
  {
    Fixture f;
    f.opts.checkpoint_dir = ckpt.path();
    f.opts.resume = true;
    Server s(f.opts, std::move(*make_strategy("fedavgm", {})),
             initial_model());
    Result<int> p = s.start();
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code(), StatusCode::kInvalidArgument);  // strategy name differs
    EXPECT_NE(p.error().message().find("fedavgm"), std::string::npos);
  }
  // A corrupt checkpoint is DataLoss.
  {
    const std::string file = ckpt.path() + "/" + kCheckpointFile;
    fs::resize_file(file, fs::file_size(file) - 4);
    Result<Checkpoint> c = read_checkpoint(ckpt.path());
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code(), StatusCode::kDataLoss);
  }
}

// Pushes `n` updates from client 0, the k-th (k counted across calls) with delta
// 0.1 * (k + 1) + 0.01 * i for element i.
void drive(Fixture& f, int n, int* k) {
  TestClient c(f.target(), "tok0");
  pb::RegisterReply rr;
  ASSERT_TRUE(c.reg(2, &rr).ok());
  for (int j = 0; j < n; ++j, ++*k) {
    pb::PullTaskReply t = c.pull_train();
    ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
    std::vector<float> d(9);
    for (int i = 0; i < 9; ++i) d[i] = 0.1f * static_cast<float>(*k + 1) + 0.01f * static_cast<float>(i);
    pb::PushReply reply;
    ASSERT_TRUE(c.push(t, d, 2, &reply).ok()) << reply.reason();
  }
}

// Checkpoint after 4 updates, resume, 2 more updates == 6 updates without interruption, for
// strategies with state between commits (momentum, moments, buffer).
class ResumeMatchesUninterrupted : public ::testing::TestWithParam<std::pair<std::string, ConfigRecord>> {};

TEST_P(ResumeMatchesUninterrupted, SameModel) {
  const auto& [name, params] = GetParam();
  auto make = [&] { return std::move(*make_strategy(name, params)); };
  std::vector<float> straight;
  {
    Fixture f;
    f.start(make());
    int k = 0;
    drive(f, 6, &k);
    straight = model_values(*f.server);
    EXPECT_GE(f.server->version(), 3);
  }
  TempDir ckpt;
  ModelVersion at_crash = 0;
  {
    Fixture f;
    f.opts.checkpoint_dir = ckpt.path();
    f.start(make());
    int k = 0;
    drive(f, 4, &k);
    at_crash = f.server->version();
    f.server->shutdown();
  }
  Fixture f;
  f.opts.checkpoint_dir = ckpt.path();
  f.opts.resume = true;
  f.start(make());
  EXPECT_EQ(f.server->version(), at_crash);
  int k = 4;
  drive(f, 2, &k);
  const std::vector<float> resumed = model_values(*f.server);
  ASSERT_EQ(resumed.size(), straight.size());
  for (size_t i = 0; i < straight.size(); ++i) EXPECT_FLOAT_EQ(resumed[i], straight[i]) << i;
  const ArrayRecord init = initial_model();
  EXPECT_NE(resumed, std::vector<float>(init.flat().begin(), init.flat().end()));
}

INSTANTIATE_TEST_SUITE_P(
    Strategies, ResumeMatchesUninterrupted,
    ::testing::Values(
        std::make_pair(std::string("fedavgm"), ConfigRecord{{"min_clients", int64_t{1}}, {"server_momentum", 0.5}}),
        std::make_pair(std::string("fedadam"), ConfigRecord{{"min_clients", int64_t{1}}}),
        std::make_pair(std::string("fedyogi"), ConfigRecord{{"min_clients", int64_t{1}}}),
        std::make_pair(std::string("fedbuff"), ConfigRecord{{"buffer_size", int64_t{2}}, {"server_momentum", 0.5}}),
        std::make_pair(std::string("fedasync"), ConfigRecord{})),
    [](const auto& info) { return info.param.first; });

TEST(DeployServer, StrategyWithoutCheckpointSupportIsUnimplemented) {
  auto s = std::move(*make_strategy("scaffold", {}));
  StrategyState st;
  EXPECT_EQ(s->save_state(&st).code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s->restore_state(StrategyState{}).code(), StatusCode::kUnimplemented);
  // The server refuses --checkpoint-dir for it at start-up, not at the first checkpoint.
  Fixture f;
  TempDir ckpt;
  f.opts.checkpoint_dir = ckpt.path();
  Server server(f.opts, std::move(s), initial_model());
  Result<int> p = server.start();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), StatusCode::kUnimplemented);
  EXPECT_NE(p.error().message().find("scaffold"), std::string::npos) << p.error().message();
}

TEST(DeployServer, TlsServerAcceptsVerifiedClients) {
  if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl";
  TempDir d;
  const std::string p = d.path();
  const std::string cmd =
      "cd " + p + " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
      "-days 1 -subj /CN=test-ca >/dev/null 2>&1 && "
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost "
      ">/dev/null 2>&1 && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem "
      "-days 1 -extfile san.ext >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  Fixture f;
  f.opts.insecure = false;
  f.opts.tls_cert_file = p + "/server.pem";
  f.opts.tls_key_file = p + "/server.key";
  f.start(fedavg(1));
  std::ifstream in(p + "/ca.pem");
  std::stringstream ca;
  ca << in.rdbuf();
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = ca.str();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  TestClient c(f.target(), "tok0", grpc::SslCredentials(so), args);
  pb::RegisterReply rr;
  grpc::Status s = c.reg(1, &rr);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(rr.client_id(), 0);
  // Wrong token over TLS still UNAUTHENTICATED.
  TestClient bad(f.target(), "nope", grpc::SslCredentials(so), args);
  EXPECT_EQ(bad.reg(1, &rr).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A plaintext client cannot talk to the TLS server.
  TestClient plain(f.target(), "tok0");
  EXPECT_EQ(plain.reg(1, &rr).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace cohort::deploy
