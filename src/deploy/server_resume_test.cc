// Tests of the deployment server's checkpoints and resume, and TLS.
#include "cohort/privacy/accountant.h"
#include "cohort/strategy/strategy_base.h"
#include "deploy/server_test_util.h"

namespace cohort::deploy {
namespace {

using namespace server_testing;  // NOLINT
namespace pb = cohort::v1;
namespace fs = std::filesystem;

TEST(DeployServer, CheckpointAndResumeContinueTheVersion) {
  TempDir ckpt;
  std::vector<float> after_one;
  int64_t old_task = 0;
  {
    Fixture f;
    f.opts.checkpoint_dir = ckpt.path();
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
    Server s(f.opts, std::move(*make_strategy("fedavgm", {})), initial_model());
    Result<int> p = s.start();
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code(), StatusCode::kInvalidArgument);  // strategy name differs
    EXPECT_NE(p.error().message().find("fedavgm"), std::string::npos);
  }
  // A corrupt newest checkpoint is DataLoss; resuming falls back to the previous one (the
  // server logs the file it skipped).
  {
    const std::string file = ckpt.path() + "/" + kCheckpointFile;
    fs::resize_file(file, fs::file_size(file) - 4);
    Result<Checkpoint> c = read_checkpoint_file(file);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code(), StatusCode::kDataLoss);
    Fixture f;
    f.opts.checkpoint_dir = ckpt.path();
    f.opts.resume = true;
    f.start(fedavg(1));
    EXPECT_EQ(f.server->version(), 1);
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
    for (int i = 0; i < 9; ++i)
      d[i] = 0.1f * static_cast<float>(*k + 1) + 0.01f * static_cast<float>(i);
    pb::PushReply reply;
    ASSERT_TRUE(c.push(t, d, 2, &reply).ok()) << reply.reason();
  }
}

// Checkpoint after 4 updates, resume, 2 more updates == 6 updates without interruption, for
// strategies with state between commits (momentum, moments, buffer).
class ResumeMatchesUninterrupted
    : public ::testing::TestWithParam<std::pair<std::string, ConfigRecord>> {};

TEST_P(ResumeMatchesUninterrupted, SameModel) {
  const auto& [name, params] = GetParam();
  auto make = [&] {
    return std::move(*make_strategy(name, params));
  };
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
        std::make_pair(std::string("fedavgm"),
                       ConfigRecord{{"min_clients", int64_t{1}}, {"server_momentum", 0.5}}),
        std::make_pair(std::string("fedadam"), ConfigRecord{{"min_clients", int64_t{1}}}),
        std::make_pair(std::string("fedyogi"), ConfigRecord{{"min_clients", int64_t{1}}}),
        std::make_pair(std::string("fedbuff"),
                       ConfigRecord{{"buffer_size", int64_t{2}}, {"server_momentum", 0.5}}),
        std::make_pair(std::string("fedasync"), ConfigRecord{}),
        std::make_pair(std::string("fednova"), ConfigRecord{{"min_clients", int64_t{1}}}),
        std::make_pair(std::string("async_local_sgd"), ConfigRecord{{"period", int64_t{3}}})),
    [](const auto& info) {
      return info.param.first;
    });

// A strategy that does not describe its state (a user's, say) cannot be checkpointed.
class NoCheckpoints : public StrategyBase {
 public:
  std::string name() const override { return "no_checkpoints"; }
  void on_client_idle(ClientId) override {}
  Status on_update(Update) override { return Status(); }
  void on_task_lost(ClientId, ModelVersion) override {}
};

// The privacy ledger (the accountant's RDP per order, the clip bound) is in the checkpoint: a
// resumed server goes on spending from where the old one stopped, never from zero.
TEST(DeployServer, ResumeKeepsThePrivacyLedger) {
  TempDir ckpt;
  auto privacy_events = [](const MemorySink& m) {
    std::vector<Json> out;
    for (const Json& e : m.events) {
      if (e.value("event", "") == "privacy") out.push_back(e);
    }
    return out;
  };
  double q = 0, first = 0;
  {
    Fixture f;
    f.opts.checkpoint_dir = ckpt.path();
    f.opts.privacy.dp.noise_multiplier = 0.7;
    auto mem = std::make_shared<MemorySink>();
    f.opts.sinks.push_back(mem);
    f.start(fedavg(1));
    TestClient c(f.target(), "tok0");
    pb::RegisterReply rr;
    ASSERT_TRUE(c.reg(2, &rr).ok());
    pb::PullTaskReply t = c.pull_train();
    ASSERT_TRUE(c.push(t, std::vector<float>(9, 1.f), 2).ok());
    ASSERT_TRUE(f.wait_version(1));
    f.server->shutdown();
    auto ev = privacy_events(*mem);
    ASSERT_EQ(ev.size(), 1u);
    q = ev[0]["sampling_rate"].get<double>();
    first = ev[0]["epsilon"].get<double>();
    auto want = privacy::compute_epsilon(q, 0.7, 1, 1e-5, privacy::Conversion::kImproved);
    ASSERT_TRUE(want.ok());
    EXPECT_NEAR(first, want->epsilon, 1e-9 * want->epsilon);
  }
  {
    Fixture f;
    f.opts.checkpoint_dir = ckpt.path();
    f.opts.resume = true;
    f.opts.privacy.dp.noise_multiplier = 0.7;
    auto mem = std::make_shared<MemorySink>();
    f.opts.sinks.push_back(mem);
    f.start(fedavg(1));
    TestClient c(f.target(), "tok0");
    pb::PullTaskReply t = c.pull_train();
    ASSERT_EQ(t.kind(), pb::PullTaskReply::TRAIN);
    ASSERT_TRUE(c.push(t, std::vector<float>(9, 1.f), 2).ok());
    ASSERT_TRUE(f.wait_version(2));
    f.server->shutdown();
    auto ev = privacy_events(*mem);
    ASSERT_EQ(ev.size(), 1u);
    auto want = privacy::compute_epsilon(q, 0.7, 2, 1e-5, privacy::Conversion::kImproved);
    ASSERT_TRUE(want.ok());
    EXPECT_NEAR(ev[0]["epsilon"].get<double>(), want->epsilon, 1e-9 * want->epsilon);
    EXPECT_GT(ev[0]["epsilon"].get<double>(), first);
  }
}

TEST(DeployServer, StrategyWithoutCheckpointSupportIsUnimplemented) {
  NoCheckpoints s;
  StrategyState st;
  EXPECT_EQ(s.save_state(&st).code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s.restore_state(StrategyState{}).code(), StatusCode::kUnimplemented);
  // The server refuses --checkpoint-dir for it at start-up, not at the first checkpoint.
  Fixture f;
  TempDir ckpt;
  f.opts.checkpoint_dir = ckpt.path();
  Server server(f.opts, std::make_unique<NoCheckpoints>(), initial_model());
  Result<int> p = server.start();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), StatusCode::kUnimplemented);
  EXPECT_NE(p.error().message().find("no_checkpoints"), std::string::npos) << p.error().message();
}

TEST(DeployServer, TlsServerAcceptsVerifiedClients) {
  if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl";
  TempDir d;
  const std::string p = d.path();
  const std::string cmd =
      "cd " + p +
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
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
