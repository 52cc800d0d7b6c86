// Tests of the deployment server's limits (deploy/limits.h): stream deadlines, per-client stream
// and call-rate limits, the upload memory budget, empty chunks, escaped and rate-limited log
// lines, and the graceful stop that tells clients DONE.
#include <future>

#include <grpcpp/generic/generic_stub.h>

#include "deploy/limits.h"
#include "deploy/server_test_util.h"

namespace cohort::deploy {
namespace {

using namespace server_testing;  // NOLINT
namespace pb = cohort::v1;

std::unique_ptr<Strategy> fedbuff(int64_t buffer_size) {
  return std::move(*make_strategy("fedbuff", {{"buffer_size", buffer_size}}));
}

// A push stream opened and left hanging: the header and (optionally) the first chunk are sent,
// then nothing. finish() waits for the server's verdict; cancel() lets go from the client side.
class HeldPush {
 public:
  HeldPush(pb::Fleet::Stub* stub, const std::string& token, const pb::PullTaskReply& task,
           bool send_first_chunk) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    writer_ = stub->PushUpdate(&ctx_, &reply_);
    writer_->Write(TestClient::header(task.task_id(), task.version(), 1));
    if (send_first_chunk) {
      writer_->Write(TestClient::chunks(std::vector<float>(9, 0.01f), 8)[0]);
    }
  }
  grpc::Status finish() { return writer_->Finish(); }
  void cancel() { ctx_.TryCancel(); }

