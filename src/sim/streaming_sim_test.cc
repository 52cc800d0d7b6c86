// Streaming DiLoCo in the simulator: only fragments travel (bytes by hand), overlapped steps
// hide communication on the virtual clock (times by hand), 4-bit outer gradients, determinism
// across thread counts, and the settings it does not compose with. Eager updates: the whole
// phase overlaps the round trip (times by hand), and with one worker the eager start is the
// next global model, so it trains as DiLoCo does.
#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/sim/simulator.h"
#include "cohort/strategy/eager_diloco.h"
#include "cohort/strategy/streaming_diloco.h"
#include "testing/fake_trainer.h"

namespace cohort::sim {
namespace {

using ::testing::HasSubstr;
using testing::line_dataset;
using testing::quadratic_factory;

std::vector<SimClient> clients_of(std::shared_ptr<const Dataset> d, int n, DeviceProfile dev) {
  std::vector<SimClient> out;
  const int64_t per = d->size() / n;
  for (int k = 0; k < n; ++k) {
    SimClient c;
    c.shard.data = d;
    for (int64_t i = 0; i < per; ++i) c.shard.indices.push_back(k * per + i);
    c.device = dev;
    out.push_back(std::move(c));
  }
  return out;
}

// n examples of `dim` features (one class), for quadratic trainers wider than line_dataset's 2.
std::shared_ptr<const Dataset> wide_dataset(int64_t n, int64_t dim) {
  auto d = std::make_shared<Dataset>();
  d->name = "wide";
  d->sample_shape = {dim};
  d->num_classes = 1;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < dim; ++j) d->features.push_back(static_cast<float>((i + 3 * j) % 17));
    d->labels.push_back(0);
  }
  return d;
}

SimOptions options(int64_t rounds, size_t threads) {
  SimOptions o;
  o.admission.warmup_bound = "none";  // toy targets far from the initial model
  o.run.rounds = rounds;
  o.run.threads = threads;
  o.run.seed = 7;
  o.training.lr = 0.3;
  return o;
}

StreamingDiLoCoOptions streaming(int64_t h, int64_t p, int64_t overlap, double alpha) {
  StreamingDiLoCoOptions s;
  s.diloco.inner_steps = h;
  s.diloco.inner_optimizer = "run";  // the quadratic trainer's own steps
  s.fragments = p;
  s.fragment_block = 1;
  s.overlap = overlap;
  s.alpha = alpha;
  return s;
}

Result<SimSummary> run(const SimOptions& o, const StreamingDiLoCoOptions& so, int n_clients,
                       DeviceProfile dev, std::vector<float>* final_model = nullptr) {
  auto d = line_dataset(60);
  StreamingDiLoCo s(so);
  Simulator sim(o, quadratic_factory(2), clients_of(d, n_clients, dev), Shard::all(d), nullptr);
  Result<SimSummary> r = sim.run(s);
  if (r.ok() && final_model != nullptr) {
    final_model->assign(sim.final_model()->flat().begin(), sim.final_model()->flat().end());
  }
  return r;
}

TEST(StreamingSimTest, OnlyFragmentsTravel) {
  // Model of 2 floats, P = 2, blocks of 1: each fragment is one float (4 bytes).
  Result<SimSummary> r = run(options(4, 2), streaming(2, 2, 0, 0.0), 2, DeviceProfile{});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->rounds, 4);
  // Up: one fragment per task, 4 rounds x 2 workers x 4 bytes.
  EXPECT_EQ(r->bytes_up, 4 * 2 * 4);
  // Down: the whole model (8 bytes) in round 1, then the merged fragment (4 bytes).
  EXPECT_EQ(r->bytes_down, 2 * 8 + 3 * 2 * 4);
}

TEST(StreamingSimTest, OverlappedStepsHideTheRoundTrip) {
  // 1 step/s; 4 bytes/s both ways: the 8-byte model takes 2 s down, a fragment 1 s each way.
  const DeviceProfile dev{1.0, 4.0, 4.0, 0.0};
  // H = 6, P = 2: tasks of 3 steps. Without overlap: round 1 = 2 + 3 + 1 = 6 s, then
  // 1 + 3 + 1 = 5 s a round.
  Result<SimSummary> plain = run(options(3, 1), streaming(6, 2, 0, 0.5), 1, dev);
  ASSERT_TRUE(plain.ok()) << plain.error().to_string();
  EXPECT_DOUBLE_EQ(plain->virtual_time_s, 6.0 + 5.0 + 5.0);
  // Overlap 2: the worker trained 2 steps while its update went up (1 s) and the merged
  // fragment came down (1 s), so each later round costs its 3 steps only:
  // round 2 merges at max(5 + 2, 6 + 1) = 7, ends training at 8, arrives at 9; round 3 merges
  // at max(8 + 2, 9 + 1) = 10, arrives at 12.
  Result<SimSummary> overlapped = run(options(3, 1), streaming(6, 2, 2, 0.5), 1, dev);
  ASSERT_TRUE(overlapped.ok()) << overlapped.error().to_string();
  EXPECT_DOUBLE_EQ(overlapped->virtual_time_s, 12.0);
  EXPECT_EQ(overlapped->bytes_up, plain->bytes_up);
}

