// FedCompass on hand-built timelines (FakeHost, time moved with advance()): Q assignment,
// arrival groups, timers, late arrivals, lost tasks and the aggregate, against values computed
// by hand from the rules in docs/strategies.md (FedCompass: "Scheduling rules", "Arrivals",
// "Aggregation").
#include "cohort/strategy/fedcompass.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "testing/fake_host.h"

namespace cohort {
namespace {

using testing::deliver;
using testing::FakeHost;
using testing::make_update;
using testing::make_vector;
using testing::task_of;
using testing::values;

const double kS1 = 1.0 / std::sqrt(2.0);  // polynomial a = 0.5 at staleness 1

size_t tasks_for(const FakeHost& host, ClientId id) {
  return static_cast<size_t>(
      std::count_if(host.dispatched.begin(), host.dispatched.end(), [id](const Task& t) {
        return t.client == id;
      }));
}

const Json* last_event(const FakeHost& host, const std::string& kind) {
  for (auto it = host.events.rbegin(); it != host.events.rend(); ++it) {
    if ((*it)["event"] == kind) return &*it;
  }
  return nullptr;
}

// Moves the clock to absolute time t.
void at(FakeHost& host, double t) { host.advance(t - host.now()); }

// The shared opening (defaults: Q_min 20, Q_max 100, λ 1.5, α 0.9, poly a 0.5, 1/N) with two
// clients of 0.125 and 0.1875 s/step:
//   t = 12.5    client 0's first task (100 steps) arrives, ends at (2, 4): single update
//               θ1 = θ0 - 0.9 * 1/2 * Δ; group 0 created with T_a = 25, T_max = 31.25;
//               client 0 gets 100 steps in it.
//   t = 18.75   client 1 arrives, ends at (4, 0), τ = 1: θ2 = θ1 - 0.45 s(1) Δ; it joins
//               group 0 with Q = floor((25 - 18.75) / 0.1875) = floor(33.3) = 33.
struct Opening {
  FakeHost host;
  FedCompass s{FedCompassOptions{}};
  std::vector<float> th1, th2;
  Task t0, t1;  // the group-0 tasks

  void run() {
    host.add_client(0, 10);
    host.add_client(1, 10);
    ASSERT_TRUE(s.start(&host, make_vector({0.0f, 0.0f})).ok());
    s.on_client_idle(0);
    s.on_client_idle(1);
    at(host, 12.5);
    ASSERT_TRUE(deliver(host, s, task_of(host, 0), {2.0f, 4.0f}).ok());
    th1 = values(*s.global_model());
    at(host, 18.75);
    ASSERT_TRUE(deliver(host, s, task_of(host, 1), {4.0f, 0.0f}).ok());
    th2 = values(*s.global_model());
    t0 = task_of(host, 0);
    t1 = task_of(host, 1);
  }
};

TEST(FedCompassTest, FirstTasksUseQmaxAndFirstArrivalCreatesTheFirstGroup) {
  FakeHost host;
  for (int i = 0; i < 3; ++i) host.add_client(i, 10);
  FedCompass s({});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f, 0.0f})).ok());
  for (int i = 0; i < 3; ++i) s.on_client_idle(i);
  ASSERT_EQ(host.dispatched.size(), 3u);
  for (const Task& t : host.dispatched) {
    EXPECT_EQ(t.local_steps, 100);
    EXPECT_EQ(t.version, 0);
  }
  EXPECT_TRUE(s.groups().empty());
  EXPECT_TRUE(host.timers.empty());
  // Idle again while training: nothing new.
  s.on_client_idle(0);
  EXPECT_EQ(host.dispatched.size(), 3u);

  at(host, 12.5);
  // Δ = (0, 0) - (3, 6); α s(0) / N = 0.9 / 3 = 0.3 -> θ1 = 0.3 * (3, 6) = (0.9, 1.8).
  ASSERT_TRUE(deliver(host, s, task_of(host, 0), {3.0f, 6.0f}).ok());
  EXPECT_EQ(s.version(), 1);
  EXPECT_EQ(host.commits, (std::vector<ModelVersion>{1}));
  auto w = values(*s.global_model());
  EXPECT_FLOAT_EQ(w[0], 0.9f);
  EXPECT_FLOAT_EQ(w[1], 1.8f);
  const Json* u = last_event(host, "update");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ((*u)["client"], 0);
  EXPECT_EQ((*u)["staleness"], 0);
  EXPECT_DOUBLE_EQ((*u)["alpha"].get<double>(), 0.9 / 3);
  EXPECT_EQ((*u)["version"], 1);

  // Speed 12.5 / 100 s/step; first group: T_a = 12.5 + 100 * 0.125, T_max = 12.5 + 12.5 * 1.5.
  EXPECT_DOUBLE_EQ(*s.seconds_per_step(0), 0.125);
  EXPECT_FALSE(s.seconds_per_step(1).has_value());
  auto g = s.groups();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].id, 0);
  EXPECT_EQ(g[0].expected, (std::vector<ClientId>{0}));
  EXPECT_DOUBLE_EQ(g[0].expected_arrival, 25.0);
  EXPECT_DOUBLE_EQ(g[0].latest_arrival, 31.25);
  ASSERT_EQ(host.timers.size(), 1u);
  EXPECT_DOUBLE_EQ(host.timers.begin()->second, 31.25);
  Task next = task_of(host, 0);
  EXPECT_EQ(next.local_steps, 100);
  EXPECT_EQ(next.version, 1);
  EXPECT_EQ(host.dispatched.size(), 4u);
}

