// Client against an in-process fake Fleet service (the generated gRPC service, no Cohort
// server): what the client sends (token, header first, contiguous chunks, delta values,
// SCAFFOLD state delta), how it reacts to WAIT/DONE, to UNAUTHENTICATED, to a dropped
// connection and to a rejected update. The QuadraticTrainer makes every value hand-computable.
#include "cohort/deploy/client.h"
#include "cohort/runtime/checkpoint.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "cohort/v1/fleet.grpc.pb.h"
#include "testing/fake_trainer.h"

namespace cohort::deploy {
namespace {

namespace pb = ::cohort::v1;

std::vector<float> floats(const std::string& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// Scripted server: model w = (0.5, -1) of layout w[2]; one TRAIN task (id 11, version 3,
// 1 step, lr 0.5), then DONE.
class FakeFleet final : public pb::Fleet::Service {
 public:
  // Knobs, set before the client runs.
  std::vector<int64_t> layout_shape = {2};
  bool server_state = false;       // SCAFFOLD task with c = (0.1, 0.2)
  std::string update_codec;        // PullTaskReply.update_codec ("" = raw float32)
  int fail_first_pulls = 0;        // answer UNAVAILABLE to this many PullTask calls
  bool reject_bad_updates = true;  // INVALID_ARGUMENT for NaN / wrong layout
  int tasks = 1;                   // TRAIN this many times (task ids 11, 12, ...)

  // Observations.
  std::mutex mu;
  std::vector<std::string> tokens;  // authorization metadata of every RPC
  int registers = 0;
  int pushes = 0;
  std::vector<pb::UpdateHeader> headers;
  std::vector<std::vector<int64_t>> offsets;
  std::vector<std::string> payloads;
  std::vector<int64_t> total_bytes;

  grpc::Status Register(grpc::ServerContext* ctx, const pb::RegisterRequest* req,
                        pb::RegisterReply* rep) override {
    std::lock_guard<std::mutex> lk(mu);
    if (!authorized(ctx)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown token");
    ++registers;
    num_examples_ = req->num_examples();
    rep->set_client_id(7);
    pb::ArraySpec* a = rep->mutable_layout()->add_arrays();
    a->set_name("w");
    for (int64_t d : layout_shape) a->add_shape(d);
    a->set_trainable(true);
    rep->set_chunk_bytes(4);  // one float per chunk: exercises chunking
    rep->set_heartbeat_interval_s(30);
    return grpc::Status::OK;
  }

  grpc::Status PullTask(grpc::ServerContext* ctx, const pb::PullTaskRequest*,
                        pb::PullTaskReply* rep) override {
    std::lock_guard<std::mutex> lk(mu);
    if (!authorized(ctx)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown token");
    if (fail_first_pulls > 0) {
      --fail_first_pulls;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server restarting");
    }
    if (!waited_) {  // one WAIT first
      waited_ = true;
      rep->set_kind(pb::PullTaskReply::WAIT);
      rep->set_retry_after_s(0.01);
      return grpc::Status::OK;
    }
    if (issued_ < tasks) {
      rep->set_kind(pb::PullTaskReply::TRAIN);
      rep->set_task_id(11 + issued_);
      rep->set_version(3);
      rep->set_local_steps(1);
      (*rep->mutable_config())["lr"].set_double_value(0.5);
      if (server_state) {
        (*rep->mutable_config())["client_state"].set_string_value("scaffold");
        rep->set_has_server_state(true);
      }
      rep->set_update_codec(update_codec);
      ++issued_;
      return grpc::Status::OK;
    }
    rep->set_kind(pb::PullTaskReply::DONE);
    return grpc::Status::OK;
  }

  grpc::Status Download(grpc::ServerContext* ctx, const pb::DownloadRequest* req,
                        grpc::ServerWriter<pb::TensorChunk>* writer) override {
    if (!authorized(ctx)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown token");
    const std::vector<float> v = req->what() == pb::DownloadRequest::MODEL
                                     ? std::vector<float>{0.5f, -1.0f}
                                     : std::vector<float>{0.1f, 0.2f};
    for (size_t i = 0; i < v.size(); ++i) {
      pb::TensorChunk c;
      c.set_offset(static_cast<int64_t>(i * 4));
      c.set_total_bytes(8);
      c.set_data(reinterpret_cast<const char*>(&v[i]), 4);
      writer->Write(c);
    }
    return grpc::Status::OK;
  }

  grpc::Status PushUpdate(grpc::ServerContext* ctx, grpc::ServerReader<pb::UpdateChunk>* reader,
                          pb::PushReply* rep) override {
    if (!authorized(ctx)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown token");
    pb::UpdateChunk msg;
    pb::UpdateHeader header;
    std::vector<int64_t> offs;
    std::string data;
    int64_t total = -1;
    bool first = true;
    bool header_first = true;
    while (reader->Read(&msg)) {
      if (msg.has_header()) {
        if (!first) header_first = false;
        header = msg.header();
      } else {
        if (first) header_first = false;
        offs.push_back(msg.chunk().offset());
        data += msg.chunk().data();
        total = msg.chunk().total_bytes();
      }
      first = false;
    }
    std::lock_guard<std::mutex> lk(mu);
    ++pushes;
    headers.push_back(header);
    offsets.push_back(offs);
    payloads.push_back(data);
    total_bytes.push_back(total);
    if (!header_first) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "header not first");
    if (reject_bad_updates) {
      if (header.layout().arrays(0).shape(0) != 2) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "array 'w': wrong shape");
      }
      for (float f : floats(data)) {
        if (!std::isfinite(f))
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "NaN in 'w'");
      }
    }
    rep->set_accepted(true);
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const pb::HeartbeatRequest*,
                         pb::HeartbeatReply* rep) override {
    rep->set_task_still_wanted(true);
    return grpc::Status::OK;
  }

  int64_t num_examples() {
    std::lock_guard<std::mutex> lk(mu);
    return num_examples_;
  }

 private:
  bool authorized(grpc::ServerContext* ctx) {
    auto it = ctx->client_metadata().find("authorization");
    std::string v =
        it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
    {
      std::lock_guard<std::mutex> lk(tokens_mu_);
      tokens.push_back(v);
    }
    return v == "Bearer good";
  }

  std::mutex tokens_mu_;
  int64_t num_examples_ = 0;
  bool waited_ = false;
  int issued_ = 0;
};

Result<ClientStats> run_client(ClientOptions o);

struct Harness {
  FakeFleet service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  Harness() = default;
  void start() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
    ASSERT_NE(port, 0);
  }
  // Runs a client to the end, then takes the service's lock once: the observations the
  // handlers recorded under it are then ordered before the test reads them (ThreadSanitizer
  // cannot see the ordering gRPC provides).
  Result<ClientStats> run(ClientOptions o) {
    Result<ClientStats> r = run_client(std::move(o));
    std::lock_guard<std::mutex> lk(service.mu);
    return r;
  }
  ~Harness() {
    if (server) server->Shutdown();
  }
};

ClientOptions options(int port, const std::string& token = "good") {
  ClientOptions o;
  o.server = "127.0.0.1:" + std::to_string(port);
  o.token = token;
  o.insecure = true;
  o.backoff_initial_s = 0.01;
  o.backoff_max_s = 0.02;
  o.max_disconnected_s = 20;
  return o;
}

// Examples 0..3 of the line dataset: target t = mean((i, 2i)) = (1.5, 3).
Shard line_shard() {
  Shard s;
  s.data = testing::line_dataset(4);
  s.indices = {0, 1, 2, 3};
  return s;
}

Result<ClientStats> run_client(ClientOptions o) {
  COHORT_ASSIGN_OR_RETURN(
      std::unique_ptr<Client> c,
      Client::create(std::move(o), std::make_unique<testing::QuadraticTrainer>(2), line_shard()));
  return c->run();
}

TEST(ClientTest, TrainsOneTaskAndPushesTheDeltaInChunksHeaderFirst) {
  Harness h;
  h.start();
  Result<ClientStats> s = h.run(options(h.port));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->client_id, 7);
  EXPECT_EQ(s->tasks, 1);
  EXPECT_EQ(s->accepted, 1);
  EXPECT_EQ(s->rejected, 0);
  EXPECT_EQ(s->waits, 1);
  EXPECT_EQ(h.service.num_examples(), 4);
  ASSERT_EQ(h.service.pushes, 1);
  const pb::UpdateHeader& hd = h.service.headers[0];
  EXPECT_EQ(hd.task_id(), 11);
  EXPECT_EQ(hd.base_version(), 3);
  EXPECT_EQ(hd.num_examples(), 4);
  EXPECT_EQ(hd.local_steps(), 1);
  EXPECT_FALSE(hd.has_state_delta());
  ASSERT_EQ(hd.layout().arrays_size(), 1);
  EXPECT_EQ(hd.layout().arrays(0).name(), "w");
  // One step at lr 0.5 from w = (0.5, -1) towards t = (1.5, 3): w' = (1, 1); delta = w - w'.
  std::vector<float> delta = floats(h.service.payloads[0]);
  ASSERT_EQ(delta.size(), 2u);
  EXPECT_FLOAT_EQ(delta[0], -0.5f);
  EXPECT_FLOAT_EQ(delta[1], -2.0f);
  EXPECT_EQ(h.service.total_bytes[0], 8);
  EXPECT_EQ(h.service.offsets[0], (std::vector<int64_t>{0, 4}));
  for (const std::string& t : h.service.tokens) EXPECT_EQ(t, "Bearer good");
}

TEST(ClientTest, ScaffoldTaskSendsTheStateDeltaAfterTheDelta) {
  Harness h;
  h.service.server_state = true;
  h.start();
  Result<ClientStats> s = h.run(options(h.port));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  ASSERT_EQ(h.service.pushes, 1);
  EXPECT_TRUE(h.service.headers[0].has_state_delta());
  EXPECT_EQ(h.service.total_bytes[0], 16);
  EXPECT_EQ(h.service.offsets[0], (std::vector<int64_t>{0, 4, 8, 12}));
  // correction c - c_i = (0.1, 0.2); one step: w' = w - 0.5 ((w - t) + c) = (0.95, 0.9),
  // delta = (-0.45, -1.9); Delta c_i = delta / (K lr) - c = (-1.0, -4.0).
  std::vector<float> v = floats(h.service.payloads[0]);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_NEAR(v[0], -0.45f, 1e-6);
  EXPECT_NEAR(v[1], -1.9f, 1e-6);
  EXPECT_NEAR(v[2], -1.0f, 1e-5);
  EXPECT_NEAR(v[3], -4.0f, 1e-5);
}

// The error-feedback residual outlives the process with --state-dir: top-1 of the delta
// (-0.5, -2) sends -2 and keeps (-0.5, 0); a restarted client adds it to its next delta.
TEST(ClientTest, StateDirCarriesTheResidualAcrossRestarts) {
  const std::string dir = ::testing::TempDir() + "/cohort_client_state_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  auto residual = [&]() {
    Result<Checkpoint> c = read_checkpoint_file(dir + "/" + kCheckpointFile);
    EXPECT_TRUE(c.ok()) << c.error().to_string();
    if (!c.ok() || !c->state.arrays.count("ef_residual")) return std::vector<float>{};
    const ArrayRecord& r = c->state.arrays.at("ef_residual");
    return std::vector<float>(r.flat().begin(), r.flat().end());
  };
  for (int run = 0; run < 2; ++run) {
    Harness h;
    h.service.update_codec = "topk:1";
    h.start();
    ClientOptions o = options(h.port);
    o.state_dir = dir;
    Result<ClientStats> s = h.run(o);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    ASSERT_EQ(h.service.pushes, 1);
    EXPECT_EQ(h.service.headers[0].codec(), "topk:1");
    EXPECT_EQ(residual(), run == 0 ? (std::vector<float>{-0.5f, 0.0f})
                                   : (std::vector<float>{-1.0f, 0.0f}));
  }
  // Another client's state is refused, naming both.
  Harness h;
  h.service.update_codec = "topk:1";
  h.start();
  Checkpoint other;
  other.strategy = "client-state";
  other.runtime = {{"client_id", 3}};
  ASSERT_TRUE(write_checkpoint(dir, other, 1).ok());
  ClientOptions o = options(h.port);
  o.state_dir = dir;
  Result<ClientStats> s = h.run(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("holds the state of client 3, this is client 7"),
            std::string::npos)
      << s.error().message();
  std::filesystem::remove_all(dir);
}

