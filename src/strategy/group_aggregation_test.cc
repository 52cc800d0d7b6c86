// GroupAggregation in the strategies' update path: robust rules replace the weighted sum of a
// round or a FedBuff buffer, trust follows the rule's influence, strategies that apply updates
// one by one refuse it, and the kept group survives a checkpoint.
#include "cohort/strategy/group_aggregation.h"

#include <gtest/gtest.h>

#include "cohort/strategy/fedasync.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "testing/fake_host.h"

namespace cohort {
namespace {

using testing::FakeHost;
using testing::make_update;
using testing::make_vector;
using testing::values;

std::shared_ptr<GroupAggregation> group(const std::string& rule, int64_t f = 0,
                                        double momentum = 0.0) {
  RobustOptions o;
  o.rule.rule = rule;
  o.rule.f = f;
  o.client_momentum = momentum;
  Result<std::unique_ptr<GroupAggregation>> g = GroupAggregation::create(o, nullptr, 7);
  EXPECT_TRUE(g.ok()) << g.error().to_string();
  return std::shared_ptr<GroupAggregation>(std::move(*g));
}

// One FedAvg round of `ends` (client k ends at ends[k], 10 examples each) from model 0.
std::vector<float> fedavg_round(const std::shared_ptr<GroupAggregation>& g,
                                const std::vector<std::vector<float>>& ends, FakeHost* host) {
  for (size_t k = 0; k < ends.size(); ++k) host->add_client(static_cast<ClientId>(k), 10);
  FedAvg s;
  EXPECT_TRUE(s.start(host, make_vector(std::vector<float>(ends[0].size(), 0.0f))).ok());
  if (g) EXPECT_TRUE(s.set_group_aggregation(g, ends.size()).ok());
  s.on_client_idle(0);
  auto tasks = host->take_tasks();
  EXPECT_EQ(tasks.size(), ends.size());
  for (size_t k = 0; k < tasks.size(); ++k) {
    EXPECT_TRUE(s.on_update(make_update(tasks[k], ends[tasks[k].client], 10)).ok());
  }
  EXPECT_EQ(s.version(), 1);
  return values(*s.global_model());
}

TEST(GroupAggregationTest, MeanRuleEqualsThePlainWeightedSum) {
  const std::vector<std::vector<float>> ends = {{1, 2}, {3, -4}, {0.5f, 8}};
  FakeHost plain_host, mean_host;
  const auto plain = fedavg_round(nullptr, ends, &plain_host);
  // With rule mean and no observer nothing is kept: the same fold, bit for bit.
  auto g = group("mean");
  EXPECT_FALSE(g->keeps());
  EXPECT_EQ(fedavg_round(g, ends, &mean_host), plain);
  EXPECT_NEAR(plain[0], 1.5f, 1e-6);
  EXPECT_NEAR(plain[1], 2.0f, 1e-6);
}

TEST(GroupAggregationTest, MedianResistsOneHugeUpdate) {
  // Deltas (start - end) are -end: the median of {1, 2, 1000} per coordinate is 2 -> model -2.
  FakeHost host;
  const auto w = fedavg_round(group("median"), {{-1, 5}, {-2, 6}, {-1000, 7}}, &host);
  EXPECT_FLOAT_EQ(w[0], -2.0f);
  EXPECT_FLOAT_EQ(w[1], 6.0f);
  // The "robust" event carries per-client influence and trust.
  const Json* ev = nullptr;
  for (const Json& e : host.events) {
    if (e.value("event", "") == "robust") ev = &e;
  }
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ((*ev)["updates"], 3);
  EXPECT_EQ((*ev)["version"], 1);
  EXPECT_LT((*ev)["influence"]["2"].get<double>(), 0.01);  // far from the median
  EXPECT_DOUBLE_EQ((*ev)["influence"]["1"].get<double>(), 1.0);
}

TEST(GroupAggregationTest, KrumDropsTheOutlierAndItsTrustFalls) {
  // f = 1 needs n > 4: five clients, one far away.
  auto g = group("krum", 1);
  FakeHost host;
  const auto w = fedavg_round(g, {{1, 1}, {1.1f, 1}, {0.9f, 1}, {1, 1.1f}, {-50, 60}}, &host);
  EXPECT_GT(w[0], 0.8f);  // one of the honest ends
  EXPECT_LT(w[0], 1.2f);
  const auto& trust = g->trust();
  ASSERT_EQ(trust.size(), 5u);
  EXPECT_DOUBLE_EQ(trust.at(4), 0.75);  // 1 - 0.25 * (1 - 0)
  // Krum selects one: the others lose trust too, but the outlier never gains.
  for (const auto& [c, t] : trust) EXPECT_GE(t, trust.at(4));
}

TEST(GroupAggregationTest, TrustThresholdExcludesClientsFromRounds) {
  RobustOptions o;
  o.rule.rule = "median";
  o.trust_rate = 1.0;  // trust = the last influence
  o.trust_threshold = 0.5;
  auto g = std::shared_ptr<GroupAggregation>(*GroupAggregation::create(o, nullptr, 1));
  FakeHost host;
  for (int k = 0; k < 3; ++k) host.add_client(k, 10);
  FedAvg s;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  ASSERT_TRUE(s.set_group_aggregation(g, 3).ok());
  s.on_client_idle(0);
  auto tasks = host.take_tasks();
  const std::vector<float> ends[3] = {{-1}, {-2}, {-1000}};
  for (const Task& t : tasks) ASSERT_TRUE(testing::deliver(host, s, t, ends[t.client]).ok());
  EXPECT_TRUE(g->excluded(2));
  EXPECT_FALSE(g->excluded(0));
  // The next round samples clients 0 and 1 only.
  tasks = host.take_tasks();
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].client, 0);
  EXPECT_EQ(tasks[1].client, 1);
}

