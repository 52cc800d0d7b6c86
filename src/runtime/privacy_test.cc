// PrivacyRuntime in a strategy's update path: DP-FedAvg's clipped, noised, fixed-denominator
// mean against a hand computation; the accountant's epsilon after each group; adaptive
// clipping's step; the budget refusing a group without touching the model; client-side
// settings in tasks and on the client; combinations that cannot work refused with a message
// naming them; checkpoint round trip.
#include "cohort/runtime/privacy.h"

#include <cmath>
#include <set>

#include <gtest/gtest.h>

#include "cohort/strategy/fedasync.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "cohort/strategy/state_io.h"
#include "cohort/strategy/task_config.h"
#include "testing/fake_host.h"

namespace cohort::runtime {
namespace {

using testing::FakeHost;
using testing::make_update;
using testing::make_vector;
using testing::values;

PrivacyOptions dp(double z, double clip) {
  PrivacyOptions o;
  o.dp.noise_multiplier = z;
  o.dp.clip_norm = clip;
  return o;
}

struct DpGroup {
  FakeHost host;
  std::unique_ptr<FedAvg> owned;
  FedAvg& strategy() { return *owned; }
  std::unique_ptr<PrivacyRuntime> privacy;
  std::shared_ptr<GroupAggregation> group;

  // `n` clients, all sampled every round (q = 1 unless more clients are registered).
  Status start(PrivacyOptions o, int64_t n, int64_t population = 0) {
    const int64_t pop = std::max(n, population);
    for (int64_t k = 0; k < pop; ++k) host.add_client(k, 10);
    FedAvgOptions fo;
    fo.round.fraction = static_cast<double>(n) / static_cast<double>(pop);
    fo.round.min_clients = n;
    owned = std::make_unique<FedAvg>(fo);
    COHORT_RETURN_IF_ERROR(strategy().start(&host, make_vector({0, 0})));
    privacy = std::make_unique<PrivacyRuntime>(o, host, privacy::derive_seed(5, "test"),
                                               host.num_clients(), 10);
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<GroupAggregation> g,
                            GroupAggregation::create(RobustOptions{}, nullptr, 1, privacy.get()));
    group = std::move(g);
    return strategy().set_group_aggregation(group, host.num_clients());
  }
  // One round where client k ends at ends[k] (delta = -ends[k] from the model 0 ... or the
  // current model).
  void round(const std::vector<std::vector<float>>& ends) {
    for (size_t k = 0; k < host.num_clients(); ++k) host.set_idle(static_cast<ClientId>(k), true);
    strategy().on_client_idle(0);
    auto tasks = host.take_tasks();
    ASSERT_EQ(tasks.size(), ends.size());
    for (const Task& t : tasks) {
      ASSERT_TRUE(strategy().on_update(make_update(t, ends[t.client], 10)).ok());
    }
  }
  std::vector<Json> events(const std::string& kind) const {
    std::vector<Json> out;
    for (const Json& e : host.events) {
      if (e.value("event", "") == kind) out.push_back(e);
    }
    return out;
  }
};

TEST(PrivacyRuntimeTest, ClippedNoisedMeanWithFixedDenominator) {
  DpGroup s;
  ASSERT_TRUE(s.start(dp(0.5, 1.0), 3).ok());
  // From model 0, deltas are -end: norms 5, 0.5 and 10.
  s.round({{-3, -4}, {-0.3f, -0.4f}, {6, 8}});
  ASSERT_EQ(s.strategy().version(), 1);
  // Clipped to 1: (0.6, 0.8), (0.3, 0.4), (-0.6, -0.8); sum (0.3, 0.4); noise z S = 0.5 from
  // the group's stream 0; divided by C = 3; server step w - mean.
  std::vector<float> noise = {0, 0};
  privacy::add_gaussian_noise(noise, 0.5, privacy::derive_seed(5, "test"), 0);
  const auto w = values(*s.strategy().global_model());
  EXPECT_NEAR(w[0], -(0.3 + noise[0]) / 3, 1e-6);
  EXPECT_NEAR(w[1], -(0.4 + noise[1]) / 3, 1e-6);
  EXPECT_NE(noise[0], 0.0f);

  auto ev = s.events("privacy");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["updates"], 3);
  EXPECT_DOUBLE_EQ(ev[0]["sampling_rate"].get<double>(), 1.0);
  EXPECT_NEAR(ev[0]["unclipped_fraction"].get<double>(), 1.0 / 3, 1e-12);
  // One step of the Gaussian mechanism with q = 1.
  auto e = privacy::compute_epsilon(1.0, 0.5, 1, 1e-5, privacy::Conversion::kImproved);
  ASSERT_TRUE(e.ok());
  EXPECT_DOUBLE_EQ(ev[0]["epsilon"].get<double>(), e->epsilon);
  EXPECT_DOUBLE_EQ(s.privacy->epsilon(), e->epsilon);
}

