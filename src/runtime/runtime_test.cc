// Runtime core tests: a hand-driven host (no LibTorch, no gRPC) and real strategies.
#include "cohort/runtime/runtime.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/runtime/admission.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "runtime/runtime_test_host.h"
#include "testing/fake_host.h"

namespace cohort::runtime {
namespace {

using ::cohort::testing::make_vector;
using ::testing::HasSubstr;

struct Fixture {
  explicit Fixture(RuntimeOptions o = {}, int clients = 3)
      : strategy(FedAvgOptions{.round = {.fraction = 1.0, .min_clients = 2}}),
        rt(o, strategy, host, &hub) {
    hub.add_sink(sink);
    for (int i = 0; i < clients; ++i) {
      rt.add_client(i, 10 * (i + 1));
      rt.set_available(i, true);
    }
  }
  Update update_for(int64_t task_id, float value, int64_t examples = 10) {
    const TaskRecord* r = rt.task(task_id);
    Update u;
    u.delta = make_vector(std::vector<float>(1, value));
    u.num_examples = examples;
    u.local_steps = 4;
    if (r != nullptr) u.base_version = r->task.version;
    return u;
  }
  std::vector<Json> events(const std::string& kind) const {
    std::vector<Json> out;
    for (const Json& e : sink->events) {
      if (e["event"] == kind) out.push_back(e);
    }
    return out;
  }
  TestHost host;
  MetricsHub hub;
  std::shared_ptr<MemorySink> sink = std::make_shared<MemorySink>();
  FedAvg strategy;
  Runtime rt;
};

TEST(RuntimeTest, StartEmitsAndEvaluatesTheInitialModel) {
  Fixture f;
  ASSERT_TRUE(f.rt.start(make_vector({0.25f}), {{"threads", 2}}).ok());
  auto start = f.events("start");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(start[0]["strategy"], "fedavg");
  EXPECT_EQ(start[0]["clients"], 3);
  EXPECT_EQ(start[0]["params"], 1);
  EXPECT_EQ(start[0]["threads"], 2);
  auto eval = f.events("eval");
  ASSERT_EQ(eval.size(), 1u);
  EXPECT_EQ(eval[0]["round"], 0);
  EXPECT_DOUBLE_EQ(eval[0]["accuracy"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(eval[0]["wall_time_s"].get<double>(), 0.5);
}

TEST(RuntimeTest, DispatchArrivalAndCommitGoThroughTheCore) {
  Fixture f;
  ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
  for (ClientId c : {0, 1, 2}) f.rt.offer(c);  // FedAvg samples all three at once
  ASSERT_EQ(f.host.launched.size(), 3u);
  EXPECT_TRUE(f.rt.idle_clients().empty());
  EXPECT_EQ(f.rt.task_of(1)->id, f.host.launched[1]);
  EXPECT_EQ(f.rt.stats(1).tasks, 1);

  // Client deltas 0.3, -0.3 and 0.6 weighted by 10 / 20 / 30 examples: mean delta 0.25, so
  // the new model is -0.25.
  f.host.t = 2.0;
  ASSERT_TRUE(f.rt.receive(f.host.launched[0], f.update_for(f.host.launched[0], 0.3f, 10), 4).ok());
  ASSERT_TRUE(
      f.rt.receive(f.host.launched[1], f.update_for(f.host.launched[1], -0.3f, 20), 4).ok());
  EXPECT_EQ(f.strategy.version(), 0);
  ASSERT_TRUE(f.rt.receive(f.host.launched[2], f.update_for(f.host.launched[2], 0.6f, 30), 4).ok());
  EXPECT_EQ(f.strategy.version(), 1);
  EXPECT_NEAR(f.strategy.global_model()->flat()[0], -0.25f, 1e-6);
  EXPECT_EQ(f.rt.summary().updates, 3);
  EXPECT_EQ(f.rt.summary().bytes_up, 12);
  EXPECT_DOUBLE_EQ(f.rt.client_info(0).measured_speed, 2.0);  // 4 steps in 2 s
  EXPECT_EQ(f.rt.client_info(0).tasks_done, 1);
  // Every commit is evaluated (eval_every 1); the eval counts the update that committed.
  auto eval = f.events("eval");
  ASSERT_EQ(eval.size(), 2u);
  EXPECT_EQ(eval[1]["round"], 1);
  EXPECT_EQ(eval[1]["updates"], 3);
  EXPECT_EQ(eval[1]["virtual_time_s"], 2.0);
}

TEST(RuntimeTest, RejectionsAreCountedAndTheTaskEnds) {
  Fixture f;
  ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
  for (ClientId c : {0, 1, 2}) f.rt.offer(c);
  const int64_t t0 = f.host.launched[0];
  Update bad = f.update_for(t0, 0.1f);
  bad.num_examples = 0;  // the strategy rejects it
  Status s = f.rt.receive(t0, std::move(bad), 4);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(f.rt.summary().rejected, 1);
  EXPECT_EQ(f.rt.summary().updates, 0);
  EXPECT_EQ(f.rt.stats(0).rejected, 1);
  EXPECT_EQ(f.rt.task_of(0), nullptr);
  ASSERT_EQ(f.events("rejected").size(), 1u);
  EXPECT_THAT(f.events("rejected")[0]["reason"].get<std::string>(), HasSubstr("num_examples"));
  // The same task cannot arrive twice.
  s = f.rt.receive(t0, f.update_for(t0, 0.1f), 4);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("was given up before its update arrived"));
  // Admission failures never reach the strategy but are counted the same way.
  f.rt.count_rejected(2, Status::invalid_argument("update delta: array 'w' element 0 is NaN"));
  EXPECT_EQ(f.rt.summary().rejected, 2);
  EXPECT_EQ(f.rt.stats(2).rejected, 1);
}

TEST(RuntimeTest, LostTasksReachTheStrategyAndAreCountedByReason) {
  Fixture f;
  ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
  for (ClientId c : {0, 1, 2}) f.rt.offer(c);
  f.rt.lose(f.host.launched[0], "dropout");
  f.rt.lose(f.host.launched[1], "offline");
  f.rt.lose(f.host.launched[1], "offline");  // no longer in flight: no-op
  EXPECT_EQ(f.rt.summary().lost, 2);
  EXPECT_EQ(f.rt.summary().lost_dropout, 1);
  EXPECT_EQ(f.rt.summary().lost_offline, 1);
  ASSERT_EQ(f.events("lost").size(), 2u);
  EXPECT_EQ(f.events("lost")[0]["reason"], "dropout");
  // The round closes with the one update left.
  ASSERT_TRUE(f.rt.receive(f.host.launched[2], f.update_for(f.host.launched[2], 1.0f), 4).ok());
  EXPECT_EQ(f.strategy.version(), 1);
  EXPECT_NEAR(f.strategy.global_model()->flat()[0], -1.0f, 1e-6);
  // take_lost + notify_lost: the two halves a gRPC handler and the loop run.
  f.rt.offer(0);
  f.rt.offer(1);
  f.rt.offer(2);
  ASSERT_EQ(f.host.launched.size(), 6u);
  std::optional<ModelVersion> v = f.rt.take_lost(f.host.launched[3], "timeout");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, 1);
  EXPECT_EQ(f.rt.summary().lost, 3);
  f.rt.notify_lost(0, *v);
  EXPECT_EQ(f.rt.stats(0).lost, 2);
}

// Keeps the latest live row of every client and the last totals (a dashboard's view).
class LiveRecorder : public MetricsSink {
 public:
  void on_event(const Json&) override {}
  bool wants_live() const override { return true; }
  void on_live(const LiveTotals& t, std::span<const LiveClient> changed) override {
    totals = t;
    ++calls;
    last_changed = changed.size();
    for (const LiveClient& c : changed) rows[c.id] = c;
  }
  std::map<ClientId, LiveClient> rows;
  LiveTotals totals;
  int calls = 0;
  size_t last_changed = 0;
};

TEST(RuntimeTest, TheLiveViewFollowsEveryClientsState) {
  Fixture f;
  auto live = std::make_shared<LiveRecorder>();
  f.hub.add_sink(live);
  ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
  ASSERT_EQ(live->rows.size(), 3u);  // every client once the run starts
  for (const auto& [id, r] : live->rows) EXPECT_EQ(r.state, LiveClientState::kIdle) << id;
  EXPECT_EQ(live->rows[2].examples, 30);

  f.host.t = 1.0;
  for (ClientId c : {0, 1, 2}) f.rt.offer(c);
  f.rt.after_event();
  EXPECT_EQ(live->last_changed, 3u);
  for (const auto& [id, r] : live->rows) EXPECT_EQ(r.state, LiveClientState::kTraining) << id;
  EXPECT_EQ(live->totals.in_flight, 3);
  EXPECT_EQ(live->rows[1].tasks, 1);

  // Client 0 returns 4 local steps after 2 s: accepted, 2 steps/s; only its row is sent.
  f.host.t = 3.0;
  const int64_t t0 = f.host.launched[0];
  ASSERT_TRUE(f.rt.receive(t0, f.update_for(t0, 0.3f), 100).ok());
  f.rt.after_event();
  EXPECT_EQ(live->last_changed, 1u);
  EXPECT_EQ(live->rows[0].state, LiveClientState::kIdle);
  EXPECT_EQ(live->rows[0].accepted, 1);
  EXPECT_DOUBLE_EQ(live->rows[0].speed, 2.0);
  EXPECT_DOUBLE_EQ(live->rows[0].changed_at, 3.0);
  EXPECT_EQ(live->totals.updates, 1);
  EXPECT_EQ(live->totals.bytes_up, 100);
  EXPECT_EQ(live->totals.in_flight, 2);

  // Client 1's task is lost, client 2's upload fails admission; both went away, so no new
  // round starts. Lost / rejected show until their next task, even when offline.
  f.rt.set_available(1, false);
  f.rt.set_available(2, false);
  f.rt.lose(f.host.launched[1], "dropout");
  f.rt.reject(f.host.launched[2], Status::invalid_argument("update delta: element 0 is NaN"));
  f.rt.after_event();
  EXPECT_EQ(live->rows[1].state, LiveClientState::kLost);
  EXPECT_EQ(live->rows[1].lost, 1);
  EXPECT_EQ(live->rows[2].state, LiveClientState::kRejected);
  EXPECT_EQ(live->rows[2].rejected, 1);
  EXPECT_EQ(live->totals.lost, 2);
  EXPECT_EQ(live->totals.rejected, 1);
  EXPECT_EQ(live->totals.in_flight, 0);

  // Nothing changed: nothing is published.
  const int calls = live->calls;
  f.rt.after_event();
  EXPECT_EQ(live->calls, calls);
  f.rt.set_available(0, false);
  f.rt.after_event();
  EXPECT_EQ(live->rows[0].state, LiveClientState::kOffline);
  EXPECT_EQ(live->calls, calls + 1);
}

TEST(RuntimeTest, BudgetStopsAndFinishWritesTheSummary) {
  Fixture f(options_with([](RuntimeOptions& o) {
    o.max_commits = 1;
    o.eval_every = 5;
  }));
  ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
  for (ClientId c : {0, 1, 2}) f.rt.offer(c);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(f.rt.receive(f.host.launched[i], f.update_for(f.host.launched[i], -0.5f), 4).ok());
  }
  EXPECT_TRUE(f.rt.stopping());
  EXPECT_EQ(f.host.stops, std::vector<std::string>{"rounds"});
  // Stopping: no new tasks, no more strategy calls.
  f.rt.offer(0);
  EXPECT_EQ(f.host.launched.size(), 3u);
  EXPECT_EQ(f.rt.receive(12345, Update(), 0).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(f.host.evaluations, 1);  // version 1 not evaluated yet (eval_every 5)
  Result<RunSummary> s = f.rt.finish();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(f.host.evaluations, 2);  // the final model
  EXPECT_EQ(s->rounds, 1);
  EXPECT_EQ(s->updates, 3);
  EXPECT_EQ(s->stop_reason, "rounds");
  EXPECT_DOUBLE_EQ(s->final_accuracy, 0.5);
  EXPECT_EQ(s->model_hash, f.strategy.global_model()->hash_hex());
  ASSERT_EQ(s->client_stats.size(), 3u);
  EXPECT_EQ(s->client_stats[2].updates_accepted, 1);
  ASSERT_EQ(f.events("summary").size(), 1u);
  EXPECT_EQ(f.events("summary")[0]["stop_reason"], "rounds");
  ASSERT_EQ(f.events("clients").size(), 1u);
}

TEST(RuntimeTest, TimeBudgetAndTargetAccuracy) {
  Fixture f(options_with([](RuntimeOptions& o) {
    o.max_time_s = 10;
    o.target_accuracy = 0.4;
  }));
  EXPECT_FALSE(f.rt.over_time(9.99));
  EXPECT_TRUE(f.rt.over_time(10));
  ASSERT_TRUE(f.rt.start(make_vector({0.1f}), {}).ok());
  EXPECT_FALSE(f.rt.summary().time_to_target.has_value());
  for (ClientId c : {0, 1, 2}) f.rt.offer(c);
  f.host.t = 3.5;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(f.rt.receive(f.host.launched[i], f.update_for(f.host.launched[i], -0.4f), 4).ok());
  }
  ASSERT_TRUE(f.rt.summary().time_to_target.has_value());
  EXPECT_DOUBLE_EQ(*f.rt.summary().time_to_target, 3.5);
  EXPECT_NEAR(f.rt.summary().best_accuracy, 0.5, 1e-6);
}

TEST(RuntimeTest, BadDispatchFailsStrictRunsAndIsLostInLenientOnes) {
  for (bool strict : {true, false}) {
    Fixture f(options_with([&](RuntimeOptions& o) { o.strict_dispatch = strict; }));
    ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
    Task t;
    t.client = 7;  // unknown
    t.model = f.strategy.global_model();
    f.rt.dispatch(t);
    if (strict) {
      ASSERT_TRUE(f.rt.failure().has_value());
      EXPECT_EQ(f.rt.failure()->code(), StatusCode::kInternal);
      EXPECT_THAT(f.rt.failure()->message(), HasSubstr("client 7, which is not idle"));
      EXPECT_FALSE(f.rt.finish().ok());
    } else {
      EXPECT_FALSE(f.rt.failure().has_value());
      EXPECT_TRUE(f.events("lost").empty());  // reported on the next turn
      f.rt.after_event();
      ASSERT_EQ(f.events("lost").size(), 1u);
      EXPECT_EQ(f.events("lost")[0]["reason"], "not_idle");
      EXPECT_EQ(f.rt.summary().lost, 1);
      ASSERT_EQ(f.host.logs.size(), 1u);
    }
  }
}

// On a host whose clients are always reachable the runtime answers idle_view() from an index
// (O(log clients) per client): it lists the same clients as the scan, in the same order, as
// clients register out of order, come and go, get tasks and return them.
TEST(RuntimeTest, IdleIndexListsTheSameClientsAsTheScan) {
  Fixture f;
  f.host.always = true;
  auto expect_same = [&](const char* when) {
    const IdleClients view = f.rt.idle_view();
    EXPECT_EQ(view.to_vector(), f.rt.idle_clients()) << when;
    EXPECT_EQ(view.size(), static_cast<int64_t>(f.rt.idle_clients().size())) << when;
    const std::vector<ClientId> idle = f.rt.idle_clients();
    // The batch lookup (a sample: positions in any order, repeats allowed) agrees.
    std::vector<uint64_t> pos;
    for (size_t i = idle.size(); i-- > 0;) pos.push_back(i);
    if (!idle.empty()) pos.push_back(0);
    std::vector<ClientId> expected;
    for (uint64_t p : pos) expected.push_back(idle[p]);
    EXPECT_EQ(view.at(pos), expected) << when;
    for (ClientId id : f.rt.client_ids()) {
      EXPECT_EQ(f.rt.is_idle(id), std::count(idle.begin(), idle.end(), id) == 1) << when << id;
    }
  };
  expect_same("before start");
  ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
  expect_same("started");
  for (ClientId c : {0, 1, 2}) f.rt.offer(c);  // a round takes clients 0, 1, 2
  ASSERT_EQ(f.host.launched.size(), 3u);
  expect_same("all three training");
  EXPECT_TRUE(f.rt.idle_view().empty());
  f.rt.add_client(10, 5);  // appended
  f.rt.add_client(5, 5);   // inserted in the middle: positions move
  f.rt.set_available(10, true);
  expect_same("10 online, 5 not");
  f.rt.set_available(5, true);
  EXPECT_EQ(f.rt.idle_view().to_vector(), (std::vector<ClientId>{5, 10}));
  EXPECT_EQ(f.rt.idle_view()[1], 10);
  ASSERT_TRUE(f.rt.receive(f.host.launched[1], f.update_for(f.host.launched[1], 0.1f), 4).ok());
  expect_same("client 1 returned");
  f.rt.lose(f.host.launched[0], "test");
  expect_same("client 0 lost");
  f.rt.set_available(5, false);
  expect_same("5 offline");
  ASSERT_TRUE(f.rt.receive(f.host.launched[2], f.update_for(f.host.launched[2], 0.1f), 4).ok());
  expect_same("round closed, the next one sampled");
  f.rt.set_available(5, true);
  f.rt.set_available(10, false);
  expect_same("5 back, 10 gone");
}

TEST(RuntimeTest, UnreachableAndUnavailableClientsAreNotIdle) {
  Fixture f;
  ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
  f.host.unreachable.insert(1);
  f.rt.set_available(2, false);
  EXPECT_EQ(f.rt.idle_clients(), std::vector<ClientId>{0});
  f.rt.add_client(10, 5);  // sparse ids are fine (deployment tokens)
  f.rt.add_client(5, 5);
  f.rt.set_available(10, true);
  f.rt.set_available(5, true);
  EXPECT_EQ(f.rt.idle_clients(), (std::vector<ClientId>{0, 5, 10}));
  EXPECT_EQ(f.rt.client_ids(), (std::vector<ClientId>{0, 1, 2, 5, 10}));
  EXPECT_EQ(f.rt.client_info(5).num_examples, 5);
  EXPECT_EQ(f.rt.default_local_steps(10), 1);  // ceil(5 / 32)
}

TEST(RuntimeTest, EvaluationFailuresAreFatalOrLogged) {
  for (bool fatal : {true, false}) {
    Fixture f(options_with([&](RuntimeOptions& o) { o.eval_errors_fatal = fatal; }));
    ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
    f.host.fail_eval = true;
    for (ClientId c : {0, 1, 2}) f.rt.offer(c);
    for (int i = 0; i < 3; ++i) {
      (void)f.rt.receive(f.host.launched[i], f.update_for(f.host.launched[i], 0.1f), 4);
    }
    EXPECT_EQ(f.strategy.version(), 1);
    EXPECT_EQ(f.rt.failure().has_value(), fatal);
    EXPECT_EQ(f.host.logs.size(), fatal ? 0u : 1u);
  }
  Fixture g;
  g.host.fail_eval = true;
  Status s = g.rt.start(make_vector({0.0f}), {});
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("evaluating the initial model"));
}

