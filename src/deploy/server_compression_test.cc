// The deployment server with codec chains (docs/compression.md): encoded updates are decoded
// and folded, a wrong chain or a damaged payload is refused with a clear error while the server
// goes on, models go down as payloads of the downlink chain, and streamed uploads hold no
// model-sized memory however many arrive at once.
#include <gtest/gtest.h>

#include "cohort/codec/codec.h"
#include "cohort/runtime/downlink.h"
#include "deploy/server_test_util.h"

namespace cohort::deploy::server_testing {
namespace {

const std::vector<int64_t> kOffsets = {0, 6, 9};  // the test model: w [2,3], b [3]

std::shared_ptr<const codec::Chain> chain(const std::string& s) { return *codec::Chain::parse(s); }

// An update stream: header naming `codec` and the payload's size, then the payload in chunks.
std::vector<pb::UpdateChunk> encoded_push(const pb::PullTaskReply& t, const std::string& codec,
                                          const std::string& payload, int64_t examples,
                                          int64_t claimed_bytes = -1, size_t chunk = 7) {
  pb::UpdateChunk h = TestClient::header(t.task_id(), t.version(), examples);
  h.mutable_header()->set_codec(codec);
  h.mutable_header()->set_delta_bytes(claimed_bytes >= 0 ? claimed_bytes
                                                         : static_cast<int64_t>(payload.size()));
  std::vector<pb::UpdateChunk> msgs = {h};
  for (auto& m : TestClient::byte_chunks(payload, chunk, claimed_bytes)) msgs.push_back(m);
  return msgs;
}

// A client of the fixture's server, registered with 4 examples.
std::unique_ptr<TestClient> registered(const Fixture& f, const std::string& token = "tok0") {
  auto c = std::make_unique<TestClient>(f.target(), token);
  pb::RegisterReply rr;
  EXPECT_TRUE(c->reg(4, &rr).ok());
  return c;
}

TEST(DeployCompression, EncodedUpdatesAreDecodedAndFolded) {
  for (const char* spec : {"int8", "topk:0.5 -> fp16 -> zstd", "terngrad"}) {
    Fixture f;
    f.opts.compression.uplink = spec;
    f.start(fedavg(1));
    auto client = registered(f);
    TestClient& c = *client;
    pb::PullTaskReply t = c.pull_train();
    ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
    auto ch = chain(spec);
    EXPECT_EQ(t.update_codec(), ch->spec());
    EXPECT_EQ(t.model_codec(), "");
    const std::vector<float> delta = {0.5f, -1, 0.25f, 2, -0.75f, 1, 0.1f, -0.2f, 0.3f};
    const std::string payload = *ch->encode(delta, kOffsets, t.codec_seed());
    std::vector<float> decoded(9);
    ASSERT_TRUE(ch->decode(payload, kOffsets, decoded).ok());
    pb::PushReply reply;
    grpc::Status s = c.push_raw(encoded_push(t, ch->spec(), payload, 4), &reply);
    ASSERT_TRUE(s.ok()) << spec << ": " << s.error_message();
    EXPECT_TRUE(reply.accepted()) << reply.reason();
    ASSERT_TRUE(f.wait_version(1));
    const std::vector<float> w = model_values(*f.server);
    const ArrayRecord init = initial_model();
    for (int i = 0; i < 9; ++i) EXPECT_EQ(w[i], init.flat()[i] - decoded[i]) << spec << " " << i;
  }
}

TEST(DeployCompression, BadEncodingsAreRefusedAndTheServerGoesOn) {
  Fixture f;
  f.opts.compression.uplink = "int8";
  f.start(fedavg(1));
  auto client = registered(f);
  TestClient& c = *client;
  const std::vector<float> delta(9, 0.5f);
  auto int8 = chain("int8");
  const std::string good = *int8->encode(delta, kOffsets, 1);
  std::string flipped = good;
  flipped[flipped.size() - 3] ^= 0x40;
  struct Case {
    std::string name;
    std::string codec;
    std::string payload;
    int64_t claimed;
    grpc::StatusCode code;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"other chain", "int4:256", *chain("int4")->encode(delta, kOffsets, 1), -1,
       grpc::StatusCode::INVALID_ARGUMENT,
       "update encoded with 'int4:256', the server expects 'int8:256' (compression.uplink)"},
      {"raw", "", std::string(36, '\0'), -1, grpc::StatusCode::INVALID_ARGUMENT,
       "update encoded with none (raw float32), the server expects 'int8:256'"},
      {"oversize", "int8:256", good, 1 << 30, grpc::StatusCode::RESOURCE_EXHAUSTED,
       "exceeds the largest int8:256 payload"},
      {"corrupted", "int8:256", flipped, -1, grpc::StatusCode::DATA_LOSS, "CRC-32 mismatch"},
      {"truncated", "int8:256", good.substr(0, good.size() - 5), -1,
       grpc::StatusCode::DATA_LOSS, "truncated"},
      {"claims more", "int8:256", good, static_cast<int64_t>(good.size()) + 8,
       grpc::StatusCode::DATA_LOSS, "truncated"},
  };
  for (const Case& k : cases) {
    pb::PullTaskReply t = c.pull_train();
    ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN) << k.name;
    pb::PushReply reply;
    grpc::Status s = c.push_raw(encoded_push(t, k.codec, k.payload, 4, k.claimed), &reply);
    EXPECT_EQ(s.error_code(), k.code) << k.name << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(k.want), std::string::npos) << k.name << ": " << s.error_message();
    EXPECT_FALSE(reply.accepted()) << k.name;
    EXPECT_EQ(f.server->version(), 0) << k.name;
  }
  // Nothing was folded; a good push still goes through.
  pb::PullTaskReply t = c.pull_train();
  pb::PushReply reply;
  ASSERT_TRUE(c.push_raw(encoded_push(t, "int8:256", *int8->encode(delta, kOffsets, t.codec_seed()), 4),
                         &reply).ok());
  ASSERT_TRUE(f.wait_version(1));
  EXPECT_NEAR(model_values(*f.server)[0], 1.0f - 0.5f, 0.5f / 127);
}