TEST(FedCompassTest, KnownClientJoinsGroupWithStepsToItsExpectedArrival) {
  Opening o;
  o.run();
  // Client 1: 18.75 / 100 = 0.1875 s/step; Q = floor(6.25 / 0.1875) = 33.
  EXPECT_DOUBLE_EQ(*o.s.seconds_per_step(1), 0.1875);
  EXPECT_EQ(o.t1.local_steps, 33);
  EXPECT_EQ(o.t1.version, 2);
  auto g = o.s.groups();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].expected, (std::vector<ClientId>{0, 1}));
  EXPECT_EQ(o.host.timers.size(), 1u);  // joining sets no timer
  // Second single update: staleness 1 -> α = 0.9 * 2^-0.5 / 2.
  EXPECT_EQ(o.s.version(), 2);
  EXPECT_FLOAT_EQ(o.th2[0], static_cast<float>(0.9 + 0.45 * kS1 * 4.0));
  EXPECT_FLOAT_EQ(o.th2[1], 1.8f);
  EXPECT_EQ((*last_event(o.host, "update"))["staleness"], 1);
}

TEST(FedCompassTest, InfeasibleJoinCreatesGroupFromFastestMemberRule) {
  // Clients of 0.125, 0.1875 and 0.22 s/step all start at 0 (first arrivals 12.5, 18.75, 22).
  FakeHost host;
  for (int i = 0; i < 3; ++i) host.add_client(i, 10);
  FedCompass s({});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  for (int i = 0; i < 3; ++i) s.on_client_idle(i);
  at(host, 12.5);
  ASSERT_TRUE(deliver(host, s, task_of(host, 0), {1.0f}).ok());
  at(host, 18.75);
  ASSERT_TRUE(deliver(host, s, task_of(host, 1), {1.0f}).ok());
  at(host, 22.0);
  ASSERT_TRUE(deliver(host, s, task_of(host, 2), {1.0f}).ok());
  // Join: floor((25 - 22) / 0.22) = 13 < Q_min. Create: group 0 is open (22 < 31.25), its
  // fastest member does 0.125 s/step -> T_est = 31.25 + 0.125 * 100 = 43.75,
  // Q = floor((43.75 - 22) / 0.22) = floor(98.9) = 98.
  const double v2 = 22.0 / 100;
  Task t2 = task_of(host, 2);
  EXPECT_EQ(t2.local_steps, 98);
  EXPECT_EQ(t2.version, 3);
  auto g = s.groups();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[1].id, 1);
  EXPECT_EQ(g[1].expected, (std::vector<ClientId>{2}));
  EXPECT_DOUBLE_EQ(g[1].expected_arrival, 22.0 + 98 * v2);
  EXPECT_DOUBLE_EQ(g[1].latest_arrival, 22.0 + 98 * v2 * 1.5);
  ASSERT_EQ(host.timers.size(), 2u);
  EXPECT_DOUBLE_EQ(host.timers.rbegin()->second, 22.0 + 98 * v2 * 1.5);
}