TEST(RuntimeTest, TimersGoThroughTheHost) {
  TestHost host;
  FedAvg s(FedAvgOptions{.round = {.fraction = 1.0, .min_clients = 1, .round_deadline_s = 5}});
  Runtime rt({}, s, host, nullptr);
  rt.add_client(0, 10);
  rt.set_available(0, true);
  ASSERT_TRUE(rt.start(make_vector({0.0f}), {}).ok());
  host.t = 1;
  rt.offer(0);
  ASSERT_EQ(host.timers.size(), 1u);
  EXPECT_DOUBLE_EQ(host.timers.begin()->second, 6.0);
  // The deadline passes with the task outstanding: the round closes without a commit.
  rt.fire_timer(host.timers.begin()->first);
  EXPECT_EQ(s.version(), 0);
  EXPECT_FALSE(s.round_open());
}

TEST(RuntimeTest, CheckpointsEveryNCommitsAndResume) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("cohort_rt_ckpt_" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(dir);
  std::string hash;
  {
    TestHost host;
    MetricsHub hub;
    auto sink = std::make_shared<MemorySink>();
    hub.add_sink(sink);
    FedBuff s({.buffer_size = 1});
    Runtime rt(options_with([&](RuntimeOptions& o) {
                 o.checkpoint_dir = dir;
                 o.checkpoint_every = 2;
                 o.strict_dispatch = false;
                 o.first_task_number = 1;
               }),
               s, host, &hub);
    rt.add_client(0, 10);
    rt.set_available(0, true);
    ASSERT_TRUE(rt.start(make_vector({1.0f}), {}).ok());
    for (int i = 0; i < 3; ++i) {
      rt.offer(0);
      ASSERT_EQ(host.launched.size(), static_cast<size_t>(i + 1));
      const int64_t id = host.launched.back();
      EXPECT_EQ(id, i + 1);  // epoch 0, numbers from 1
      Update u;
      u.delta = make_vector({0.5f});
      u.num_examples = 10;
      u.local_steps = 1;
      u.base_version = rt.task(id)->task.version;
      ASSERT_TRUE(rt.receive(id, std::move(u), 4).ok());
      rt.after_event();
    }
    EXPECT_EQ(s.version(), 3);
    int checkpoints = 0;
    for (const Json& e : sink->events) checkpoints += e["event"] == "checkpoint";
    EXPECT_EQ(checkpoints, 1);  // after version 2
    hash = s.global_model()->hash_hex();
  }
  Result<Checkpoint> c = read_checkpoint(dir);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->version, 2);
  TestHost host;
  FedBuff s({.buffer_size = 1});
  Runtime rt(options_with([&](RuntimeOptions& o) {
               o.checkpoint_dir = dir;
               o.first_task_number = 1;
             }),
             s, host, nullptr);
  ASSERT_TRUE(rt.start(make_vector({1.0f}), {}, std::move(*c)).ok());
  EXPECT_EQ(rt.resumed_from(), 2);
  EXPECT_EQ(s.version(), 2);
  EXPECT_EQ(rt.epoch(), 1);
  EXPECT_EQ(rt.summary().updates, 2);
  EXPECT_EQ(rt.client_info(0).tasks_done, 2);
  rt.set_available(0, true);
  rt.offer(0);
  ASSERT_EQ(host.launched.size(), 1u);
  EXPECT_EQ(host.launched[0] >> 40, 1);  // a new epoch: old task ids are unknown
  // A checkpoint of another strategy is refused.
  Result<Checkpoint> again = read_checkpoint(dir);
  ASSERT_TRUE(again.ok());
  FedAvg other;
  TestHost h2;
  Runtime rt2(options_with([&](RuntimeOptions& o) { o.checkpoint_dir = dir; }), other, h2,
              nullptr);
  Status st = rt2.start(make_vector({1.0f}), {}, std::move(*again));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("checkpoint is for strategy fedbuff"));
  std::filesystem::remove_all(dir);
}