TEST(DeployCompression, ModelsGoDownAsPayloadsOfTheDownlinkChain) {
  Fixture f;
  f.opts.compression.downlink = "fp16 -> zstd";
  f.start(fedavg(1));
  auto client = registered(f);
  TestClient& c = *client;
  pb::PullTaskReply t = c.pull_train();
  EXPECT_EQ(t.model_codec(), "fp16 -> zstd:3");
  EXPECT_EQ(t.update_codec(), "");
  // TestClient::download gathers the raw bytes (as floats); take them back as bytes.
  std::vector<float> raw;
  ASSERT_TRUE(c.download(t.task_id(), &raw).ok());
  grpc::ClientContext ctx;
  c.auth(&ctx);
  pb::DownloadRequest req;
  req.set_task_id(t.task_id());
  req.set_what(pb::DownloadRequest::MODEL);
  auto stub = pb::Fleet::NewStub(grpc::CreateChannel(f.target(), grpc::InsecureChannelCredentials()));
  auto reader = stub->Download(&ctx, req);
  pb::TensorChunk ch;
  std::string bytes;
  while (reader->Read(&ch)) bytes += ch.data();
  ASSERT_TRUE(reader->Finish().ok());
  std::vector<float> model(9);
  ASSERT_TRUE(chain("fp16 -> zstd")->decode(bytes, kOffsets, model).ok());
  const ArrayRecord init = initial_model();
  for (int i = 0; i < 9; ++i) EXPECT_EQ(model[i], init.flat()[i]);  // exact in fp16
}

// Delta downlink: the first download is the model whole (raw float32), later ones the changes
// since the model the client names, which take it to the server's hash; a client naming a
// model the server does not know gets the model whole again.
TEST(DeployCompression, DeltaDownlinkSendsTheChangesSinceTheHeldModel) {
  Fixture f;
  f.opts.compression.downlink = "int8";
  f.opts.compression.downlink_delta = true;
  f.start(fedavg(1));
  auto client = registered(f);
  TestClient& c = *client;
  pb::PullTaskReply t = c.pull_train();
  EXPECT_TRUE(t.model_delta());
  EXPECT_FALSE(t.has_model_delta_from());
  EXPECT_EQ(t.model_codec(), "");
  ArrayRecord held = initial_model();
  EXPECT_EQ(t.model_hash(), held.hash());
  std::vector<float> raw;
  ASSERT_TRUE(c.download(t.task_id(), &raw).ok());
  ASSERT_EQ(raw.size(), 9u);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(raw[i], held.flat()[i]);
  const std::vector<float> delta = {0.5f, -1, 0.25f, 2, -0.75f, 1, 0.1f, -0.2f, 0.3f};
  ASSERT_TRUE(c.push(t, delta, 4).ok());
  ASSERT_TRUE(f.wait_version(1));

  pb::PullTaskRequest req;
  req.set_held_version(0);
  req.set_held_hash(held.hash());
  t = c.pull_train(req);
  ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
  ASSERT_TRUE(t.has_model_delta_from());
  EXPECT_EQ(t.model_delta_from(), 0);
  EXPECT_EQ(t.model_codec(), "int8:256");
  ASSERT_EQ(t.model_delta_bytes_size(), 1);
  std::string bytes;
  ASSERT_TRUE(c.download_bytes(t.task_id(), &bytes).ok());
  EXPECT_EQ(static_cast<int64_t>(bytes.size()), t.model_delta_bytes(0));
  ASSERT_TRUE(runtime::DownlinkDeltas::apply(*chain("int8"), bytes, held, "delta").ok());
  EXPECT_EQ(held.hash(), t.model_hash());
  const std::vector<float> w = model_values(*f.server);
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(held.flat()[i], w[i], 2.0 / 127 + 1e-6) << i;

  // The same task pulled again by a client that now holds its model: nothing to download.
  req.set_held_version(t.version());
  req.set_held_hash(held.hash());
  t = c.pull_train(req);
  ASSERT_TRUE(t.has_model_delta_from());
  EXPECT_EQ(t.model_delta_bytes_size(), 0);
  bytes.clear();
  const grpc::Status nothing = c.download_bytes(t.task_id(), &bytes);
  ASSERT_TRUE(nothing.ok()) << nothing.error_code() << " " << nothing.error_message();
  EXPECT_TRUE(bytes.empty());

  // The same task pulled again by a client naming a model the server never sent: whole.
  req.set_held_hash(held.hash() ^ 1);
  t = c.pull_train(req);
  EXPECT_FALSE(t.has_model_delta_from());
  EXPECT_EQ(t.model_codec(), "");
  const grpc::Status whole = c.download(t.task_id(), &raw);
  ASSERT_TRUE(whole.ok()) << whole.error_code() << " " << whole.error_message();
  for (int i = 0; i < 9; ++i) EXPECT_EQ(raw[i], held.flat()[i]) << i;  // the clients' model
}