TEST(PrivacyRuntimeTest, EpsilonComposesOverGroupsAtTheSamplingRate) {
  DpGroup s;
  // 2 of 8 clients per round: q = 1/4.
  ASSERT_TRUE(s.start(dp(1.1, 1.0), 2, 8).ok());
  for (int r = 0; r < 4; ++r) {
    std::vector<std::vector<float>> ends(8, std::vector<float>{1, 1});
    for (ClientId k = 0; k < 8; ++k) s.host.set_idle(k, true);
    s.strategy().on_client_idle(0);
    for (const Task& t : s.host.take_tasks()) {
      ASSERT_TRUE(s.strategy().on_update(make_update(t, ends[t.client], 10)).ok());
    }
  }
  ASSERT_EQ(s.strategy().version(), 4);
  auto ev = s.events("privacy");
  ASSERT_EQ(ev.size(), 4u);
  for (size_t i = 0; i < ev.size(); ++i) {
    auto e = privacy::compute_epsilon(0.25, 1.1, static_cast<int64_t>(i + 1), 1e-5,
                                      privacy::Conversion::kImproved);
    ASSERT_TRUE(e.ok());
    EXPECT_NEAR(ev[i]["epsilon"].get<double>(), e->epsilon, 1e-9 * e->epsilon) << i;
    if (i > 0) {
      EXPECT_GT(ev[i]["epsilon"].get<double>(), ev[i - 1]["epsilon"].get<double>());
    }
  }
}

TEST(PrivacyRuntimeTest, BudgetRefusesTheGroupThatWouldExceedIt) {
  DpGroup s;
  PrivacyOptions o = dp(1.0, 1.0);
  // One q = 1 step at z = 1 costs a few epsilon; allow exactly two.
  auto two = privacy::compute_epsilon(1.0, 1.0, 2, 1e-5, privacy::Conversion::kImproved);
  auto three = privacy::compute_epsilon(1.0, 1.0, 3, 1e-5, privacy::Conversion::kImproved);
  ASSERT_TRUE(two.ok() && three.ok());
  o.dp.target_epsilon = (two->epsilon + three->epsilon) / 2;
  ASSERT_TRUE(s.start(o, 2).ok());
  s.round({{1, 1}, {2, 2}});
  EXPECT_FALSE(s.privacy->exhausted());
  s.round({{1, 1}, {2, 2}});
  // The second group leaves too little for a third: the runtime stops here.
  EXPECT_TRUE(s.privacy->exhausted());
  EXPECT_NEAR(s.privacy->epsilon(), two->epsilon, 1e-9);
  const auto before = values(*s.strategy().global_model());
  s.round({{1, 1}, {2, 2}});  // a third round anyway: refused, nothing committed
  EXPECT_EQ(s.strategy().version(), 2);
  EXPECT_EQ(values(*s.strategy().global_model()), before);
  EXPECT_NEAR(s.privacy->epsilon(), two->epsilon, 1e-9);
  EXPECT_NE(s.privacy->exhausted_reason().find("target_epsilon"), std::string::npos);
}

