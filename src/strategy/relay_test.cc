#include "cohort/strategy/relay.h"

#include <gtest/gtest.h>

#include "cohort/strategy/fedavg.h"
#include "testing/fake_host.h"

namespace cohort {
namespace {

using testing::FakeHost;
using testing::make_update;
using testing::make_vector;
using testing::values;

RelayJob job_of(std::vector<float> model, int64_t steps = 0, ConfigRecord config = {}) {
  RelayJob j;
  j.model = std::make_shared<const ArrayRecord>(make_vector(model));
  j.local_steps = steps;
  j.config = std::move(config);
  return j;
}

// Captures what a job produced.
struct Sink {
  std::vector<Result<PartialAggregate>> results;
  RelayDone fn() {
    return [this](Result<PartialAggregate> r) {
      results.push_back(std::move(r));
    };
  }
};

Update with_metrics(Update u, double loss, int64_t steps) {
  u.metrics["train_loss"] = loss;
  u.local_steps = steps;
  return u;
}

TEST(RelayTest, DispatchesOnlyWhenAJobArrives) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 300);
  Relay r({});
  ASSERT_TRUE(r.start(&host, make_vector({0.0f, 0.0f})).ok());
  r.on_client_idle(0);
  EXPECT_TRUE(host.dispatched.empty());  // idle clients, but nothing to train
  Sink sink;
  ASSERT_TRUE(r.begin(job_of({1.0f, 2.0f}), sink.fn()).ok());
  auto tasks = host.take_tasks();
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(r.version(), 1);  // the upstream model became version 1
  EXPECT_EQ(host.commits, std::vector<ModelVersion>{1});
  EXPECT_EQ(values(*tasks[0].model), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(tasks[0].version, 1);
}

TEST(RelayTest, PartialAggregateIsTheExampleWeightedMeanAndSum) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 300);
  Relay r({});
  ASSERT_TRUE(r.start(&host, make_vector({0.0f, 0.0f})).ok());
  Sink sink;
  ASSERT_TRUE(r.begin(job_of({1.0f, 2.0f}), sink.fn()).ok());
  auto tasks = host.take_tasks();
  ASSERT_EQ(tasks.size(), 2u);
  // Client 0 ends at (3, 2): delta (-2, 0), loss 1.0, 10 steps; client 1 at (1, 6): delta
  // (0, -4), loss 2.0, 30 steps. Weighted 1:3: delta (-0.5, -3), loss 1.75, steps 25.
  ASSERT_TRUE(r.on_update(with_metrics(make_update(tasks[0], {3.0f, 2.0f}, 100), 1.0, 10)).ok());
  EXPECT_TRUE(sink.results.empty());
  ASSERT_TRUE(r.on_update(with_metrics(make_update(tasks[1], {1.0f, 6.0f}, 300), 2.0, 30)).ok());
  ASSERT_EQ(sink.results.size(), 1u);
  ASSERT_TRUE(sink.results[0].ok());
  const PartialAggregate& p = *sink.results[0];
  EXPECT_EQ(values(p.mean_delta), (std::vector<float>{-0.5f, -3.0f}));
  EXPECT_EQ(p.num_examples, 400);
  EXPECT_EQ(p.updates, 2);
  EXPECT_EQ(p.local_steps, 25);
  EXPECT_DOUBLE_EQ(p.metrics.at("train_loss"), 1.75);
  EXPECT_FALSE(r.busy());
  EXPECT_EQ(r.version(), 1);  // a relay never moves the model itself
  EXPECT_EQ(values(*r.global_model()), (std::vector<float>{1.0f, 2.0f}));
}