TEST(FedCompassTest, CreateGroupFallsBackToQminAndQmax) {
  FakeHost host;
  for (int i = 0; i < 3; ++i) host.add_client(i, 10);
  FedCompass s({});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(1);  // slow: arrives at 100 -> 1 s/step
  at(host, 80.0);
  s.on_client_idle(0);  // fast: arrives at 90 -> 0.1 s/step
  at(host, 90.0);
  ASSERT_TRUE(deliver(host, s, task_of(host, 0), {1.0f}).ok());
  // First group: T_a = 90 + 10 = 100, T_max = 105.
  ASSERT_EQ(s.groups().size(), 1u);
  EXPECT_DOUBLE_EQ(s.groups()[0].expected_arrival, 100.0);
  at(host, 100.0);
  ASSERT_TRUE(deliver(host, s, task_of(host, 1), {1.0f}).ok());
  // Join: floor(0 / 1) = 0 < Q_min. Create: T_est = 105 + 0.1 * 100 = 115,
  // Q = floor(15 / 1) = 15, in [0, Q_min) -> Q_min = 20.
  EXPECT_EQ(task_of(host, 1).local_steps, 20);
  auto g = s.groups();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_DOUBLE_EQ(g[1].expected_arrival, 120.0);
  EXPECT_DOUBLE_EQ(g[1].latest_arrival, 130.0);

  s.on_client_idle(2);  // very fast: arrives at 101 -> 0.01 s/step
  at(host, 101.0);
  ASSERT_TRUE(deliver(host, s, task_of(host, 2), {1.0f}).ok());
  // Join: group 0's T_a has passed; group 1 gives floor(19 / 0.01) = 1900 > Q_max. Create:
  // group 0 -> floor((115 - 101) / 0.01) = 1400, group 1 -> floor((130 + 100 - 101) / 0.01)
  // = 12900, both > Q_max -> no reference group -> Q_max.
  EXPECT_EQ(task_of(host, 2).local_steps, 100);
  g = s.groups();
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[2].expected, (std::vector<ClientId>{2}));
  EXPECT_DOUBLE_EQ(g[2].expected_arrival, 101.0 + 100 * 0.01);
}

TEST(FedCompassTest, JoinPicksTheFeasibleGroupWithTheLargestQ) {
  FakeHost host;
  for (int i = 0; i < 3; ++i) host.add_client(i, 10);
  FedCompass s({});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(2);  // 1.5 s/step: arrives at 150
  at(host, 50.0);
  s.on_client_idle(0);  // 0.9 s/step: arrives at 140
  at(host, 95.0);
  s.on_client_idle(1);  // 0.5 s/step: arrives at 145
  at(host, 140.0);
  ASSERT_TRUE(deliver(host, s, task_of(host, 0), {1.0f}).ok());
  // Group 0: T_a = 140 + 90 = 230, T_max = 275.
  at(host, 145.0);
  ASSERT_TRUE(deliver(host, s, task_of(host, 1), {1.0f}).ok());
  // Join 0: floor(85 / 0.5) = 170 > Q_max. Create: floor((275 + 90 - 145) / 0.5) > Q_max ->
  // Q_max: group 1 with T_a = 145 + 50 = 195.
  EXPECT_EQ(task_of(host, 1).local_steps, 100);
  ASSERT_EQ(s.groups().size(), 2u);
  EXPECT_DOUBLE_EQ(s.groups()[1].expected_arrival, 195.0);
  at(host, 150.0);
  ASSERT_TRUE(deliver(host, s, task_of(host, 2), {1.0f}).ok());
  // Both feasible: group 0 gives floor(80 / 1.5) = 53, group 1 floor(45 / 1.5) = 30 -> 0.
  EXPECT_EQ(task_of(host, 2).local_steps, 53);
  auto g = s.groups();
  EXPECT_EQ(g[0].expected, (std::vector<ClientId>{0, 2}));
  EXPECT_EQ(g[1].expected, (std::vector<ClientId>{1}));
}