// A push whose stream is written in two steps, so several are open at once.
class OpenPush {
 public:
  OpenPush(pb::Fleet::Stub* stub, const std::string& token, std::vector<pb::UpdateChunk> msgs)
      : msgs_(std::move(msgs)) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    writer_ = stub->PushUpdate(&ctx_, &reply_);
    for (size_t i = 0; i < 2; ++i) writer_->Write(msgs_[i]);  // header and one chunk
  }
  grpc::Status finish() {
    for (size_t i = 2; i < msgs_.size(); ++i) writer_->Write(msgs_[i]);
    writer_->WritesDone();
    return writer_->Finish();
  }
  const pb::PushReply& reply() const { return reply_; }

 private:
  std::vector<pb::UpdateChunk> msgs_;
  grpc::ClientContext ctx_;
  pb::PushReply reply_;
  std::unique_ptr<grpc::ClientWriter<pb::UpdateChunk>> writer_;
};

// Three uploads of a 1 MB model open at once under an upload budget of one model: with the
// spool on disk none is refused (each holds a frame, not a model), and the round's sum is
// exact. With the spool in memory the same budget refuses the second upload.
TEST(DeployCompression, StreamedUploadsHoldNoModelSizedMemory) {
  const int64_t n = 250000;
  for (bool on_disk : {true, false}) {
    Fixture f;
    f.opts.max_upload_bytes = n * 4;
    f.opts.spool_memory_bytes = on_disk ? 0 : n * 4;
    f.opts.spool_dir = f.dir.path();
    f.opts.chunk_bytes = 1 << 16;
    ArrayRecord init(*ArrayLayout::create({{"w", {n}}}));
    for (int64_t i = 0; i < n; ++i) init.flat()[i] = 1.0f;
    f.start(fedavg(3), std::move(init));
    std::vector<std::unique_ptr<TestClient>> clients;
    std::vector<pb::PullTaskReply> tasks;
    for (int k = 0; k < 3; ++k) {
      clients.push_back(std::make_unique<TestClient>(f.target(), "tok" + std::to_string(k)));
      pb::RegisterReply rr;
      ASSERT_TRUE(clients.back()->reg(1, &rr).ok());
    }
    for (auto& c : clients) c->pull();  // all three available: the round samples them
    for (auto& c : clients) {
      tasks.push_back(c->pull_train());
      ASSERT_EQ(tasks.back().kind(), pb::PullTaskReply::TRAIN);
    }
    auto stub = pb::Fleet::NewStub(grpc::CreateChannel(f.target(), grpc::InsecureChannelCredentials()));
    std::vector<std::unique_ptr<OpenPush>> open;
    for (int k = 0; k < 3; ++k) {
      std::vector<pb::UpdateChunk> msgs = {
          TestClient::header(tasks[k].task_id(), tasks[k].version(), 1, {{"w", {n}}})};
      for (auto& m : TestClient::chunks(std::vector<float>(n, 0.25f * (k + 1)), 1 << 16)) {
        msgs.push_back(m);
      }
      open.push_back(std::make_unique<OpenPush>(stub.get(), "tok" + std::to_string(k), msgs));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    int accepted = 0, refused = 0;
    for (auto& p : open) {
      grpc::Status s = p->finish();
      if (s.ok() && p->reply().accepted()) ++accepted;
      if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++refused;
      if (on_disk) {
        EXPECT_TRUE(s.ok()) << s.error_message();
      }
    }
    if (on_disk) {
      EXPECT_EQ(accepted, 3);
      ASSERT_TRUE(f.wait_version(1));
      // w = 1 - mean(0.25, 0.5, 0.75)
      for (float x : model_values(*f.server)) ASSERT_EQ(x, 1.0f - 0.5f);
    } else {
      EXPECT_GE(refused, 1);
    }
  }
}

}  // namespace
}  // namespace cohort::deploy::server_testing