TEST(PrivacyRuntimeTest, AdaptiveClippingMovesTheBoundTowardTheQuantile) {
  DpGroup s;
  PrivacyOptions o = dp(0.5, 1.0);
  o.dp.adaptive_clipping = true;
  o.dp.clipped_count_stddev = 1.0;  // 2 x 1 > z
  ASSERT_TRUE(s.start(o, 4).ok());
  // Every update is far larger than the bound: b = 0 (+ noise), S grows by about e^{0.1}.
  s.round({{10, 10}, {10, -10}, {-10, 10}, {-10, -10}});
  auto ev = s.events("privacy");
  ASSERT_EQ(ev.size(), 1u);
  const double noise = 1.0 * privacy::gaussian(privacy::derive_seed(5, "test"), 0, 0);
  EXPECT_NEAR(ev[0]["next_clip_norm"].get<double>(),
              std::exp(-0.2 * ((0 + noise) / 4 - 0.5)), 1e-12);
  // The updates' share of the noise: z_update = (z^-2 - (2 sigma_b)^-2)^-1/2 > z.
  RunSummary summary;
  s.privacy->fill(summary);
  EXPECT_NEAR(summary.clip_norm, ev[0]["next_clip_norm"].get<double>(), 1e-12);
}

TEST(PrivacyRuntimeTest, ClientSideTasksCarryTheBoundAndClientsClip) {
  DpGroup s;
  PrivacyOptions o = dp(0.5, 2.0);
  o.dp.side = "client";
  ASSERT_TRUE(s.start(o, 2).ok());
  Task t;
  s.privacy->annotate(t);
  auto d = task_dp(t.config);
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_DOUBLE_EQ((*d)->clip_norm, 2.0);
  EXPECT_DOUBLE_EQ((*d)->noise_stddev, 0.0);  // the server adds the noise without secagg

  std::vector<float> delta = {6, 8};
  MetricRecord m;
  ASSERT_TRUE(privatize_update(delta, t.config, privacy::derive_seed(1, "c"), 0, &m).ok());
  EXPECT_NEAR(delta[0], 1.2, 1e-6);
  EXPECT_NEAR(delta[1], 1.6, 1e-6);
  EXPECT_EQ(m.at(kDpUnclippedMetric), 0.0);
  // Distributed noise: added after clipping.
  set_task_dp(t.config, 100.0, 0.25);
  std::vector<float> small = {0.3f, 0.4f};
  std::vector<float> expected_noise = {0, 0};
  privacy::add_gaussian_noise(expected_noise, 0.25, privacy::derive_seed(1, "c"), 9);
  ASSERT_TRUE(privatize_update(small, t.config, privacy::derive_seed(1, "c"), 9, &m).ok());
  EXPECT_FLOAT_EQ(small[0], 0.3f + expected_noise[0]);
  EXPECT_EQ(m.at(kDpUnclippedMetric), 1.0);
  // A task without DP settings leaves the delta alone; a broken one is an error.
  Task plain;
  ASSERT_TRUE(privatize_update(small, plain.config, privacy::derive_seed(1, "c"), 0, &m).ok());
  plain.config[kDpClipNormKey] = std::string("big");
  EXPECT_FALSE(privatize_update(small, plain.config, privacy::derive_seed(1, "c"), 0, &m).ok());
  plain.config[kDpClipNormKey] = -1.0;
  EXPECT_FALSE(privatize_update(small, plain.config, privacy::derive_seed(1, "c"), 0, &m).ok());
}