// Finding 1 of the hardening issue: one client must not destroy the global model. Two updates
// of 3e38 (admission's norm bound off) would make FedBuff's model infinite: the commit is
// refused, the update that caused it is rejected and counted, and the model stands.
TEST(RuntimeTest, ACommitThatWouldBeNonFiniteIsRefused) {
  TestHost host;
  MetricsHub hub;
  auto sink = std::make_shared<MemorySink>();
  hub.add_sink(sink);
  FedBuff s({.buffer_size = 2, .server_momentum = 0.5});
  // The updates pass admission (no bounds), so only the commit check stands.
  Runtime rt(options_with([](RuntimeOptions& o) {
               o.admission.norm_policy = "off";
               o.admission.max_abs_weight = 0;
             }),
             s, host, &hub);
  rt.add_client(0, 10);
  rt.add_client(1, 10);
  rt.set_available(0, true);
  rt.set_available(1, true);
  ASSERT_TRUE(rt.start(make_vector({1.0f}), {}).ok());
  rt.offer(0);
  rt.offer(1);
  ASSERT_EQ(host.launched.size(), 2u);
  auto deliver = [&](int64_t id, float value) {
    Update u;
    u.delta = make_vector({value});
    u.num_examples = 10;
    u.local_steps = 1;
    u.base_version = rt.task(id)->task.version;
    AdmissionOutcome out;
    Status a = rt.admission().admit(u, rt.task(id)->task, rt.admission_context(0), &out);
    EXPECT_TRUE(a.ok()) << a.to_string();
    return rt.receive(id, std::move(u), 4, out);
  };
  EXPECT_TRUE(deliver(host.launched[0], -3e38f).ok());  // buffered
  Status st = deliver(host.launched[1], -3e38f);        // the flush would overflow
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("version 1 fails the sanity check"));
  EXPECT_EQ(s.version(), 0);
  EXPECT_FLOAT_EQ(s.global_model()->flat()[0], 1.0f);
  EXPECT_EQ(rt.summary().refused_commits, 1);
  EXPECT_EQ(rt.summary().rejected, 1);
  EXPECT_EQ(rt.stats(1).rejected, 1);
  int refused_events = 0;
  for (const Json& e : sink->events) refused_events += e["event"] == "commit_refused";
  EXPECT_EQ(refused_events, 1);
  // Training goes on: honest updates commit normally from the model that stood.
  rt.offer(0);
  rt.offer(1);
  ASSERT_EQ(host.launched.size(), 4u);
  EXPECT_TRUE(deliver(host.launched[2], 0.5f).ok());
  EXPECT_TRUE(deliver(host.launched[3], 0.5f).ok());
  EXPECT_EQ(s.version(), 1);
  EXPECT_TRUE(std::isfinite(s.global_model()->flat()[0]));
  EXPECT_LT(s.global_model()->flat()[0], 1.0f);
}

