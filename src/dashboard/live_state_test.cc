// LiveState: the dashboard's picture of a run, built from events and live rows.
#include "cohort/dashboard/live_state.h"

#include <gtest/gtest.h>

namespace cohort::dashboard {
namespace {

LiveClient row(ClientId id, LiveClientState state, int64_t accepted = 0) {
  LiveClient c;
  c.id = id;
  c.state = state;
  c.accepted = accepted;
  c.tasks = accepted;
  return c;
}

LiveTotals totals(double wall, int64_t updates, int64_t bytes, ModelVersion version) {
  LiveTotals t;
  t.wall_s = wall;
  t.updates = updates;
  t.bytes_up = bytes;
  t.version = version;
  return t;
}

TEST(LiveStateTest, StartsWaitingAndFollowsTheRunToItsSummary) {
  LiveState s;
  Json snap = s.snapshot();
  EXPECT_EQ(snap["status"], "waiting");
  EXPECT_TRUE(snap["totals"].is_null());
  EXPECT_TRUE(snap["clients"].empty());

  s.on_event({{"event", "start"}, {"strategy", "fedbuff"}, {"clients", 3}, {"params", 10},
              {"mode", "deploy"}, {"virtual_time_s", 0.0}});
  s.on_event({{"event", "eval"}, {"round", 0}, {"accuracy", 0.1}, {"loss", 2.3},
              {"virtual_time_s", 0.0}, {"wall_time_s", 0.0}});
  s.on_event({{"event", "buffer_flush"}, {"version", 1}, {"updates", 2},
              {"client_metrics", {{"train_loss", 1.5}}}, {"virtual_time_s", 4.0}});
  s.on_event({{"event", "eval"}, {"round", 1}, {"accuracy", 0.6}, {"loss", 1.1},
              {"virtual_time_s", 4.0}, {"wall_time_s", 0.2}});
  snap = s.snapshot();
  EXPECT_EQ(snap["status"], "running");
  EXPECT_EQ(snap["run"]["strategy"], "fedbuff");
  EXPECT_EQ(snap["run"]["mode"], "deploy");
  ASSERT_EQ(snap["evals"].size(), 2u);
  EXPECT_DOUBLE_EQ(snap["evals"][1]["accuracy"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(snap["evals"][1]["t"].get<double>(), 4.0);
  ASSERT_EQ(snap["train_loss"].size(), 1u);
  EXPECT_EQ(snap["train_loss"][0]["version"], 1);
  EXPECT_DOUBLE_EQ(snap["train_loss"][0]["value"].get<double>(), 1.5);
  EXPECT_EQ(snap["last_commit"]["event"], "buffer_flush");

  s.on_event({{"event", "summary"}, {"final_accuracy", 0.6}, {"stop_reason", "rounds"}});
  snap = s.snapshot();
  EXPECT_EQ(snap["status"], "finished");
  EXPECT_EQ(snap["summary"]["stop_reason"], "rounds");
  EXPECT_EQ(snap["events"], 5);
}

TEST(LiveStateTest, SimulationsSayTheirModeAndNonObjectsAreIgnored) {
  LiveState s;
  s.on_event(Json::array({1, 2}));
  s.on_event({{"event", "start"}, {"strategy", "fedavg"}});
  EXPECT_EQ(s.snapshot()["run"]["mode"], "simulate");
  EXPECT_EQ(s.snapshot()["events"], 1);
}

TEST(LiveStateTest, ClientRowsCountStatesAndPutTrainingFirst) {
  LiveState s;
  std::vector<LiveClient> rows = {row(0, LiveClientState::kIdle, 2),
                                  row(1, LiveClientState::kTraining),
                                  row(2, LiveClientState::kLost),
                                  row(3, LiveClientState::kTraining),
                                  row(4, LiveClientState::kOffline)};
  s.on_live(totals(0.0, 0, 0, 0), rows);
  // Later calls carry only what changed.
  std::vector<LiveClient> changed = {row(4, LiveClientState::kRejected)};
  s.on_live(totals(1.0, 2, 0, 1), changed);
  Json snap = s.snapshot(3);
  EXPECT_EQ(snap["clients_total"], 5);
  EXPECT_EQ(snap["state_counts"]["training"], 2);
  EXPECT_EQ(snap["state_counts"]["idle"], 1);
  EXPECT_EQ(snap["state_counts"]["lost"], 1);
  EXPECT_EQ(snap["state_counts"]["rejected"], 1);
  EXPECT_EQ(snap["state_counts"]["offline"], 0);
  // Three rows: the two training clients first in the selection, then by id.
  ASSERT_EQ(snap["clients"].size(), 3u);
  EXPECT_EQ(snap["clients"][0]["id"], 0);
  EXPECT_EQ(snap["clients"][1]["id"], 1);
  EXPECT_EQ(snap["clients"][2]["id"], 3);
  EXPECT_EQ(snap["clients"][0]["accepted"], 2);
  EXPECT_EQ(snap["clients"][1]["state"], "training");
  EXPECT_EQ(s.snapshot()["clients"][4]["state"], "rejected");
}

TEST(LiveStateTest, RatesComeFromTheTotalsWithinTheWindow) {
  LiveState s(LiveStateOptions{.rate_window_s = 10.0});
  s.on_live(totals(0.0, 0, 0, 0), {});
  s.on_live(totals(2.0, 10, 4000, 2), {});
  Json r = s.snapshot()["rates"];
  EXPECT_DOUBLE_EQ(r["updates_per_s"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(r["bytes_per_s"].get<double>(), 2000.0);
  EXPECT_DOUBLE_EQ(r["versions_per_s"].get<double>(), 1.0);
  // 20 s later the first two samples have left the window: 30 updates over the last 10 s.
  s.on_live(totals(12.0, 20, 4000, 3), {});
  s.on_live(totals(22.0, 50, 4000, 4), {});
  r = s.snapshot()["rates"];
  EXPECT_DOUBLE_EQ(r["updates_per_s"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(r["window_s"].get<double>(), 10.0);
  EXPECT_EQ(s.snapshot()["totals"]["updates"], 50);
}

TEST(LiveStateTest, KeepsTheMostRecentRejectionsLossesPrivacyAndTrust) {
  LiveState s(LiveStateOptions{.max_recent = 2});
  for (int i = 0; i < 3; ++i) {
    s.on_event({{"event", "rejected"}, {"client", i}, {"reason", "NaN " + std::to_string(i)},
                {"virtual_time_s", 1.0 * i}});
  }
  s.on_event({{"event", "lost"}, {"client", 7}, {"version", 3}, {"reason", "timeout"}});
  s.on_event({{"event", "privacy"}, {"epsilon", 1.25}, {"delta", 1e-5}, {"version", 3}});
  s.on_event({{"event", "robust"}, {"trust", {{"4", 0.2}, {"5", 0.9}, {"x", 1.0}}}});
  Json snap = s.snapshot();
  ASSERT_EQ(snap["rejected"].size(), 2u);
  EXPECT_EQ(snap["rejected"][0]["client"], 1);
  EXPECT_EQ(snap["rejected"][1]["reason"], "NaN 2");
  ASSERT_EQ(snap["lost"].size(), 1u);
  EXPECT_EQ(snap["lost"][0]["reason"], "timeout");
  EXPECT_DOUBLE_EQ(snap["privacy"]["epsilon"].get<double>(), 1.25);
  ASSERT_EQ(snap["trust_lowest"].size(), 2u);
  EXPECT_EQ(snap["trust_lowest"][0]["client"], 4);
  // A client row carries its trust.
  s.on_live(totals(0, 0, 0, 0), std::vector<LiveClient>{row(5, LiveClientState::kIdle)});
  EXPECT_DOUBLE_EQ(s.snapshot()["clients"][0]["trust"].get<double>(), 0.9);
}

TEST(LiveStateTest, LongCurvesAreThinnedKeepingFirstAndLast) {
  LiveState s(LiveStateOptions{.max_points = 16});
  for (int i = 0; i <= 100; ++i) {
    s.on_event({{"event", "eval"}, {"round", i}, {"accuracy", i / 100.0}});
  }
  Json evals = s.snapshot()["evals"];
  EXPECT_LE(evals.size(), 16u);
  EXPECT_GE(evals.size(), 8u);
  EXPECT_EQ(evals.front()["round"], 0);
  EXPECT_EQ(evals.back()["round"], 100);
  for (size_t i = 1; i < evals.size(); ++i) {
    EXPECT_LT(evals[i - 1]["round"].get<int>(), evals[i]["round"].get<int>());
  }
}

}  // namespace
}  // namespace cohort::dashboard