TEST(FedCompassTest, GroupArrivingOnTimeAggregatesOnceAndParksMembers) {
  Opening o;
  o.run();
  FakeHost& host = o.host;
  FedCompass& s = o.s;
  // Client 1 (task of version 2, 33 steps) is back at 24.9375, on time: it waits, no task.
  at(host, 24.9375);
  const size_t before = host.dispatched.size();
  ASSERT_TRUE(deliver(host, s, o.t1, {1.0f, 1.0f}).ok());
  EXPECT_TRUE(s.waiting(1));
  EXPECT_EQ(host.dispatched.size(), before);
  EXPECT_EQ(s.version(), 2);
  s.on_client_idle(1);  // idle while waiting: still nothing
  EXPECT_EQ(host.dispatched.size(), before);
  auto g = s.groups();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].expected, (std::vector<ClientId>{0}));
  EXPECT_EQ(g[0].arrived, (std::vector<ClientId>{1}));

  // Client 0 (task of version 1) at 25: the last member -> one group step, version 3.
  at(host, 25.0);
  ASSERT_TRUE(deliver(host, s, o.t0, {3.0f, 3.0f}).ok());
  EXPECT_EQ(host.commits, (std::vector<ModelVersion>{1, 2, 3}));
  EXPECT_FALSE(s.waiting(1));
  // θ3 = θ2 - 0.9/2 (s(1) Δ0 + s(0) Δ1): client 0 started from θ1 (τ = 2 - 1), client 1 from
  // θ2 (τ = 0).
  const auto& th1 = o.th1;
  const auto& th2 = o.th2;
  auto w = values(*s.global_model());
  for (int k = 0; k < 2; ++k) {
    const double d0 = th1[k] - 3.0;
    const double d1 = th2[k] - 1.0;
    EXPECT_NEAR(w[k], th2[k] - 0.45 * (kS1 * d0 + d1), 1e-5) << k;
  }
  const Json* e = last_event(host, "group");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ((*e)["group"], 0);
  EXPECT_EQ((*e)["size"], 2);
  EXPECT_EQ((*e)["late"], 0);
  EXPECT_DOUBLE_EQ((*e)["mean_staleness"].get<double>(), 0.5);
  EXPECT_EQ((*e)["trigger"], "complete");
  EXPECT_EQ((*e)["version"], 3);

  // Both get version 3, fastest first: client 0 (0.125) finds only the closed group 0 and
  // creates group 1 with Q_max (T_a = 37.5, T_max = 43.75); client 1 joins it with
  // Q = floor(12.5 / 0.1875) = 66.
  ASSERT_EQ(host.dispatched.size(), before + 2);
  EXPECT_EQ(host.dispatched[before].client, 0);
  EXPECT_EQ(host.dispatched[before].local_steps, 100);
  EXPECT_EQ(host.dispatched[before + 1].client, 1);
  EXPECT_EQ(host.dispatched[before + 1].local_steps, 66);
  for (size_t i = before; i < before + 2; ++i) EXPECT_EQ(host.dispatched[i].version, 3);
  g = s.groups();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].id, 1);
  EXPECT_DOUBLE_EQ(g[0].expected_arrival, 37.5);
  EXPECT_DOUBLE_EQ(g[0].latest_arrival, 43.75);
  // Group 0's timer was cancelled; firing it anyway (a stale id) changes nothing.
  ASSERT_EQ(host.timers.size(), 1u);
  EXPECT_DOUBLE_EQ(host.timers.begin()->second, 43.75);
  s.on_timer(0);
  EXPECT_EQ(s.version(), 3);
  EXPECT_EQ(host.dispatched.size(), before + 2);
}