TEST(StreamingSimTest, DeterministicAcrossThreadCountsAndConverges) {
  std::vector<std::string> hashes;
  for (size_t threads : {1, 3}) {
    std::vector<float> w;
    Result<SimSummary> r =
        run(options(40, threads), streaming(4, 2, 1, 0.5), 6, DeviceProfile{1.0, 1e6, 1e6, 0.0}, &w);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->rounds, 40);
    hashes.push_back(r->model_hash);
    // The clients' targets average (29.5, 59); the start is near 0.
    EXPECT_LT(std::hypot(w[0] - 29.5, w[1] - 59.0), 0.1 * std::hypot(29.5, 59.0));
  }
  EXPECT_EQ(hashes[0], hashes[1]);
}

TEST(StreamingSimTest, FourBitBothWaysShrinksTheFragmentPayloads) {
  SimOptions o = options(4, 2);
  o.compression.uplink = "int4";
  auto d = wide_dataset(40, 1000);
  StreamingDiLoCoOptions so = streaming(2, 2, 0, 0.0);
  so.fragment_block = 64;
  so.merge_codec = "int4";  // the fragment's change goes down in 4 bits too
  StreamingDiLoCo s(so);
  // 1000 parameters: each fragment holds 500 floats (2000 bytes raw).
  Simulator sim(o, quadratic_factory(1000), clients_of(d, 2, DeviceProfile{}), Shard::all(d),
                nullptr);
  Result<SimSummary> r = sim.run(s);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_GT(r->bytes_up, 0);
  EXPECT_LT(r->bytes_up, 8 * 2000 / 5);  // int4 with its block scales: under a fifth
  // Down: the whole model (4000 bytes) to each worker once, then 4-bit fragment changes.
  EXPECT_GT(r->bytes_down, 2 * 4000);
  EXPECT_LT(r->bytes_down, 2 * 4000 + 3 * 2 * 2000 / 5);
}

TEST(StreamingSimTest, SettingsItDoesNotComposeWithFailClearly) {
  SimOptions o = options(2, 1);
  o.privacy.secagg.enabled = true;
  Result<SimSummary> r = run(o, streaming(2, 2, 0, 0.0), 3, DeviceProfile{});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("secure aggregation"));
  o = options(2, 1);
  o.compression.downlink = "fp16";
  r = run(o, streaming(2, 2, 0, 0.0), 2, DeviceProfile{});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("compression.downlink"));
}

TEST(EagerSimTest, TheWholePhaseOverlapsTheRoundTrip) {
  // 1 step/s; 4 bytes/s both ways: the 8-byte model takes 2 s down and its delta 2 s up.
  const DeviceProfile dev{1.0, 4.0, 4.0, 0.0};
  auto d = line_dataset(60);
  DiLoCoOptions o;
  o.inner_steps = 3;
  o.inner_optimizer = "run";
  std::vector<std::vector<float>> finals;
  std::vector<double> times;
  for (bool eager : {false, true}) {
    std::unique_ptr<Strategy> s(eager ? static_cast<Strategy*>(new EagerDiLoCo(o))
                                      : static_cast<Strategy*>(new DiLoCo(o)));
    Simulator sim(options(3, 2), quadratic_factory(2), clients_of(d, 1, dev), Shard::all(d),
                  nullptr);
    Result<SimSummary> r = sim.run(*s);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    times.push_back(r->virtual_time_s);
    finals.emplace_back(sim.final_model()->flat().begin(), sim.final_model()->flat().end());
  }
  // DiLoCo: 2 + 3 + 2 = 7 s a round. Eager: round 1 takes 7 s (training ends at 5); round 2's
  // phase starts at 5 and the round trip of its start ends at 7 + 2: training ends at
  // max(5 + 3, 9) = 9, arrival 11; round 3: max(9 + 3, 11 + 2) = 13, arrival 15.
  EXPECT_DOUBLE_EQ(times[0], 21.0);
  EXPECT_DOUBLE_EQ(times[1], 15.0);
  // One worker: its eager estimate is exactly its own average, so the models agree (up to the
  // rounding of the two ways of writing the outer step).
  for (size_t i = 0; i < finals[0].size(); ++i) {
    EXPECT_NEAR(finals[1][i], finals[0][i], 1e-4 * std::max(1.0f, std::fabs(finals[0][i])));
  }
}

}  // namespace
}  // namespace cohort::sim