 private:
  grpc::ClientContext ctx_;
  pb::PushReply reply_;
  std::unique_ptr<grpc::ClientWriter<pb::UpdateChunk>> writer_;
};

std::unique_ptr<pb::Fleet::Stub> stub_for(const Fixture& f) {
  return pb::Fleet::NewStub(grpc::CreateChannel(f.target(), grpc::InsecureChannelCredentials()));
}

// Finding 2 of issue 9: with max_concurrent_pushes 2, one token holding two push streams open
// froze training. Now the idle deadline cancels them and the honest clients go on.
TEST(DeployLimits, HeldPushStreamsAreCancelledAndTrainingGoesOn) {
  Fixture f;
  auto sink = std::make_shared<MemorySink>();
  f.opts.sinks.push_back(sink);
  f.opts.max_concurrent_pushes = 2;
  f.opts.stream_idle_timeout_s = 0.4;
  f.opts.max_rounds = 2;
  f.start(fedbuff(1));
  TestClient attacker(f.target(), "tok0"), honest(f.target(), "tok1");
  pb::RegisterReply rr;
  ASSERT_TRUE(attacker.reg(1, &rr).ok());
  ASSERT_TRUE(honest.reg(2, &rr).ok());
  pb::PullTaskReply ta = attacker.pull_train();
  ASSERT_EQ(ta.kind(), pb::PullTaskReply::TRAIN);
  auto stub = stub_for(f);
  // Both push slots taken by streams that sent a chunk (so their buffers exist) and then stop.
  HeldPush h1(stub.get(), "tok0", ta, true), h2(stub.get(), "tok0", ta, true);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pb::PullTaskReply th = honest.pull_train();
  ASSERT_EQ(th.kind(), pb::PullTaskReply::TRAIN);
  pb::PushReply reply;
  // The honest push waits for a slot, which the watchdog frees.
  grpc::Status s = honest.push(th, std::vector<float>(9, 0.5f), 2, &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(reply.accepted()) << reply.reason();
  ASSERT_TRUE(f.wait_version(1));
  EXPECT_FALSE(h1.finish().ok());
  EXPECT_FALSE(h2.finish().ok());
  EXPECT_FLOAT_EQ(model_values(*f.server)[0], 1.0f - 0.5f);
  f.server->shutdown();
  int idle = 0;
  for (const Json& e : sink->events) {
    if (e["event"] == "rejected" &&
        e["reason"].get<std::string>().find("stream_idle_timeout_s") != std::string::npos) {
      ++idle;
    }
  }
  EXPECT_EQ(idle, 2);
}

TEST(DeployLimits, StreamsBeyondThePerClientLimitAreRefused) {
  Fixture f;
  f.opts.max_streams_per_client = 2;
  f.opts.stream_idle_timeout_s = 20;
  f.start(fedbuff(1));
  TestClient c(f.target(), "tok0");
  pb::RegisterReply rr;
  ASSERT_TRUE(c.reg(1, &rr).ok());
  TestClient other(f.target(), "tok1");
  ASSERT_TRUE(other.reg(1, &rr).ok());
  pb::PullTaskReply t = c.pull_train();
  ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  auto stub = stub_for(f);
  // Header only: no buffer is allocated, but the streams count.
  HeldPush h1(stub.get(), "tok0", t, false), h2(stub.get(), "tok0", t, false);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pb::PushReply reply;
  grpc::Status s = c.push(t, std::vector<float>(9, 0.f), 1, &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("max_streams_per_client"), std::string::npos);
  std::vector<float> model;
  s = c.download(t.task_id(), &model);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // Another client is not affected.
  pb::PullTaskReply t1 = other.pull_train();
  ASSERT_EQ(t1.kind(), pb::PullTaskReply::TRAIN);
  EXPECT_TRUE(other.download(t1.task_id(), &model).ok());
  // Once the held streams end (which, broken off, cost the task), the client pushes again.
  h1.cancel();
  h2.cancel();
  h1.finish();
  h2.finish();
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    t = c.pull_train();
    ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
    s = c.push(t, std::vector<float>(9, 0.f), 1, &reply);
    ok = s.ok();
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(ok) << s.error_message();
  EXPECT_TRUE(reply.accepted()) << reply.reason();
}

// A finished Download no longer counts against the client's streams by the time the client
// learns it finished: downloads back to back, with one stream allowed, all succeed (the
// callback handler used to free the slot only in OnDone, after the client had its status).
TEST(DeployLimits, BackToBackDownloadsFitInOneStreamSlot) {
  Fixture f;
  f.opts.max_streams_per_client = 1;
  f.opts.max_calls_per_s = 0;  // no call-rate limit: the slots are what this checks
  f.start(fedbuff(1));
  TestClient c(f.target(), "tok0");
  pb::RegisterReply rr;
  ASSERT_TRUE(c.reg(1, &rr).ok());
  pb::PullTaskReply t = c.pull_train();
  ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  for (int i = 0; i < 1000; ++i) {
    std::vector<float> model;
    grpc::Status s = c.download(t.task_id(), &model);
    ASSERT_TRUE(s.ok()) << "download " << i << ": " << s.error_message();
    ASSERT_EQ(model.size(), 9u);
  }
}

TEST(DeployLimits, CallRateIsLimitedPerClient) {
  Fixture f;
  f.opts.max_calls_per_s = 5;  // bursts of 10
  f.start(fedavg(3));
  TestClient greedy(f.target(), "tok0"), calm(f.target(), "tok1");
  pb::RegisterReply rr;
  ASSERT_TRUE(greedy.reg(1, &rr).ok());
  ASSERT_TRUE(calm.reg(1, &rr).ok());
  int refused = 0;
  std::string message;
  auto stub = stub_for(f);
  for (int i = 0; i < 40; ++i) {
    grpc::ClientContext ctx;
    greedy.auth(&ctx);
    pb::HeartbeatRequest req;
    pb::HeartbeatReply rep;
    grpc::Status s = stub->Heartbeat(&ctx, req, &rep);
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++refused;
      message = s.error_message();
    }
  }
  // 40 calls in far less than the 6 s that 10 + 5/s would need.
  EXPECT_GE(refused, 20);
  EXPECT_NE(message.find("max_calls_per_s"), std::string::npos) << message;
  // The calm client's calls are untouched.
  bool wanted = false;
  EXPECT_TRUE(calm.heartbeat(0, &wanted).ok());
}

TEST(DeployLimits, UploadBudgetRefusesPushesBeyondIt) {
  Fixture f;
  f.opts.max_upload_bytes = 40;  // the model is 36 bytes: one upload at a time
  f.opts.stream_idle_timeout_s = 20;
  f.start(fedbuff(1));
  TestClient a(f.target(), "tok0"), b(f.target(), "tok1");
  pb::RegisterReply rr;
  ASSERT_TRUE(a.reg(1, &rr).ok());
  ASSERT_TRUE(b.reg(1, &rr).ok());
  pb::PullTaskReply ta = a.pull_train(), tb = b.pull_train();
  ASSERT_EQ(ta.kind(), pb::PullTaskReply::TRAIN);
  ASSERT_EQ(tb.kind(), pb::PullTaskReply::TRAIN);
  auto stub = stub_for(f);
  auto held = std::make_unique<HeldPush>(stub.get(), "tok0", ta, true);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pb::PushReply reply;
  grpc::Status s = b.push(tb, std::vector<float>(9, 0.f), 1, &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("max_upload_bytes"), std::string::npos) << s.error_message();
  EXPECT_FALSE(reply.accepted());
  held->cancel();
  held->finish();
  held.reset();
  // The budget is back: the next task's push goes through.
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    tb = b.pull_train();
    ASSERT_EQ(tb.kind(), pb::PullTaskReply::TRAIN);
    s = b.push(tb, std::vector<float>(9, 0.25f), 1, &reply);
    ok = s.ok();
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(ok) << s.error_message();
  ASSERT_TRUE(f.wait_version(1));
  EXPECT_FLOAT_EQ(model_values(*f.server)[0], 0.75f);
}

TEST(DeployLimits, UploadBudgetSmallerThanTheModelIsAConfigError) {
  Fixture f;
  f.opts.max_upload_bytes = 20;
  Server s(f.opts, fedavg(1), initial_model());
  Result<int> p = s.start();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.error().message().find("deploy.max_upload_bytes"), std::string::npos)
      << p.error().message();
}