TEST(GroupAggregationTest, RulesRefusedWhereTheyCannotWork) {
  FakeHost host;
  for (int k = 0; k < 4; ++k) host.add_client(k, 10);
  // Krum with f = 1 needs more than 4 updates per round.
  FedAvg s;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  Status st = s.set_group_aggregation(group("krum", 1), 4);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("fedavg aggregates groups of 4 updates"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("2f + 2"), std::string::npos) << st.message();
  // FedAsync applies each update on its own.
  FedAsync a({});
  ASSERT_TRUE(a.start(&host, make_vector({0.0f})).ok());
  st = a.set_group_aggregation(group("median"), 4);
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("fedasync applies each update on its own"), std::string::npos)
      << st.message();
}

TEST(GroupAggregationTest, FedBuffBufferGoesThroughTheRule) {
  FakeHost host;
  for (int k = 0; k < 3; ++k) host.add_client(k, 10);
  FedBuffOptions o;
  o.buffer_size = 3;
  FedBuff s(o);
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  ASSERT_TRUE(s.set_group_aggregation(group("median"), 3).ok());
  for (int k = 0; k < 3; ++k) s.on_client_idle(k);
  auto tasks = host.take_tasks();
  ASSERT_EQ(tasks.size(), 3u);
  const std::vector<float> ends[3] = {{-1}, {-3}, {-900}};
  for (const Task& t : tasks) ASSERT_TRUE(s.on_update(make_update(t, ends[t.client], 10)).ok());
  ASSERT_EQ(s.version(), 1);
  // Equal weights, no staleness: mean reduce of 3 * median / 3 = the median delta 3.
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], -3.0f);
}

TEST(GroupAggregationTest, ClientMomentumFeedsTheRule) {
  // beta = 0.5: the rule sees m = 0.5 * delta after one task (m starts at 0).
  FakeHost host;
  const auto w = fedavg_round(group("median", 0, 0.5), {{-2}, {-4}, {-6}}, &host);
  EXPECT_FLOAT_EQ(w[0], -2.0f);  // minus the median of the momenta {1, 2, 3}
}

TEST(GroupAggregationTest, CheckpointKeepsTheOpenGroup) {
  FakeHost host;
  for (int k = 0; k < 3; ++k) host.add_client(k, 10);
  auto g1 = group("median");
  FedAvg s;
  ASSERT_TRUE(s.start(&host, make_vector({0.0f, 0.0f})).ok());
  ASSERT_TRUE(s.set_group_aggregation(g1, 3).ok());
  s.on_client_idle(0);
  auto tasks = host.take_tasks();
  ASSERT_TRUE(s.on_update(make_update(tasks[0], {-1, -1}, 10)).ok());
  ASSERT_TRUE(s.on_update(make_update(tasks[1], {-2, -2}, 10)).ok());
  StrategyState state;
  ASSERT_TRUE(s.save_state(&state).ok());

  FakeHost host2;
  for (int k = 0; k < 3; ++k) host2.add_client(k, 10);
  FedAvg r;
  ASSERT_TRUE(r.start(&host2, make_vector({0.0f, 0.0f})).ok());
  ASSERT_TRUE(r.set_group_aggregation(group("median"), 3).ok());
  Status st = r.restore_state(std::move(state));
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_TRUE(r.on_update(make_update(tasks[2], {-1000, -1000}, 10)).ok());
  ASSERT_EQ(r.version(), 1);
  EXPECT_FLOAT_EQ(values(*r.global_model())[0], -2.0f);
}

TEST(GroupAggregationTest, OptionsAreValidated) {
  RobustOptions o;
  o.client_momentum = 1.0;
  auto g = GroupAggregation::create(o, nullptr, 1);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().message(), "robust.client_momentum: must be in [0, 1), got 1");
  o = RobustOptions{};
  o.rule.rule = "nope";
  g = GroupAggregation::create(o, nullptr, 1);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message().find("robust.rule: unknown 'nope'"), std::string::npos)
      << g.error().message();
}

}  // namespace
}  // namespace cohort