TEST(PrivacyRuntimeTest, RefusesWhatCannotCompose) {
  FakeHost host;
  host.add_client(0, 10);
  PrivacyRuntime p(dp(1.0, 1.0), host, privacy::derive_seed(1, "x"), 1, 0);
  RobustOptions krum;
  krum.rule.rule = "krum";
  auto g = GroupAggregation::create(krum, nullptr, 1, &p);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message().find("robust.rule"), std::string::npos);
  EXPECT_NE(g.error().message().find("differential privacy"), std::string::npos);
  RobustOptions momentum;
  momentum.client_momentum = 0.5;
  EXPECT_FALSE(GroupAggregation::create(momentum, nullptr, 1, &p).ok());

  // FedAsync applies single updates: no group to privatize.
  FedAsync fa({});
  ASSERT_TRUE(fa.start(&host, make_vector({0})).ok());
  auto ok = GroupAggregation::create(RobustOptions{}, nullptr, 1, &p);
  ASSERT_TRUE(ok.ok());
  Status s = fa.set_group_aggregation(std::shared_ptr<GroupAggregation>(std::move(*ok)), 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("privacy"), std::string::npos);

  // target_epsilon without a noise multiplier needs a known number of commits.
  PrivacyOptions derive;
  derive.dp.target_epsilon = 3.0;
  PrivacyRuntime unknown(derive, host, privacy::derive_seed(1, "x"), 100, 0);
  Status no_plan = unknown.set_group_size(10);
  ASSERT_FALSE(no_plan.ok());
  EXPECT_NE(no_plan.message().find("noise_multiplier"), std::string::npos);
  PrivacyRuntime planned(derive, host, privacy::derive_seed(1, "x"), 100, 50);
  ASSERT_TRUE(planned.set_group_size(10).ok());
  // The derived z spends at most the target over the 50 planned groups at q = 0.1.
  RunSummary summary;
  planned.fill(summary);
  ASSERT_GT(summary.noise_multiplier, 0.0);
  auto e = privacy::compute_epsilon(0.1, summary.noise_multiplier, 50, 1e-5,
                                    privacy::Conversion::kImproved);
  ASSERT_TRUE(e.ok());
  EXPECT_LE(e->epsilon, 3.0);
  EXPECT_GT(e->epsilon, 2.9);
}

