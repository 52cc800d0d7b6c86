// Helpers shared by the deployment server's tests: an in-process server on 127.0.0.1:0 and a
// minimal client written with the generated stub.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "cohort/deploy/server.h"
#include "cohort/runtime/checkpoint.h"
#include "cohort/strategy/registry.h"
#include "cohort/v1/fleet.grpc.pb.h"

namespace cohort::deploy::server_testing {

namespace pb = cohort::v1;
namespace fs = std::filesystem;

// Model: "w" [2,3] = 1..6 and "b" [3] = 0.5, 0.5, 0.5 (9 floats).
inline ArrayRecord initial_model() {
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

inline std::unique_ptr<Strategy> fedavg(int64_t min_clients, double deadline_s = 0) {
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

  pb::PullTaskReply pull(const pb::PullTaskRequest& req = {}) {
    grpc::ClientContext ctx;
    auth(&ctx);
    pb::PullTaskReply reply;
    grpc::Status s = stub_->PullTask(&ctx, req, &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply;
  }

  // Registers with `examples` and pulls until TRAIN: the usual start of a test's client.
  pb::PullTaskReply register_and_train(int64_t examples = 1) {
    pb::RegisterReply rr;
    grpc::Status s = reg(examples, &rr);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return pull_train();
  }

  // Pulls until TRAIN (or DONE); bounded.
  pb::PullTaskReply pull_train(const pb::PullTaskRequest& req = {}) {
    pb::PullTaskReply r;
    for (int i = 0; i < 400; ++i) {
      r = pull(req);
      if (r.kind() != pb::PullTaskReply::WAIT) return r;
    }
    return r;
  }

  // The MODEL download's bytes as they are.
  grpc::Status download_bytes(int64_t task_id, std::string* bytes) {
    grpc::ClientContext ctx;
    auth(&ctx);
    pb::DownloadRequest req;
    req.set_task_id(task_id);
    req.set_what(pb::DownloadRequest::MODEL);
    auto reader = stub_->Download(&ctx, req);
    pb::TensorChunk ch;
    while (reader->Read(&ch)) {
      EXPECT_EQ(ch.offset(), static_cast<int64_t>(bytes->size()));
      *bytes += ch.data();
    }
    return reader->Finish();
  }

  // The MODEL download as float32 values.
  grpc::Status download(int64_t task_id, std::vector<float>* out) {
    std::string bytes;
    grpc::Status s = download_bytes(task_id, &bytes);
    out->resize(bytes.size() / 4);
    if (!out->empty()) std::memcpy(out->data(), bytes.data(), out->size() * 4);
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
    return byte_chunks(bytes, chunk, total);
  }

  // Chunks of `chunk` bytes of any buffer (a codec payload), claiming total `total` (default:
  // its real size).
  static std::vector<pb::UpdateChunk> byte_chunks(const std::string& bytes, size_t chunk,
                                                  int64_t total = -1) {
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

  grpc::Status heartbeat(int64_t task_id, bool* wanted, bool* run_over = nullptr) {
    grpc::ClientContext ctx;
    auth(&ctx);
    pb::HeartbeatRequest req;
    req.set_task_id(task_id);
    pb::HeartbeatReply reply;
    grpc::Status s = stub_->Heartbeat(&ctx, req, &reply);
    *wanted = reply.task_still_wanted();
    if (run_over) *run_over = reply.run_over();
    return s;
  }

 pb::Fleet::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<pb::Fleet::Stub> stub_;
  std::string token_;
};

inline std::vector<float> model_values(const Server& s) {
  auto m = s.global_model();
  return std::vector<float>(m->flat().begin(), m->flat().end());
}

}  // namespace cohort::deploy::server_testing