TEST(DeployLimits, EmptyChunksAreRejected) {
  Fixture f;
  f.start(fedbuff(1));
  TestClient c(f.target(), "tok0");
  pb::PullTaskReply t = c.register_and_train();
  std::vector<pb::UpdateChunk> msgs = {TestClient::header(t.task_id(), t.version(), 1)};
  for (int i = 0; i < 1000; ++i) {
    pb::UpdateChunk m;
    m.mutable_chunk()->set_offset(0);
    m.mutable_chunk()->set_total_bytes(36);
    msgs.push_back(m);
  }
  pb::PushReply reply;
  grpc::Status s = c.push_raw(msgs, &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("message 1 of the update stream is an empty chunk"),
            std::string::npos)
      << s.error_message();
}

TEST(DeployLimits, SlowStreamBelowTheByteRateFloorIsCancelled) {
  Fixture f;
  f.opts.stream_idle_timeout_s = 10;
  f.opts.stream_grace_s = 0.3;
  f.opts.stream_min_bytes_per_s = 1e6;
  f.start(fedbuff(1));
  TestClient c(f.target(), "tok0");
  pb::PullTaskReply t = c.register_and_train();
  auto stub = stub_for(f);
  HeldPush trickle(stub.get(), "tok0", t, true);
  grpc::Status s = trickle.finish();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(f.server->version(), 0);
}