TEST(ClientTest, WrongTokenEndsTheRunWithUnauthenticated) {
  Harness h;
  h.start();
  Result<ClientStats> s = h.run(options(h.port, "bad"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(s.error().message().find("rejected this client's token"), std::string::npos)
      << s.error().message();
  EXPECT_NE(s.error().message().find("127.0.0.1:" + std::to_string(h.port)), std::string::npos);
  EXPECT_EQ(h.service.registers, 0);
}

TEST(ClientTest, ReconnectsAndRegistersAgainAfterUnavailable) {
  Harness h;
  h.service.fail_first_pulls = 2;
  h.start();
  Result<ClientStats> s = h.run(options(h.port));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(h.service.registers, 3);
  EXPECT_EQ(s->reconnects, 2);
  EXPECT_EQ(s->accepted, 1);
}

TEST(ClientTest, LayoutMismatchIsFailedPreconditionNamingTheArray) {
  Harness h;
  h.service.layout_shape = {3};
  h.start();
  Result<ClientStats> s = h.run(options(h.port));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.error().message().find("'w[3]'"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("'w[2]'"), std::string::npos) << s.error().message();
}

TEST(ClientTest, InjectedNanIsRejectedOnceThenTheClientGoesOn) {
  Harness h;
  h.service.tasks = 2;
  h.start();
  ClientOptions o = options(h.port);
  o.fault = InjectedFault::kNaN;
  Result<ClientStats> s = h.run(std::move(o));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->tasks, 2);
  EXPECT_EQ(s->rejected, 1);
  EXPECT_EQ(s->accepted, 1);
  ASSERT_EQ(h.service.pushes, 2);
  EXPECT_TRUE(std::isnan(floats(h.service.payloads[0])[0]));
  EXPECT_FLOAT_EQ(floats(h.service.payloads[1])[0], -0.5f);
}

TEST(ClientTest, InjectedWrongShapeShrinksTheFirstArray) {
  Harness h;
  h.start();
  ClientOptions o = options(h.port);
  o.fault = InjectedFault::kWrongShape;
  Result<ClientStats> s = h.run(std::move(o));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->rejected, 1);
  ASSERT_EQ(h.service.pushes, 1);
  EXPECT_EQ(h.service.headers[0].layout().arrays(0).shape(0), 1);
  EXPECT_EQ(h.service.payloads[0].size(), 4u);
  EXPECT_EQ(h.service.total_bytes[0], 4);
}