// A finite but absurd model (a weight beyond admission.max_abs_weight, or a norm grown beyond
// admission.max_model_growth) is refused like a non-finite one.
TEST(RuntimeTest, ACommitBeyondTheWeightOrGrowthBoundIsRefused) {
  struct Case {
    double max_abs_weight, max_model_growth;
    float delta;  // the model is 1; FedAvg with server lr 1 commits 1 - delta
    const char* names;
  };
  for (const Case& c : {Case{1e6, 0, -2e6f, "admission.max_abs_weight"},
                        Case{0, 10, -20.0f, "admission.max_model_growth"}}) {
    SCOPED_TRACE(c.names);
    TestHost host;
    FedAvg s({.round = {.fraction = 1.0, .min_clients = 1}});
    Runtime rt(options_with([&](RuntimeOptions& o) {
                 o.admission.norm_policy = "off";
                 o.admission.max_abs_weight = c.max_abs_weight;
                 o.admission.max_model_growth = c.max_model_growth;
               }),
               s, host, nullptr);
    rt.add_client(0, 10);
    rt.set_available(0, true);
    ASSERT_TRUE(rt.start(make_vector({1.0f}), {}).ok());
    rt.offer(0);
    ASSERT_EQ(host.launched.size(), 1u);
    const int64_t id = host.launched[0];
    Update u;
    u.delta = make_vector({c.delta});
    u.num_examples = 10;
    u.local_steps = 1;
    u.base_version = 0;
    Status st = rt.receive(id, std::move(u), 4, AdmissionOutcome{});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr(c.names));
    EXPECT_EQ(s.version(), 0);
    EXPECT_FLOAT_EQ(s.global_model()->flat()[0], 1.0f);
    EXPECT_EQ(rt.summary().refused_commits, 1);
  }
}