TEST(FedCompassTest, TimerAggregatesPartialGroupAndLateUpdateJoinsNextGroupStep) {
  Opening o;
  o.run();
  FakeHost& host = o.host;
  FedCompass& s = o.s;
  const TimerId timer0 = host.timers.begin()->first;
  // Client 0 on time at 25 (waits); client 1 does not come back by T_max = 31.25.
  at(host, 25.0);
  ASSERT_TRUE(deliver(host, s, o.t0, {3.0f, 3.0f}).ok());
  EXPECT_EQ(s.version(), 2);
  at(host, 31.25);
  s.on_timer(timer0);
  // One step with client 0 only: θ3 = θ2 - 0.45 s(1) Δ0.
  EXPECT_EQ(s.version(), 3);
  auto th3 = values(*s.global_model());
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(th3[k], o.th2[k] - 0.45 * kS1 * (o.th1[k] - 3.0), 1e-5) << k;
  }
  const Json* e = last_event(host, "group");
  EXPECT_EQ((*e)["trigger"], "timer");
  EXPECT_EQ((*e)["size"], 1);
  EXPECT_EQ((*e)["waiting"], 1);
  // Client 0 creates group 1 (Q_max: the closed group 0 is no reference):
  // T_a = 31.25 + 12.5 = 43.75, T_max = 50.
  EXPECT_EQ(task_of(host, 0).version, 3);
  auto g = s.groups();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_TRUE(g[0].closed);
  EXPECT_EQ(g[0].expected, (std::vector<ClientId>{1}));
  EXPECT_DOUBLE_EQ(g[1].expected_arrival, 43.75);
  // The same timer again is stale.
  s.on_timer(timer0);
  EXPECT_EQ(s.version(), 3);

  // Client 1 arrives at 32, late: general buffer, no commit, re-assigned at once.
  at(host, 32.0);
  const size_t before = host.dispatched.size();
  ASSERT_TRUE(deliver(host, s, o.t1, {1.0f, 1.0f}).ok());
  EXPECT_EQ(s.version(), 3);
  EXPECT_EQ(s.general_buffered(), 1);
  EXPECT_FALSE(s.waiting(1));
  ASSERT_NE(last_event(host, "late"), nullptr);
  ASSERT_EQ(host.dispatched.size(), before + 1);
  // Speed EMA: 0.1 * 0.1875 + 0.9 * (13.25 / 33); joins group 1 with floor(11.75 / v1).
  const double v1 = 0.1 * 0.1875 + 0.9 * (13.25 / 33.0);
  EXPECT_NEAR(*s.seconds_per_step(1), v1, 1e-12);
  Task t1 = task_of(host, 1);
  EXPECT_EQ(t1.local_steps, static_cast<int64_t>(std::floor(11.75 / v1)));
  EXPECT_EQ(t1.local_steps, 30);
  EXPECT_EQ(t1.version, 3);
  g = s.groups();
  ASSERT_EQ(g.size(), 1u);  // group 0 had no one left
  EXPECT_EQ(g[0].expected, (std::vector<ClientId>{0, 1}));

  // Both back on time: one step with the two group updates (τ = 0) and the late one
  // (from version 2, τ = 1). APPFL keys its buffers by client and would drop client 1's late
  // update here; every update counts in Cohort (see fedcompass.h).
  Task t0 = task_of(host, 0);
  at(host, 43.4);
  ASSERT_TRUE(deliver(host, s, t1, {0.0f, 0.0f}).ok());
  at(host, 43.75);
  ASSERT_TRUE(deliver(host, s, t0, {-1.0f, -1.0f}).ok());
  EXPECT_EQ(s.version(), 4);
  EXPECT_EQ(s.general_buffered(), 0);
  auto w = values(*s.global_model());
  for (int k = 0; k < 2; ++k) {
    const double d1c = th3[k] - 0.0, d0c = th3[k] + 1.0, d1b = o.th2[k] - 1.0;
    EXPECT_NEAR(w[k], th3[k] - 0.45 * (d1c + d0c) - 0.45 * kS1 * d1b, 1e-5) << k;
  }
  e = last_event(host, "group");
  EXPECT_EQ((*e)["size"], 2);
  EXPECT_EQ((*e)["late"], 1);
  EXPECT_EQ((*e)["updates"], 3);
  EXPECT_NEAR((*e)["mean_staleness"].get<double>(), 1.0 / 3, 1e-12);
}

TEST(FedCompassTest, LateArrivalBeforeAnOverdueTimerClosesTheGroupFirst) {
  // A real clock may deliver an arrival after T_max before the group's timer: the group is
  // aggregated first (as the timer would have), then the arrival takes the late path.
  Opening o;
  o.run();
  FakeHost& host = o.host;
  FedCompass& s = o.s;
  at(host, 25.0);
  ASSERT_TRUE(deliver(host, s, o.t0, {3.0f, 3.0f}).ok());
  at(host, 32.0);  // T_max = 31.25 passed, on_timer not called
  ASSERT_TRUE(deliver(host, s, o.t1, {1.0f, 1.0f}).ok());
  EXPECT_EQ(s.version(), 3);
  const Json* e = last_event(host, "group");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ((*e)["size"], 1);
  EXPECT_EQ((*e)["late"], 0);
  EXPECT_EQ(s.general_buffered(), 1);
  auto w = values(*s.global_model());
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(w[k], o.th2[k] - 0.45 * kS1 * (o.th1[k] - 3.0), 1e-5) << k;
  }
  // Both clients have new tasks (version 3) and only the new group's timer is left.
  EXPECT_EQ(task_of(host, 0).version, 3);
  EXPECT_EQ(task_of(host, 1).version, 3);
  EXPECT_EQ(host.timers.size(), 1u);
  EXPECT_EQ(s.groups().size(), 1u);
}