// FedAvg above two relays equals FedAvg over the four clients below them.
TEST(RelayTest, TwoLevelFedAvgEqualsFlatFedAvg) {
  const std::vector<float> w0 = {0.5f, -1.0f, 2.0f};
  const std::vector<std::vector<float>> ends = {
      {1.0f, 0.0f, 2.5f}, {0.0f, -2.0f, 1.0f}, {0.25f, 3.0f, 2.0f}, {-1.0f, -1.0f, -1.0f}};
  const std::vector<int64_t> n = {10, 30, 25, 5};

  FakeHost flat_host;
  for (ClientId c = 0; c < 4; ++c) flat_host.add_client(c, n[c]);
  FedAvg flat;
  ASSERT_TRUE(flat.start(&flat_host, make_vector(w0)).ok());
  flat.on_client_idle(0);
  auto ft = flat_host.take_tasks();
  ASSERT_EQ(ft.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    ASSERT_TRUE(flat.on_update(make_update(ft[i], ends[i], n[i])).ok());
  ASSERT_EQ(flat.version(), 1);

  // Two relays, clients {0, 1} and {2, 3}; a FedAvg above them.
  std::vector<PartialAggregate> partials;
  for (int a = 0; a < 2; ++a) {
    FakeHost h;
    h.add_client(0, n[2 * a]);
    h.add_client(1, n[2 * a + 1]);
    Relay r({});
    ASSERT_TRUE(r.start(&h, make_vector({0.0f, 0.0f, 0.0f})).ok());
    Sink sink;
    ASSERT_TRUE(r.begin(job_of(w0), sink.fn()).ok());
    auto t = h.take_tasks();
    ASSERT_EQ(t.size(), 2u);
    for (int k = 0; k < 2; ++k) {
      ASSERT_TRUE(r.on_update(make_update(t[k], ends[2 * a + k], n[2 * a + k])).ok());
    }
    ASSERT_EQ(sink.results.size(), 1u);
    partials.push_back(std::move(*sink.results[0]));
  }
  FakeHost top_host;
  top_host.add_client(0, 1);
  top_host.add_client(1, 1);
  FedAvg top;
  ASSERT_TRUE(top.start(&top_host, make_vector(w0)).ok());
  top.on_client_idle(0);
  auto tt = top_host.take_tasks();
  ASSERT_EQ(tt.size(), 2u);
  for (int a = 0; a < 2; ++a) {
    Update u;
    u.client = tt[a].client;
    u.base_version = tt[a].version;
    u.delta = std::move(partials[a].mean_delta);
    u.num_examples = partials[a].num_examples;
    u.local_steps = 1;
    ASSERT_TRUE(top.on_update(std::move(u)).ok());
  }
  ASSERT_EQ(top.version(), 1);
  const auto a = values(*flat.global_model()), b = values(*top.global_model());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6f) << i;
}

TEST(RelayTest, ForwardsStepsAndConfigOrUsesEachClientsDefault) {
  FakeHost host;
  host.add_client(0, 10, /*steps=*/7);
  host.add_client(1, 10, /*steps=*/9);
  Relay r({});
  ASSERT_TRUE(r.start(&host, make_vector({0.0f})).ok());
  Sink sink;
  ConfigRecord cfg = {{"lr", 0.25}, {"prox_mu", 0.1}};
  ASSERT_TRUE(r.begin(job_of({1.0f}, 50, cfg), sink.fn()).ok());
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 2u);
  for (const Task& x : t) {
    EXPECT_EQ(x.local_steps, 50);
    EXPECT_EQ(x.config, cfg);
  }
  host.set_idle(0, true);
  host.set_idle(1, true);
  for (const Task& x : t) ASSERT_TRUE(r.on_update(make_update(x, {0.0f}, 10)).ok());
  ASSERT_TRUE(r.begin(job_of({2.0f}), sink.fn()).ok());
  t = host.take_tasks();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].local_steps, 7);
  EXPECT_EQ(t[1].local_steps, 9);
  EXPECT_TRUE(t[0].config.empty());
  EXPECT_EQ(r.version(), 2);
}