TEST(ClientTest, GivesUpWhenTheServerStaysUnreachable) {
  // Bind and release a port so nothing listens on it.
  int port = 0;
  {
    Harness h;
    h.start();
    port = h.port;
  }
  ClientOptions o = options(port);
  o.max_disconnected_s = 0.2;
  Result<ClientStats> s = run_client(std::move(o));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(s.error().message().find("cannot reach server 127.0.0.1:"), std::string::npos)
      << s.error().message();
}

TEST(ClientTest, CreateValidatesOptions) {
  auto make = [](ClientOptions o, Shard shard = line_shard()) {
    return Client::create(std::move(o), std::make_unique<testing::QuadraticTrainer>(2),
                          std::move(shard));
  };
  ClientOptions o = options(1);
  o.server = "";
  EXPECT_EQ(make(o).error().code(), StatusCode::kInvalidArgument);

  o = options(1);
  o.insecure = false;
  Status s = make(o).error();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--ca"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--insecure"), std::string::npos) << s.message();

  o = options(1);
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(make(o).error().code(), StatusCode::kInvalidArgument);  // both given

  o = options(1);
  o.insecure = false;
  o.ca_file = "/nonexistent/ca.pem";
  s = make(o).error();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("'/nonexistent/ca.pem'"), std::string::npos) << s.message();

  const std::string not_pem = ::testing::TempDir() + "/cohort_client_not_pem.txt";
  std::ofstream(not_pem) << "hello\n";
  o.ca_file = not_pem;
  s = make(o).error();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no PEM certificate"), std::string::npos) << s.message();
  std::remove(not_pem.c_str());

  o = options(1);
  o.backoff_initial_s = 2;
  o.backoff_max_s = 1;
  s = make(o).error();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("initial 2 s, max 1 s"), std::string::npos) << s.message();

  Shard empty = line_shard();
  empty.indices.clear();
  s = make(options(1), std::move(empty)).error();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("empty"), std::string::npos);
}

TEST(ClientTest, ParseInjectedFault) {
  EXPECT_EQ(parse_injected_fault("nan").value(), InjectedFault::kNaN);
  EXPECT_EQ(parse_injected_fault("wrong-shape").value(), InjectedFault::kWrongShape);
  EXPECT_EQ(parse_injected_fault("none").value(), InjectedFault::kNone);
  Result<InjectedFault> bad = parse_injected_fault("garbage");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            "--inject-fault: unknown fault 'garbage' (known: none, wrong-shape, nan)");
}

}  // namespace
}  // namespace cohort::deploy