TEST(FedCompassTest, ExampleWeightingAndConstantStaleness) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 30);
  FedCompass s({.alpha = 0.5, .weighting = "examples", .staleness = {.kind = "constant"}});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f})).ok());
  s.on_client_idle(0);
  s.on_client_idle(1);
  at(host, 10.0);
  // Client 1: Δ = 1 - 9 = -8, p = 30 / 40 -> θ = 1 + 0.5 * 0.75 * 8 = 4.
  ASSERT_TRUE(deliver(host, s, task_of(host, 1), {9.0f}, 30).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], 4.0f);
  at(host, 11.0);
  // Client 0 (from version 0, constant s): Δ = 1 - 5 = -4, p = 1/4 -> θ = 4 + 0.5.
  ASSERT_TRUE(deliver(host, s, task_of(host, 0), {5.0f}, 10).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], 4.5f);
}

TEST(FedCompassTest, NonTrainableArraysTakeClientValuesThenTheGroupMean) {
  auto layout = *ArrayLayout::create({{"w", {1}}, {"bn", {1}, false}});
  ArrayRecord init(layout);
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 10);
  FedCompass s({});
  ASSERT_TRUE(s.start(&host, std::move(init)).ok());
  s.on_client_idle(0);
  s.on_client_idle(1);
  at(host, 12.5);
  ASSERT_TRUE(deliver(host, s, task_of(host, 0), {2.0f, 4.0f}).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[1], 4.0f);  // the client's value
  at(host, 18.75);
  ASSERT_TRUE(deliver(host, s, task_of(host, 1), {2.0f, 6.0f}).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[1], 6.0f);
  Task t0 = task_of(host, 0), t1 = task_of(host, 1);
  at(host, 24.9375);
  ASSERT_TRUE(deliver(host, s, t1, {2.0f, 10.0f}).ok());
  at(host, 25.0);
  ASSERT_TRUE(deliver(host, s, t0, {2.0f, 20.0f}).ok());
  ASSERT_EQ(s.version(), 3);
  EXPECT_FLOAT_EQ(values(*s.global_model())[1], 15.0f);  // mean of 10 and 20
}

TEST(FedCompassTest, LostTasksDoNotStallGroups) {
  Opening o;
  o.run();
  FakeHost& host = o.host;
  FedCompass& s = o.s;
  at(host, 25.0);
  ASSERT_TRUE(deliver(host, s, o.t0, {3.0f, 3.0f}).ok());
  ASSERT_TRUE(s.waiting(0));
  // Client 1's group task is lost: group 0 has no one left to wait for -> aggregated now.
  at(host, 26.0);
  host.set_idle(1, true);
  s.on_task_lost(1, o.t1.version);
  EXPECT_EQ(s.version(), 3);
  EXPECT_EQ((*last_event(host, "group"))["trigger"], "lost");
  EXPECT_EQ(task_of(host, 0).version, 3);
  EXPECT_TRUE(host.timers.size() == 1u);  // group 0's cancelled, group 1's set
  // Client 1 is back: assigned like a fresh arrival with its known speed: it joins client
  // 0's group 1 (T_a = 26 + 12.5) with Q = floor(12.5 / 0.1875) = 66.
  s.on_client_idle(1);
  Task t1 = task_of(host, 1);
  EXPECT_EQ(t1.version, 3);
  EXPECT_EQ(t1.local_steps, 66);
  EXPECT_EQ(s.groups().back().expected, (std::vector<ClientId>{0, 1}));

  // A lost first task (no speed yet) gives another Q_max task outside any group.
  host.add_client(2, 10);
  s.on_client_idle(2);
  s.on_task_lost(2, 3);
  host.set_idle(2, true);
  s.on_client_idle(2);
  EXPECT_EQ(task_of(host, 2).local_steps, 100);
  EXPECT_EQ(tasks_for(host, 2), 2u);

  // A group whose only expected member is lost, with no arrivals, is deleted with its timer.
  Task t0 = task_of(host, 0);
  s.on_task_lost(1, 3);
  s.on_task_lost(0, 3);
  EXPECT_TRUE(s.groups().empty());
  EXPECT_TRUE(host.timers.empty());
  EXPECT_EQ(s.version(), 3);
  // A late report from a lost task is refused.
  Status st = s.on_update(make_update(t0, {0.0f, 0.0f}, 10));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message(), "update from client 0: no task outstanding for it");
}