// Download is a callback reactor (deploy/download.cc): a client that stops reading a large
// model is cancelled by the idle deadline like a held push, the reactor lets go of the model,
// and another client downloads the whole model and trains on.
TEST(DeployLimits, StalledDownloadIsCancelledAndTheServerGoesOn) {
  Fixture f;
  f.opts.stream_idle_timeout_s = 0.4;
  f.opts.chunk_bytes = 64 << 10;
  f.opts.max_rounds = 1;
  // 16 MB: more than the HTTP/2 windows and socket buffers hold, so writes stall unread.
  ArrayRecord big(*ArrayLayout::create({{"w", {2, 3}}, {"b", {3}}, {"pad", {4 << 20}}}));
  for (int64_t i = 0; i < big.numel(); ++i) big.flat()[i] = static_cast<float>(i % 1000);
  const std::vector<float> want(big.flat().begin(), big.flat().end());
  f.start(fedbuff(1), std::move(big));
  TestClient stalled(f.target(), "tok0"), honest(f.target(), "tok1");
  pb::RegisterReply rr;
  ASSERT_TRUE(stalled.reg(1, &rr).ok());
  ASSERT_TRUE(honest.reg(1, &rr).ok());
  pb::PullTaskReply t0 = stalled.pull_train();
  ASSERT_EQ(t0.kind(), pb::PullTaskReply::TRAIN);
  // A client that lets 64 KB wait unread per stream, no more.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 << 10);
  auto stub = pb::Fleet::NewStub(
      grpc::CreateCustomChannel(f.target(), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tok0");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  pb::DownloadRequest req;
  req.set_task_id(t0.task_id());
  req.set_what(pb::DownloadRequest::MODEL);
  auto reader = stub->Download(&ctx, req);
  pb::TensorChunk first;
  ASSERT_TRUE(reader->Read(&first));  // then nothing more is read
  pb::PullTaskReply t1 = honest.pull_train();
  ASSERT_EQ(t1.kind(), pb::PullTaskReply::TRAIN);
  std::vector<float> got;
  ASSERT_TRUE(honest.download(t1.task_id(), &got).ok());
  EXPECT_EQ(got, want);
  // Past the idle deadline, the stalled stream has been cancelled: what is left to read ends
  // in an error, not in the rest of the model.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto t = std::chrono::steady_clock::now();
  pb::TensorChunk rest;
  while (reader->Read(&rest)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(20));
}

// The raw Download handler parses its request itself: bytes that are no DownloadRequest are
// InvalidArgument, a call without a token Unauthenticated, a stale task FailedPrecondition.
TEST(DeployLimits, MalformedOrUnauthenticatedDownloadsAreRefused) {
  Fixture f;
  f.start(fedbuff(1));
  TestClient c(f.target(), "tok0");
  pb::PullTaskReply t = c.register_and_train();
  auto channel = grpc::CreateChannel(f.target(), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  auto call = [&](const std::string& bytes, bool with_token) {
    grpc::ClientContext ctx;
    if (with_token) ctx.AddMetadata("authorization", "Bearer tok0");
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::CompletionQueue cq;
    auto rpc = generic.PrepareCall(&ctx, "/cohort.v1.Fleet/Download", &cq);
    void* tag = nullptr;
    bool ok = false;
    rpc->StartCall(reinterpret_cast<void*>(1));
    cq.Next(&tag, &ok);
    rpc->Write(request, reinterpret_cast<void*>(2));
    cq.Next(&tag, &ok);
    rpc->WritesDone(reinterpret_cast<void*>(3));
    cq.Next(&tag, &ok);
    grpc::ByteBuffer reply;
    for (;;) {
      rpc->Read(&reply, reinterpret_cast<void*>(4));
      cq.Next(&tag, &ok);
      if (!ok) break;
    }
    grpc::Status status;
    rpc->Finish(&status, reinterpret_cast<void*>(5));
    cq.Next(&tag, &ok);
    return status;
  };
  grpc::Status bad = call(std::string("\xff\xff\xff", 3), true);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(), "malformed DownloadRequest");
  pb::DownloadRequest req;
  req.set_task_id(t.task_id());
  req.set_what(pb::DownloadRequest::MODEL);
  EXPECT_EQ(call(req.SerializeAsString(), false).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(call(req.SerializeAsString(), true).ok());
  req.set_task_id(t.task_id() + 100);
  grpc::Status stale = call(req.SerializeAsString(), true);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(stale.error_message().find("is not client 0's current task"), std::string::npos)
      << stale.error_message();
}

TEST(DeployLimits, GracefulStopTellsClientsDone) {
  Fixture f;
  f.opts.done_grace_s = 5;
  f.opts.max_rounds = 1000;
  f.start(fedavg(2));
  TestClient c(f.target(), "tok0");
  pb::RegisterReply rr;
  ASSERT_TRUE(c.reg(1, &rr).ok());
  EXPECT_EQ(c.pull().kind(), pb::PullTaskReply::WAIT);
  f.server->request_stop("SIGTERM");
  EXPECT_EQ(c.pull().kind(), pb::PullTaskReply::DONE);
  // Registering again after the stop still hears DONE (a client that reconnects learns it).
  TestClient late(f.target(), "tok1");
  ASSERT_TRUE(late.reg(1, &rr).ok());
  EXPECT_EQ(late.pull().kind(), pb::PullTaskReply::DONE);
  f.server->shutdown();
  EXPECT_TRUE(f.server->wait().ok());
}

// The admission: options of the server reach the runtime core: a bound set there (and not
// the default) refuses an update that would otherwise pass.
TEST(DeployLimits, AdmissionOptionsApply) {
  Fixture f;
  f.opts.admission.max_examples = 5;
  f.start(fedbuff(10));
  TestClient c(f.target(), "tok0");
  pb::RegisterReply rr;
  ASSERT_TRUE(c.reg(100, &rr).ok());
  pb::PullTaskReply t = c.pull_train();
  std::vector<float> model;
  ASSERT_TRUE(c.download(t.task_id(), &model).ok());
  std::vector<float> delta(model.size(), 0.001f);
  grpc::Status s = c.push(t, delta, 10);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("claims 10 examples, at most 5"), std::string::npos)
      << s.error_message();
  t = c.pull_train();
  EXPECT_TRUE(c.push(t, delta, 5).ok());
}

// A client training when the run ends learns it from its next heartbeat, and the server keeps
// serving until every client in contact was told (bounded by two heartbeat intervals + 1 s).
TEST(DeployLimits, GracefulStopWaitsForTrainingClientsToBeTold) {
  Fixture f;
  f.opts.client_timeout_s = 10;  // heartbeats every 2 s: the server lingers at most 5 s
  f.opts.max_rounds = 1000;
  f.start(fedbuff(10));  // each client gets a task at its first pull
  TestClient a(f.target(), "tok0");
  TestClient b(f.target(), "tok1");
  pb::RegisterReply rr;
  ASSERT_TRUE(a.reg(1, &rr).ok());
  ASSERT_TRUE(b.reg(1, &rr).ok());
  const pb::PullTaskReply ta = a.pull_train();
  const pb::PullTaskReply tb = b.pull_train();
  bool wanted = false, over = true;
  ASSERT_TRUE(a.heartbeat(ta.task_id(), &wanted, &over).ok());
  EXPECT_TRUE(wanted);
  EXPECT_FALSE(over);
  f.server->request_stop("SIGTERM");
  std::future<Status> waited = std::async(std::launch::async, [&] {
    return f.server->wait();
  });
  ASSERT_TRUE(a.heartbeat(ta.task_id(), &wanted, &over).ok());
  EXPECT_FALSE(wanted);
  EXPECT_TRUE(over);
  // b (training) has not been told yet: the server is still there for it.
  EXPECT_EQ(waited.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  EXPECT_EQ(b.pull().kind(), pb::PullTaskReply::DONE);
  ASSERT_EQ(waited.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_TRUE(waited.get().ok());
}

TEST(DeployLimits, OneEvalReportPerClientAndVersion) {
  Fixture f;
  auto sink = std::make_shared<MemorySink>();
  f.opts.sinks.push_back(sink);
  f.start(fedbuff(1));
  TestClient c(f.target(), "tok0");
  pb::RegisterReply rr;
  ASSERT_TRUE(c.reg(1, &rr).ok());
  auto stub = stub_for(f);
  auto report = [&](int64_t version, double loss, double accuracy) {
    grpc::ClientContext ctx;
    c.auth(&ctx);
    pb::EvalReport req;
    req.set_version(version);
    req.set_loss(loss);
    req.set_accuracy(accuracy);
    req.set_num_examples(10);
    pb::EvalAck ack;
    return stub->ReportEval(&ctx, req, &ack);
  };
  EXPECT_TRUE(report(0, 0.5, 0.9).ok());
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    grpc::Status s = report(0, 0.5, 0.9);
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) ++refused;
  }
  EXPECT_EQ(refused, 20);
  EXPECT_EQ(report(0, std::nan(""), 0.5).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(report(0, 0.5, 1.5).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(report(7, 0.5, 0.5).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  f.server->shutdown();
  int evals = 0;
  for (const Json& e : sink->events) {
    if (e["event"] == "client_eval") ++evals;
  }
  EXPECT_EQ(evals, 1);
}

TEST(LogLimiter, EscapesAndRateLimits) {
  LogLimiter limiter(3, 0.2);
  testing::internal::CaptureStderr();
  limiter.log("name\ncohort serve: run over (forged)");
  limiter.log(std::string(5000, 'x'));
  for (int i = 0; i < 10; ++i) limiter.log("flood " + std::to_string(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  limiter.log("after");
  const std::string out = testing::internal::GetCapturedStderr();
  // The newline is escaped: the forged text stays on the first line.
  EXPECT_NE(out.find("cohort serve: name\\ncohort serve: run over (forged)\n"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("\ncohort serve: run over"), std::string::npos) << out;
  // Long strings are truncated.
  EXPECT_EQ(out.find(std::string(2500, 'x')), std::string::npos);
  // Three lines per window; the 9 others are counted.
  EXPECT_NE(out.find("flood 0"), std::string::npos);
  EXPECT_EQ(out.find("flood 1"), std::string::npos);
  EXPECT_NE(out.find("(9 log lines suppressed"), std::string::npos) << out;
  EXPECT_NE(out.find("cohort serve: after"), std::string::npos);
}

}  // namespace
}  // namespace cohort::deploy
