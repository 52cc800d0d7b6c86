// Aggregators in process: a top Server, two deploy::Aggregators and four deploy::Clients with
// the QuadraticTrainer (lr 1, one step: each client ends exactly at its target), so the top
// server's model after FedAvg rounds is the example-weighted mean of the targets, whichever
// aggregator a client sits behind. And what an aggregator refuses to start with.
#include "cohort/deploy/aggregator.h"

#include <thread>

#include <gtest/gtest.h>

#include "deploy/server_test_util.h"
#include "testing/fake_trainer.h"

namespace cohort::deploy {
namespace {

using server_testing::TempDir;

// A shard of `n` examples of dimension 2 whose mean is (a, b).
Shard shard_with_mean(int64_t n, float a, float b) {
  auto d = std::make_shared<Dataset>();
  d->sample_shape = {2};
  d->num_classes = 1;
  for (int64_t i = 0; i < n; ++i) {
    const float e = (i % 2 == 0 ? 1.0f : -1.0f) * (n % 2 == 0 ? 1.0f : 0.0f);
    d->features.push_back(a + e);
    d->features.push_back(b - e);
    d->labels.push_back(0);
  }
  return Shard::all(std::move(d));
}

ClientOptions client_options(int port, const std::string& token) {
  ClientOptions o;
  o.server = "127.0.0.1:" + std::to_string(port);
  o.token = token;
  o.insecure = true;
  o.max_disconnected_s = 20;
  o.backoff_max_s = 0.2;
  o.training.lr = 1.0;
  o.training.local_steps = 1;
  return o;
}

ServerOptions server_options(const std::string& tokens) {
  ServerOptions o;
  o.insecure = true;
  o.tokens_file = tokens;
  o.pull_wait_s = 0.05;
  o.done_grace_s = 0.5;
  o.training.lr = 1.0;
  o.training.local_steps = 1;
  o.admission.norm_policy = "off";  // the targets are far from the initial model on purpose
  o.max_wall_s = 60;                // a bound if something goes wrong
  return o;
}

TEST(AggregatorTest, TwoLevelFedAvgIsTheWeightedMeanOfEveryClient) {
  TempDir dir;
  testing::QuadraticTrainer init(2);
  ArrayRecord initial = *init.init_params(3);
  ServerOptions top_opts = server_options(dir.file("top_tokens", "agg-a 0\nagg-b 1\n"));
  top_opts.max_rounds = 2;
  Server top(top_opts, server_testing::fedavg(2), initial.clone());
  Result<int> top_port = top.start();
  ASSERT_TRUE(top_port.ok()) << top_port.error().to_string();

  const std::vector<int64_t> n = {10, 30, 20, 40};
  const std::vector<std::pair<float, float>> t = {{1, 2}, {3, -1}, {-2, 0.5f}, {0, 4}};
  std::vector<std::unique_ptr<Aggregator>> aggs;
  std::vector<int> ports;
  for (int a = 0; a < 2; ++a) {
    AggregatorOptions o;
    o.server = server_options(dir.file(
        "agg" + std::to_string(a), "leaf" + std::to_string(2 * a) + " " + std::to_string(2 * a) +
                                       "\nleaf" + std::to_string(2 * a + 1) + " " +
                                       std::to_string(2 * a + 1) + "\n"));
    o.upstream = client_options(*top_port, a == 0 ? "agg-a" : "agg-b");
    o.round.min_clients = 2;
    aggs.push_back(std::make_unique<Aggregator>(std::move(o), initial.clone()));
    Result<int> p = aggs.back()->start();
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    ports.push_back(*p);
  }
  std::vector<std::unique_ptr<Client>> clients;
  for (int k = 0; k < 4; ++k) {
    Result<std::unique_ptr<Client>> c = Client::create(
        client_options(ports[static_cast<size_t>(k / 2)], "leaf" + std::to_string(k)),
        std::make_unique<testing::QuadraticTrainer>(2),
        shard_with_mean(n[static_cast<size_t>(k)], t[static_cast<size_t>(k)].first,
                        t[static_cast<size_t>(k)].second));
    ASSERT_TRUE(c.ok()) << c.error().to_string();
    clients.push_back(std::move(*c));
  }
  std::vector<Status> agg_status(2);
  std::vector<std::thread> threads;
  for (int a = 0; a < 2; ++a) {
    threads.emplace_back([&, a] {
      agg_status[static_cast<size_t>(a)] = aggs[static_cast<size_t>(a)]->run();
    });
  }
  std::vector<int64_t> accepted(4, 0);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      Result<ClientStats> s = clients[static_cast<size_t>(k)]->run();
      if (s.ok()) accepted[static_cast<size_t>(k)] = s->accepted;
    });
  }
  ASSERT_TRUE(top.wait().ok());
  for (auto& th : threads) th.join();
  for (const Status& s : agg_status) EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(top.version(), 2);
  for (int a = 0; a < 2; ++a) EXPECT_EQ(aggs[static_cast<size_t>(a)]->jobs_done(), 2);
  for (int64_t x : accepted) EXPECT_EQ(x, 2);
  // lr 1, one step: every client ends at its target, so both rounds give the weighted mean.
  double wa = 0, wb = 0, sum = 0;
  for (size_t k = 0; k < 4; ++k) {
    wa += static_cast<double>(n[k]) * t[k].first;
    wb += static_cast<double>(n[k]) * t[k].second;
    sum += static_cast<double>(n[k]);
  }
  std::shared_ptr<const ArrayRecord> m = top.global_model();
  EXPECT_NEAR(m->flat()[0], wa / sum, 1e-5);
  EXPECT_NEAR(m->flat()[1], wb / sum, 1e-5);
}

TEST(AggregatorTest, RefusesWhatATierCannotDo) {
  TempDir dir;
  ArrayRecord initial = *testing::QuadraticTrainer(2).init_params(1);
  auto start = [&](auto edit) {
    AggregatorOptions o;
    o.server = server_options(dir.file("tokens", "leaf 0\n"));
    o.upstream = client_options(1, "agg");
    edit(o);
    Aggregator agg(std::move(o), initial.clone());
    Result<int> p = agg.start();
    return p.ok() ? Status() : p.error();
  };
  Status ck = start([&](AggregatorOptions& o) {
    o.server.checkpoint_dir = dir.path();
  });
  EXPECT_EQ(ck.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ck.message().find("keeps no checkpoints"), std::string::npos) << ck.to_string();
  Status frac = start([](AggregatorOptions& o) {
    o.round.fraction = 0;
  });
  EXPECT_NE(frac.message().find("--relay-fraction"), std::string::npos) << frac.to_string();
  Status dp = start([](AggregatorOptions& o) {
    o.server.privacy.secagg.enabled = true;
  });
  EXPECT_NE(dp.message().find("privacy"), std::string::npos) << dp.to_string();
}

}  // namespace
}  // namespace cohort::deploy