TEST(FedCompassTest, RejectedUpdateFreesTheClientAndKeepsTheModel) {
  Opening o;
  o.run();
  FakeHost& host = o.host;
  FedCompass& s = o.s;
  at(host, 24.0);
  Status nan = deliver(host, s, o.t1, {NAN, 0.0f});
  EXPECT_EQ(nan.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.version(), 2);
  EXPECT_EQ(values(*s.global_model()), o.th2);
  // Counted as lost: group 0 now waits only for client 0; client 1 was idle, so it got a
  // new assignment at once (joins group 0: floor((25 - 24) / 0.1875) = 5 < Q_min -> creates
  // a group; the speed estimate is unchanged by a rejected update).
  EXPECT_EQ(s.groups()[0].expected, (std::vector<ClientId>{0}));
  EXPECT_DOUBLE_EQ(*s.seconds_per_step(1), 0.1875);
  Task t1 = task_of(host, 1);
  EXPECT_EQ(t1.version, 2);
  EXPECT_EQ(s.groups().size(), 2u);
  // Wrong base version.
  Update u = make_update(t1, {0.0f, 0.0f}, 10);
  u.base_version = 1;
  host.set_idle(1, true);
  Status st = s.on_update(std::move(u));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message(), "update from client 1: base version 1 is not its task's version 2");
}

TEST(FedCompassTest, ParametersValidated) {
  auto msg = [](const ConfigRecord& params) {
    auto r = make_strategy("fedcompass", params);
    return r.ok() ? std::string("ok") : r.error().message();
  };
  EXPECT_EQ(msg({{"min_local_steps", int64_t{50}}, {"max_local_steps", int64_t{20}}}),
            "strategy.min_local_steps: must be <= max_local_steps (20), got 50");
  EXPECT_EQ(msg({{"min_local_steps", int64_t{0}}}),
            "strategy.min_local_steps: must be >= 1, got 0");
  EXPECT_EQ(msg({{"latest_time_factor", 1.0}}), "strategy.latest_time_factor: must be > 1, got 1");
  EXPECT_EQ(msg({{"speed_momentum", 0.0}}), "strategy.speed_momentum: must be in (0, 1], got 0");
  EXPECT_EQ(msg({{"alpha", 1.5}}), "strategy.alpha: must be in (0, 1], got 1.5");
  EXPECT_EQ(msg({{"weighting", std::string("none")}}),
            "strategy.weighting: unknown value 'none' (known: uniform, examples)");
  EXPECT_EQ(msg({{"max_local_steps", 2.5}}),
            "strategy.max_local_steps: expected an integer, got 2.500000");
  EXPECT_EQ(msg({{"local_steps", int64_t{5}}}),
            "strategy.local_steps: unknown parameter for fedcompass (known: alpha, "
            "latest_time_factor, max_local_steps, min_local_steps, speed_momentum, staleness, "
            "staleness_a, staleness_b, weighting)");
  EXPECT_EQ(msg({{"min_local_steps", int64_t{40}},
                 {"max_local_steps", int64_t{200}},
                 {"latest_time_factor", 1.2},
                 {"speed_momentum", 0.5},
                 {"alpha", 1.0},
                 {"weighting", std::string("examples")},
                 {"staleness", std::string("hinge")},
                 {"staleness_a", 10.0},
                 {"staleness_b", int64_t{4}}}),
            "ok");
  auto s = make_strategy("fedcompass", {});
  ASSERT_TRUE(s.ok());
  const auto& o = dynamic_cast<FedCompass&>(**s).options();
  EXPECT_EQ(o.min_local_steps, 20);
  EXPECT_EQ(o.max_local_steps, 100);
  EXPECT_EQ(o.latest_time_factor, 1.5);
  EXPECT_EQ(o.staleness.kind, "polynomial");
  EXPECT_EQ(o.staleness.a, 0.5);
  EXPECT_EQ((*s)->name(), "fedcompass");

  // Options built in code are checked at start().
  FakeHost host;
  host.add_client(0, 1);
  FedCompass bad({.latest_time_factor = 0.5});
  Status st = bad.start(&host, make_vector({0.0f}));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "fedcompass: latest_time_factor: must be > 1, got 0.5");
}

}  // namespace
}  // namespace cohort