TEST(RelayTest, WaitsForMinClientsAndRetriesARoundThatGotNothing) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 20);
  host.set_idle(1, false);
  Relay r({.fraction = 1.0, .min_clients = 2});
  ASSERT_TRUE(r.start(&host, make_vector({0.0f})).ok());
  Sink sink;
  ASSERT_TRUE(r.begin(job_of({1.0f}), sink.fn()).ok());
  EXPECT_TRUE(host.dispatched.empty());  // one idle client of the two required
  host.set_idle(1, true);
  r.on_client_idle(1);
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 2u);
  // Both tasks are lost: no partial aggregate, the job stays and is retried.
  host.set_idle(0, true);
  host.set_idle(1, true);
  r.on_task_lost(0, t[0].version);
  r.on_task_lost(1, t[1].version);
  EXPECT_TRUE(sink.results.empty());
  EXPECT_TRUE(r.busy());
  t = host.take_tasks();
  ASSERT_EQ(t.size(), 2u);  // the retry, same version
  EXPECT_EQ(t[0].version, 1);
  ASSERT_TRUE(r.on_update(make_update(t[0], {0.0f}, 10)).ok());
  ASSERT_TRUE(r.on_update(make_update(t[1], {3.0f}, 20)).ok());
  ASSERT_EQ(sink.results.size(), 1u);
  EXPECT_EQ(values(sink.results[0]->mean_delta), (std::vector<float>{-1.0f}));  // (10*1 + 20*-2)/30
  EXPECT_EQ(sink.results[0]->num_examples, 30);
}

TEST(RelayTest, LostClientsLeaveTheOthersContribution) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 20);
  Relay r({});
  ASSERT_TRUE(r.start(&host, make_vector({0.0f})).ok());
  Sink sink;
  ASSERT_TRUE(r.begin(job_of({1.0f}), sink.fn()).ok());
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 2u);
  r.on_task_lost(1, t[1].version);
  ASSERT_TRUE(r.on_update(make_update(t[0], {0.5f}, 10)).ok());
  ASSERT_EQ(sink.results.size(), 1u);
  EXPECT_EQ(values(sink.results[0]->mean_delta), (std::vector<float>{0.5f}));
  EXPECT_EQ(sink.results[0]->num_examples, 10);
  EXPECT_EQ(sink.results[0]->updates, 1);
}

TEST(RelayTest, CancelledJobNeverReportsAndItsRoundFeedsNoOtherJob) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 10);
  Relay r({});
  ASSERT_TRUE(r.start(&host, make_vector({0.0f})).ok());
  Sink first, second;
  ASSERT_TRUE(r.begin(job_of({1.0f}), first.fn()).ok());
  auto t = host.take_tasks();
  ASSERT_EQ(t.size(), 2u);
  r.cancel();
  EXPECT_FALSE(r.busy());
  ASSERT_TRUE(r.begin(job_of({5.0f}), second.fn()).ok());
  EXPECT_EQ(r.version(), 1);  // the old round is still open: the new model waits for it
  host.set_idle(0, true);
  host.set_idle(1, true);
  ASSERT_TRUE(r.on_update(make_update(t[0], {0.0f}, 10)).ok());
  ASSERT_TRUE(r.on_update(make_update(t[1], {0.0f}, 10)).ok());
  EXPECT_TRUE(first.results.empty());
  EXPECT_TRUE(second.results.empty());  // the cancelled job's updates are not the new one's
  EXPECT_EQ(r.version(), 2);            // the round closed; the new job started
  auto t2 = host.take_tasks();
  ASSERT_EQ(t2.size(), 2u);
  EXPECT_EQ(values(*t2[0].model), (std::vector<float>{5.0f}));
  ASSERT_TRUE(r.on_update(make_update(t2[0], {4.0f}, 10)).ok());
  ASSERT_TRUE(r.on_update(make_update(t2[1], {4.0f}, 10)).ok());
  ASSERT_EQ(second.results.size(), 1u);
  EXPECT_EQ(values(second.results[0]->mean_delta), (std::vector<float>{1.0f}));
}

TEST(RelayTest, RefusesASecondJobAndAModelOfAnotherLayout) {
  FakeHost host;
  host.add_client(0, 10);
  Relay r({});
  ASSERT_TRUE(r.start(&host, make_vector({0.0f, 0.0f})).ok());
  Sink sink;
  Status wrong = r.begin(job_of({1.0f}), sink.fn());
  EXPECT_EQ(wrong.code(), StatusCode::kInvalidArgument) << wrong.to_string();
  ASSERT_TRUE(r.begin(job_of({1.0f, 1.0f}), sink.fn()).ok());
  Status again = r.begin(job_of({1.0f, 1.0f}), sink.fn());
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace cohort