TEST(RuntimeTest, TheClientsEventIsStreamedTextWithTheUsualFields) {
  Fixture f(options_with([](RuntimeOptions& o) {
    o.max_commits = 1;
  }));
  ASSERT_TRUE(f.rt.start(make_vector({0.0f}), {}).ok());
  for (ClientId c : {0, 1, 2}) f.rt.offer(c);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(f.rt.receive(f.host.launched[i], f.update_for(f.host.launched[i], -0.5f), 4).ok());
  }
  Result<RunSummary> s = f.rt.finish();
  ASSERT_TRUE(s.ok());
  // The memory sink parses the text (MetricsSink's default): the same event emit() would give.
  ASSERT_EQ(f.events("clients").size(), 1u);
  const Json ev = f.events("clients")[0];
  std::vector<std::string> keys;
  for (const auto& [k, v] : ev.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"event", "clients", "idle_clients", "virtual_time_s",
                                            "wall_time_s"}));
  EXPECT_EQ(ev["clients"], s->client_stats_json());
  EXPECT_EQ(ev["idle_clients"], s->idle_clients);
}

TEST(ClientStatsTest, TextIsTheJsonObjectWithoutBuildingIt) {
  ClientStats a;
  a.id = 7;
  a.tasks = 3;
  a.steps = 4000000000000LL;
  a.updates_accepted = 2;
  a.rejected = 1;
  a.offline_periods = 5;
  a.offline_s = 0.0;
  a.mean_staleness = 1.0 / 3.0;
  a.max_staleness = std::numeric_limits<int64_t>::max();
  ClientStats b = a;
  b.offline_s = 1e-310;  // subnormal
  b.mean_staleness = 2.5e20;
  ClientStats c = a;
  c.offline_s = 12.0;
  c.mean_staleness = -0.1;
  for (const ClientStats& x : {a, b, c}) {
    std::string text;
    x.append_json(text);
    // The very text nlohmann writes (integral doubles keep their ".0"), and back.
    EXPECT_EQ(text, x.to_json().dump());
    EXPECT_EQ(Json::parse(text), x.to_json());
    EXPECT_EQ(ClientStats::from_json(Json::parse(text)).to_json(), x.to_json());
  }
  // A non-finite figure is null, as nlohmann writes it.
  ClientStats d = a;
  d.mean_staleness = std::numeric_limits<double>::quiet_NaN();
  std::string text;
  d.append_json(text);
  EXPECT_EQ(text, d.to_json().dump());
  EXPECT_TRUE(Json::parse(text)["mean_staleness"].is_null());

  RunSummary s;
  s.client_stats = {a, b};
  std::string arr;
  s.append_client_stats(arr);
  EXPECT_EQ(Json::parse(arr), s.client_stats_json());
  std::string none;
  RunSummary().append_client_stats(none);
  EXPECT_EQ(none, "[]");
}

}  // namespace
}  // namespace cohort::runtime