// FedBuff under DP: a buffer holds at most one update per client. A member that is idle again
// gets no task until the buffer flushes (then it does), a second update that arrives anyway is
// refused alone, the members survive a checkpoint, and a buffer larger than the population is
// refused up front.
TEST(PrivacyRuntimeTest, FedBuffGroupHoldsOneUpdatePerClient) {
  FakeHost host;
  for (ClientId k = 0; k < 4; ++k) host.add_client(k, 10);
  FedBuffOptions fo;
  fo.buffer_size = 3;
  auto start = [&](FedBuff& fb, PrivacyRuntime& p) -> Status {
    COHORT_RETURN_IF_ERROR(fb.start(&host, make_vector({0, 0})));
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<GroupAggregation> g,
                            GroupAggregation::create(RobustOptions{}, nullptr, 1, &p));
    return fb.set_group_aggregation(std::shared_ptr<GroupAggregation>(std::move(g)),
                                    host.num_clients());
  };
  PrivacyRuntime p(dp(0.5, 10.0), host, privacy::derive_seed(3, "t"), 4, 0);
  FedBuff fb(fo);
  ASSERT_TRUE(start(fb, p).ok());
  for (ClientId k = 0; k < 4; ++k) {
    host.set_idle(k, true);
    fb.on_client_idle(k);
  }
  std::vector<Task> tasks = host.take_tasks();
  ASSERT_EQ(tasks.size(), 4u);
  for (ClientId k = 0; k < 4; ++k) host.set_idle(k, false);
  // Client 0 reports and is idle again: in the open buffer, it gets no new task.
  ASSERT_TRUE(testing::deliver(host, fb, tasks[0], {1, 1}).ok());
  EXPECT_TRUE(host.take_tasks().empty());
  ASSERT_TRUE(testing::deliver(host, fb, tasks[1], {1, 1}).ok());
  EXPECT_TRUE(host.take_tasks().empty());

  // The two members survive a checkpoint: a restored FedBuff gives them no task either.
  StrategyState saved;
  ASSERT_TRUE(fb.save_state(&saved).ok());
  {
    PrivacyRuntime p2(dp(0.5, 10.0), host, privacy::derive_seed(3, "t"), 4, 0);
    FedBuff restored(fo);
    ASSERT_TRUE(start(restored, p2).ok());
    ASSERT_TRUE(restored.restore_state(std::move(saved)).ok());
    restored.on_client_idle(0);
    restored.on_client_idle(1);
    EXPECT_TRUE(host.take_tasks().empty());
    host.dispatched.clear();
  }

  // A second update of a member that reaches the group anyway is refused alone.
  {
    PrivacyRuntime p4(dp(0.5, 10.0), host, privacy::derive_seed(3, "t"), 4, 0);
    auto g = GroupAggregation::create(RobustOptions{}, nullptr, 1, &p4);
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE((*g)->check_group_size(3).ok());
    const ArrayRecord model = make_vector({0, 0});
    std::vector<float> sum(2, 0.0f);
    ASSERT_TRUE((*g)->add(make_update(tasks[0], {1, 1}, 10), 1.0, sum, model).ok());
    Status twice = (*g)->add(make_update(tasks[0], {2, 2}, 10), 1.0, sum, model);
    ASSERT_FALSE(twice.ok());
    EXPECT_NE(twice.message().find("already has an update in this group"), std::string::npos)
        << twice.message();
    EXPECT_TRUE((*g)->add(make_update(tasks[3], {1, 1}, 10), 1.0, sum, model).ok());
    EXPECT_TRUE((*g)->excluded(0) && (*g)->excluded(3) && !(*g)->excluded(1));
    (*g)->clear();
    EXPECT_FALSE((*g)->excluded(0));
  }
  EXPECT_TRUE(host.commits.empty());

  // The third distinct client fills the buffer: it flushes, and the idle members get tasks.
  ASSERT_TRUE(testing::deliver(host, fb, tasks[2], {1, 1}).ok());
  EXPECT_EQ(host.commits.size(), 1u);
  std::set<ClientId> next;
  for (const Task& t : host.take_tasks()) next.insert(t.client);
  EXPECT_TRUE(next.count(0) == 1 && next.count(1) == 1 && next.count(2) == 1)
      << "tasks after the flush went to " << next.size() << " clients";

  // Five updates per buffer from four clients cannot be distinct: refused before the run.
  FedBuffOptions big = fo;
  big.buffer_size = 5;
  FedBuff too_big(big);
  PrivacyRuntime p3(dp(0.5, 10.0), host, privacy::derive_seed(3, "t"), 4, 0);
  Status s = start(too_big, p3);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("groups of 5 updates, but 4 clients"), std::string::npos)
      << s.message();
}

TEST(PrivacyRuntimeTest, StateRoundTripsAndBadStateIsDataLoss) {
  DpGroup s;
  ASSERT_TRUE(s.start(dp(0.8, 1.0), 2, 4).ok());
  // round() expects one end per sampled task: take them from all four clients' ends.
  s.host.set_idle(2, false);
  s.host.set_idle(3, false);
  s.strategy().on_client_idle(0);
  for (const Task& t : s.host.take_tasks()) {
    ASSERT_TRUE(s.strategy().on_update(make_update(t, {1.0f * t.client, 1}, 10)).ok());
  }
  const Json st = s.privacy->state();
  FakeHost other;
  PrivacyRuntime q(dp(0.8, 1.0), other, privacy::derive_seed(1, "x"), 4, 0);
  ASSERT_TRUE(q.restore(st).ok());
  EXPECT_DOUBLE_EQ(q.epsilon(), s.privacy->epsilon());
  Json broken = st;
  broken["rdp"] = Json::array({1.0});
  EXPECT_EQ(q.restore(broken).code(), StatusCode::kDataLoss);
  broken = st;
  broken.erase("clip_norm");
  EXPECT_EQ(q.restore(broken).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace cohort::runtime
