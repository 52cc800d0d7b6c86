// The simulator with codec chains: sizes charged are the payloads', transfer times follow
// them, error feedback persists per client across its tasks, lossless chains change nothing,
// and runs stay deterministic for any thread count.
#include <gtest/gtest.h>

#include <cmath>

#include "cohort/codec/codec.h"
#include "cohort/sim/simulator.h"
#include "cohort/strategy/fedavg.h"
#include "testing/fake_trainer.h"

namespace cohort::sim {
namespace {

using testing::quadratic_factory;

// n examples of `dim` features each (feature j of example i: a fixed pseudo-random value).
std::shared_ptr<const Dataset> wide_dataset(int64_t n, int64_t dim) {
  auto d = std::make_shared<Dataset>();
  d->name = "wide";
  d->sample_shape = {dim};
  d->num_classes = 1;
  Rng rng(17);
  for (int64_t i = 0; i < n * dim; ++i) d->features.push_back(static_cast<float>(rng.normal(0, 1)));
  for (int64_t i = 0; i < n; ++i) d->labels.push_back(0);
  return d;
}

std::vector<SimClient> clients_of(std::shared_ptr<const Dataset> d, int64_t count,
                                  int64_t per_client, double mbps = 8.0) {
  std::vector<SimClient> out;
  for (int64_t k = 0; k < count; ++k) {
    SimClient c;
    c.shard.data = d;
    for (int64_t i = 0; i < per_client; ++i) c.shard.indices.push_back(k * per_client + i);
    c.device = DeviceProfile{1.0 + static_cast<double>(k % 3), mbps * 125000.0, mbps * 125000.0,
                             0.01};
    out.push_back(std::move(c));
  }
  return out;
}

SimOptions options(int64_t rounds, const std::string& up, const std::string& down = "none",
                   size_t threads = 2) {
  SimOptions o;
  o.admission.warmup_bound = "none";
  o.run.rounds = rounds;
  o.run.threads = threads;
  o.run.seed = 5;
  o.training.lr = 1.0;
  o.training.local_steps = 1;
  o.compression.uplink = up;
  o.compression.downlink = down;
  return o;
}

int64_t payload_size(const std::string& chain, int64_t dim) {
  auto c = *codec::Chain::parse(chain);
  std::vector<float> zeros(static_cast<size_t>(dim));
  const std::vector<int64_t> offsets = {0, dim};
  return static_cast<int64_t>(c->encode(zeros, offsets, 1)->size());
}

TEST(CompressionSimTest, BytesAndTransferTimesAreThePayloads) {
  const int64_t dim = 3000;
  auto d = wide_dataset(2, dim);
  auto clients = clients_of(d, 1, 2, /*mbps=*/1.0);
  Simulator sim(options(1, "int8", "fp16"), quadratic_factory(dim), clients, Shard::all(d),
                nullptr);
  FedAvg fedavg;
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const int64_t up = payload_size("int8", dim), down = payload_size("fp16", dim);
  EXPECT_LT(up, dim + dim / 50 + 200);  // 1 byte per value + a scale per 256 + headers
  EXPECT_EQ(r->bytes_up, up);
  EXPECT_EQ(r->bytes_down, down);
  // speed 1 step/s, 1 local step, 1 Mbit/s both ways, 10 ms latency.
  const double expected = 2 * 0.01 + static_cast<double>(down) / 125000.0 + 1.0 +
                          static_cast<double>(up) / 125000.0;
  EXPECT_NEAR(r->virtual_time_s, expected, 1e-9);
}

TEST(CompressionSimTest, LosslessUplinkLeavesTrainingUnchanged) {
  auto d = wide_dataset(4, 64);
  auto clients = clients_of(d, 1, 4);
  std::string hashes[2];
  int64_t bytes[2];
  for (int i = 0; i < 2; ++i) {
    SimOptions o = options(4, i == 0 ? "none" : "zstd");
    o.training.lr = 0.3;
    Simulator sim(o, quadratic_factory(64, 0.01), clients, Shard::all(d), nullptr);
    FedAvg fedavg;
    auto r = sim.run(fedavg);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    hashes[i] = r->model_hash;
    bytes[i] = r->bytes_up;
  }
  EXPECT_EQ(hashes[0], hashes[1]);
  EXPECT_EQ(bytes[0], 4 * 64 * 4);
  EXPECT_NE(bytes[1], bytes[0]);  // the zstd payload's own size (frame header included)
}

// One client holding example 3 of line_dataset (target (3, 6)), fast links, no latency; lr 1
// and one step make its delta start - (3, 6). FedAvg with `o`: summary, final and initial model.
struct LineRun {
  Result<SimSummary> summary;
  std::shared_ptr<const ArrayRecord> final_model;
  float init[2];
};
LineRun run_line_client(const SimOptions& o) {
  auto d = testing::line_dataset(4);
  std::vector<SimClient> clients(1);
  clients[0].shard.data = d;
  clients[0].shard.indices = {3};
  clients[0].device = DeviceProfile{1.0, 1e6, 1e6, 0.0};
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  FedAvg fedavg;
  LineRun out{sim.run(fedavg), sim.final_model(), {}};
  testing::QuadraticTrainer init(2);
  ArrayRecord w = *init.init_params(Rng::mix_seed(5, "init"));
  out.init[0] = w.flat()[0];
  out.init[1] = w.flat()[1];
  return out;
}

// One client, lr 1, one step: each task's delta is w - t. Top-1 of two coordinates, with and
// without error feedback, against the same steps written out by hand.
TEST(CompressionSimTest, ErrorFeedbackResidualPersistsAcrossTheClientsTasks) {
  for (bool ef : {true, false}) {
    const int rounds = 5;
    LineRun run = run_line_client(options(rounds, ef ? "topk:1" : "topk:1:noef"));
    ASSERT_TRUE(run.summary.ok()) << run.summary.error().to_string();
    float wv[2] = {run.init[0], run.init[1]};
    const float t[2] = {3.0f, 6.0f};
    float res[2] = {0, 0};
    for (int k = 0; k < rounds; ++k) {
      float a[2];
      for (int i = 0; i < 2; ++i) a[i] = (wv[i] - t[i]) + (ef ? res[i] : 0.0f);
      const int keep = std::fabs(a[1]) > std::fabs(a[0]) ? 1 : 0;
      for (int i = 0; i < 2; ++i) {
        const float sent = i == keep ? a[i] : 0.0f;
        res[i] = a[i] - sent;
        wv[i] = wv[i] - sent;
      }
    }
    EXPECT_EQ(run.final_model->flat()[0], wv[0]) << "ef=" << ef;
    EXPECT_EQ(run.final_model->flat()[1], wv[1]) << "ef=" << ef;
  }
}

TEST(CompressionSimTest, DeterministicAcrossThreadCountsWithCompression) {
  auto d = wide_dataset(200, 300);
  auto clients = clients_of(d, 20, 10);
  for (const char* up : {"topk:0.1 -> int4 -> zstd", "randk:0.2 -> int8", "terngrad", "int2"}) {
    std::string hash;
    int64_t bytes_up = -1;
    for (size_t threads : {1, 2, 4}) {
      SimOptions o = options(5, up, "bf16", threads);
      o.training.lr = 0.3;
      o.training.local_steps = 3;
      Simulator sim(o, quadratic_factory(300, 0.01), clients, Shard::all(d), nullptr);
      FedAvg fedavg({.round = {.fraction = 0.3, .min_clients = 2}});
      auto r = sim.run(fedavg);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      if (hash.empty()) {
        hash = r->model_hash;
        bytes_up = r->bytes_up;
      } else {
        EXPECT_EQ(r->model_hash, hash) << up << " threads=" << threads;
        EXPECT_EQ(r->bytes_up, bytes_up) << up << " threads=" << threads;
      }
    }
  }
}

// Delta downlink, one client, lr 1, one step (its delta is start - t): the model it trains
// from is the previous one plus the top-1 coordinate of the change, written out by hand.
TEST(CompressionSimTest, DeltaDownlinkSendsTheChangesSinceTheHeldVersion) {
  const int rounds = 5;
  SimOptions o = options(rounds, "none", "topk:1");
  o.compression.downlink_delta = true;
  LineRun run = run_line_client(o);
  ASSERT_TRUE(run.summary.ok()) << run.summary.error().to_string();
  float m[2] = {run.init[0], run.init[1]};
  float held[2] = {m[0], m[1]};  // the first download is the model whole
  const float t[2] = {3.0f, 6.0f};
  for (int k = 0; k < rounds; ++k) {
    if (k > 0) {
      const float change[2] = {m[0] - held[0], m[1] - held[1]};
      const int keep = std::fabs(change[1]) > std::fabs(change[0]) ? 1 : 0;
      held[keep] = held[keep] + change[keep];
    }
    for (int i = 0; i < 2; ++i) m[i] = m[i] - (held[i] - t[i]);
  }
  EXPECT_EQ(run.final_model->flat()[0], m[0]);
  EXPECT_EQ(run.final_model->flat()[1], m[1]);
  EXPECT_EQ(run.summary->bytes_down, 2 * 4 + (rounds - 1) * payload_size("topk:1", 2));
}

// Every client in every round: the first download is the model whole, then one payload each.
TEST(CompressionSimTest, DeltaDownlinkBytesWithFullParticipation) {
  const int64_t dim = 700;
  auto d = wide_dataset(40, dim);
  auto clients = clients_of(d, 4, 10);
  const int rounds = 3;
  std::string hash;
  for (size_t threads : {1, 3}) {
    SimOptions o = options(rounds, "none", "int8", threads);
    o.training.lr = 0.3;
    o.compression.downlink_delta = true;
    Simulator sim(o, quadratic_factory(dim, 0.01), clients, Shard::all(d), nullptr);
    FedAvg fedavg;
    auto r = sim.run(fedavg);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->bytes_down, 4 * dim * 4 + (rounds - 1) * 4 * payload_size("int8", dim));
    if (hash.empty()) hash = r->model_hash;
    EXPECT_EQ(r->model_hash, hash) << "threads=" << threads;
  }
}

TEST(CompressionSimTest, BadChainsAreRefusedNamingTheKey) {
  auto d = testing::line_dataset(4);
  auto clients = clients_of(d, 1, 2);
  for (auto [up, down, want] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"int9", "none", "compression.uplink: compression chain 'int9': unknown codec"},
           {"none", "topk:0.1", "compression.downlink: 'topk:0.1' sparsifies"}}) {
    Simulator sim(options(1, up, down), quadratic_factory(2), clients, Shard::all(d), nullptr);
    FedAvg fedavg;
    auto r = sim.run(fedavg);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(want), std::string::npos) << r.error().message();
  }
}

}  // namespace
}  // namespace cohort::sim
