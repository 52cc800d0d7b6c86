// Heterogeneity over time in the simulator: per-task jitter, dropouts, availability, the
// per-client statistics, and that no strategy stalls on lost tasks.
#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include "cohort/sim/simulator.h"
#include "cohort/strategy/fedasync.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "testing/fake_trainer.h"

namespace cohort::sim {
namespace {

using testing::line_dataset;
using testing::quadratic_factory;

std::vector<SimClient> make_clients(std::shared_ptr<const Dataset> d, int64_t n,
                                    int64_t examples_each,
                                    const std::vector<DeviceProfile>& devices) {
  std::vector<SimClient> out;
  int64_t next = 0;
  for (int64_t k = 0; k < n; ++k) {
    SimClient c;
    c.shard.data = d;
    for (int64_t i = 0; i < examples_each; ++i) c.shard.indices.push_back(next++);
    c.device = devices[static_cast<size_t>(k) % devices.size()];
    out.push_back(std::move(c));
  }
  return out;
}

// 8 Mbit/s = 1e6 bytes/s both ways, so the 8-byte model of the 2-D quadratic trainer takes
// 8 us per transfer; no latency.
DeviceProfile device(double speed, double latency_s = 0.0) {
  return DeviceProfile{speed, 1e6, 1e6, latency_s};
}
constexpr double kTransfer = 8.0 / 1e6;

SimOptions options(double max_time_s, int64_t local_steps, size_t threads = 2) {
  SimOptions o;
  // Toy quadratic problems: the optimum is far from the tiny initial model, so the first
  // honest updates are many times its norm (admission.warmup_bound).
  o.admission.warmup_bound = "none";
  o.run.max_virtual_time_s = max_time_s;
  o.run.threads = threads;
  o.run.seed = 11;
  o.training.lr = 1.0;
  o.training.local_steps = local_steps;
  return o;
}

// A scripted strategy that records what the runtime tells it. It sends a task to every
// client that becomes idle (unless `dispatch_on_idle` is false), optionally commits on every
// update, and at each of `probe_times` records the idle set (and, if asked, dispatches to
// `force_client` whatever its state).
class Probe final : public Strategy {
 public:
  struct Record {
    std::string what;  // idle | update | lost
    ClientId client;
    double time;
    ModelVersion base_version;
  };

  bool dispatch_on_idle = true;
  bool commit_each_update = false;
  std::vector<double> probe_times;
  ClientId force_client = -1;

  std::vector<Record> log;
  std::vector<std::pair<double, std::vector<ClientId>>> idle_at;

  std::string name() const override { return "probe"; }
  Status start(StrategyHost* host, ArrayRecord initial) override {
    host_ = host;
    model_ = std::make_shared<const ArrayRecord>(std::move(initial));
    for (double t : probe_times) host_->set_timer(t);
    return Status();
  }
  void on_client_idle(ClientId id) override {
    log.push_back({"idle", id, host_->now(), version_});
    if (dispatch_on_idle) send(id);
  }
  Status on_update(Update u) override {
    log.push_back({"update", u.client, host_->now(), u.base_version});
    if (commit_each_update) host_->on_commit(++version_);
    return Status();
  }
  void on_task_lost(ClientId id, ModelVersion version) override {
    log.push_back({"lost", id, host_->now(), version});
  }
  void on_timer(TimerId /*id*/) override {
    idle_at.emplace_back(host_->now(), host_->idle_clients());
    if (force_client >= 0) send(force_client);
  }
  std::shared_ptr<const ArrayRecord> global_model() const override { return model_; }
  ModelVersion version() const override { return version_; }

  std::vector<Record> of(const std::string& what, ClientId c) const {
    std::vector<Record> out;
    for (const auto& r : log) {
      if (r.what == what && r.client == c) out.push_back(r);
    }
    return out;
  }

 private:
  void send(ClientId id) {
    Task t;
    t.client = id;
    t.version = version_;
    t.model = model_;
    t.local_steps = host_->default_local_steps(id);
    host_->dispatch(std::move(t));
  }
  StrategyHost* host_ = nullptr;
  std::shared_ptr<const ArrayRecord> model_;
  ModelVersion version_ = 0;
};

std::vector<Json> events_of(const MemorySink& mem, const std::string& kind) {
  std::vector<Json> out;
  for (const auto& e : mem.events) {
    if (e["event"] == kind) out.push_back(e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------

TEST(JitterTest, ScalesComputeTimeBySeededPerTaskFactor) {
  auto d = line_dataset(4);
  // One client, 10 steps at 5 steps/s: a nominal 2 s of compute per task.
  auto clients = make_clients(d, 1, 4, {device(5.0)});
  auto run = [&](uint64_t seed, double jitter) {
    SimOptions o = options(0, 10);
    o.run.rounds = 4;
    o.run.seed = seed;
    o.dynamics.jitter = jitter;
    Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
    Probe p;
    p.commit_each_update = true;
    auto r = sim.run(p);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    std::vector<double> arrivals;
    for (const auto& rec : p.of("update", 0)) arrivals.push_back(rec.time);
    return arrivals;
  };
  // Independently: task k (numbered 0..3) takes 2 transfers + 2 s x max(0.05, N(1, 0.3)) from
  // Rng::derive(seed, "jitter", client 0, k), back to back.
  auto expected = [](uint64_t seed, double jitter) {
    std::vector<double> t;
    double now = 0;
    for (uint64_t k = 0; k < 4; ++k) {
      Rng rng = Rng::derive(seed, "jitter", 0, k);
      const double factor = std::max(0.05, rng.normal(1.0, jitter));
      now = now + kTransfer + 2.0 * factor + kTransfer;
      t.push_back(now);
    }
    return t;
  };
  const std::vector<double> a = run(7, 0.3);
  const std::vector<double> b = run(7, 0.3);
  const std::vector<double> c = run(8, 0.3);
  const std::vector<double> none = run(7, 0.0);
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(c.size(), 4u);
  ASSERT_EQ(none.size(), 4u);
  const std::vector<double> want = expected(7, 0.3);
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_NEAR(a[k], want[k], 1e-9) << k;
    EXPECT_NEAR(none[k], (k + 1) * (2.0 + 2 * kTransfer), 1e-9) << k;
  }
  EXPECT_EQ(a, b);  // same seed, same times
  EXPECT_NE(a, c);  // another seed, other times
  EXPECT_NE(a, none);
}

TEST(AvailabilityTest, OfflineClientLosesItsTaskIsNotIdleAndComesBack) {
  auto d = line_dataset(8);
  // Client 0: 10-step tasks at 1 step/s (10 s); client 1: at 10 steps/s (1 s).
  auto clients = make_clients(d, 2, 4, {device(1.0), device(10.0)});
  SimOptions o = options(20.0, 10);
  // Constant periods: every client is online [0, 5), offline [5, 8), online [8, 13),
  // offline [13, 16), online [16, ...).
  o.dynamics.availability = {.mean_online_s = 5, .mean_offline_s = 3, .distribution = "constant"};
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), &hub);
  Probe p;
  p.probe_times = {4.5, 6.0, 9.5};
  auto r = sim.run(p);
  ASSERT_TRUE(r.ok()) << r.error().to_string();

  // Client 0 never finishes a 10 s task inside a 5 s online period: each is lost when the
  // client goes offline, and the client is offered again when it comes back.
  const auto lost0 = p.of("lost", 0);
  ASSERT_EQ(lost0.size(), 2u);
  EXPECT_EQ(lost0[0].time, 5.0);
  EXPECT_EQ(lost0[1].time, 13.0);
  EXPECT_TRUE(p.of("update", 0).empty());
  const auto idle0 = p.of("idle", 0);
  ASSERT_EQ(idle0.size(), 3u);
  EXPECT_EQ(idle0[0].time, 0.0);
  EXPECT_EQ(idle0[1].time, 8.0);
  EXPECT_EQ(idle0[2].time, 16.0);

  // Both clients are busy at 4.5 and 9.5 and offline at 6: no idle client.
  ASSERT_EQ(p.idle_at.size(), 3u);
  for (const auto& [t, idle] : p.idle_at) EXPECT_TRUE(idle.empty()) << "t=" << t;

  // Client 1's tasks take 1 s + 16 us: 4 arrive per online period [0, 5) and [8, 13), the
  // fifth is lost at 5 and 13; in [16, 20], 3 arrive by 19.00005 and the fourth is still out.
  EXPECT_EQ(p.of("update", 1).size(), 11u);
  EXPECT_EQ(p.of("lost", 1).size(), 2u);

  EXPECT_EQ(r->lost, 4);
  EXPECT_EQ(r->lost_offline, 4);
  EXPECT_EQ(r->lost_dropout, 0);
  EXPECT_EQ(r->offline_periods, 4);  // 2 clients x 2 periods
  EXPECT_EQ(r->bytes_down, (3 + 14) * 8);
  EXPECT_EQ(r->bytes_up, 11 * 8);
  EXPECT_FALSE(r->stalled);

  // One "lost" event per lost task, with its reason.
  const auto lost_events = events_of(*mem, "lost");
  ASSERT_EQ(lost_events.size(), 4u);
  EXPECT_EQ(lost_events[0]["client"], 0);
  EXPECT_EQ(lost_events[0]["reason"], "offline");
  EXPECT_EQ(lost_events[0]["virtual_time_s"], 5.0);
  EXPECT_EQ(lost_events[0]["dispatched_at"], 0.0);
  EXPECT_EQ(lost_events[0]["version"], 0);

  // Per-client statistics, by hand.
  ASSERT_EQ(r->client_stats.size(), 2u);
  const ClientStats& s0 = r->client_stats[0];
  EXPECT_EQ(s0.id, 0);
  EXPECT_EQ(s0.tasks, 3);  // at 0, 8 and 16 (still out at the end)
  EXPECT_EQ(s0.steps, 0);
  EXPECT_EQ(s0.updates_accepted, 0);
  EXPECT_EQ(s0.lost, 2);
  EXPECT_EQ(s0.offline_periods, 2);
  EXPECT_DOUBLE_EQ(s0.offline_s, 6.0);
  const ClientStats& s1 = r->client_stats[1];
  EXPECT_EQ(s1.tasks, 14);
  EXPECT_EQ(s1.steps, 110);
  EXPECT_EQ(s1.updates_accepted, 11);
  EXPECT_EQ(s1.rejected, 0);
  EXPECT_EQ(s1.lost, 2);
  EXPECT_EQ(s1.mean_staleness, 0.0);
}

TEST(AvailabilityTest, OfflineTimeCountsUpToTheEndOfTheRun) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, 1, 4, {device(10.0)});
  SimOptions o = options(7.0, 1);
  o.dynamics.availability = {.mean_online_s = 5, .mean_offline_s = 3, .distribution = "constant"};
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  Probe p;
  auto r = sim.run(p);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->client_stats[0].offline_periods, 1);
  EXPECT_DOUBLE_EQ(r->client_stats[0].offline_s, 2.0);  // offline from 5 to the end at 7
}

TEST(AvailabilityTest, DispatchingToAnOfflineClientIsAnError) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, 1, 4, {device(10.0)});
  SimOptions o = options(20.0, 1);
  o.dynamics.availability = {.mean_online_s = 5, .mean_offline_s = 3, .distribution = "constant"};
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  Probe p;
  p.dispatch_on_idle = false;
  p.probe_times = {6.0};
  p.force_client = 0;
  auto r = sim.run(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInternal);
  EXPECT_EQ(r.error().message(),
            "probe dispatched a task to client 0, which is not idle (it is offline)");
}

TEST(DropoutTest, LostAtTheTimeoutAndTheClientIsReused) {
  auto d = line_dataset(4);
  // 4 steps at 2 steps/s: a task takes 2 s + 2 transfers; a dropout is noticed 3x later.
  auto clients = make_clients(d, 1, 4, {device(2.0)});
  SimOptions o = options(60.0, 4);
  o.dynamics.dropout = 0.4;
  o.dynamics.task_timeout_factor = 3.0;
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), &hub);
  Probe p;
  auto r = sim.run(p);
  ASSERT_TRUE(r.ok()) << r.error().to_string();

  // Independently: task k drops out iff Rng::derive(seed, "dropout", 0, k).uniform() < 0.4;
  // tasks run back to back, each ending with an update or with its loss at 3x its duration.
  const double duration = 2.0 + 2 * kTransfer;
  std::vector<std::pair<std::string, double>> want;
  double now = 0;
  for (uint64_t k = 0;; ++k) {
    const bool drop = Rng::derive(o.run.seed, "dropout", 0, k).uniform() < 0.4;
    const double end = now + (drop ? 3.0 * duration : duration);
    if (end > 60.0) break;
    want.emplace_back(drop ? "lost" : "update", end);
    now = end;
  }
  std::vector<std::pair<std::string, double>> got;
  for (const auto& rec : p.log) {
    if (rec.what != "idle") got.emplace_back(rec.what, rec.time);
  }
  ASSERT_EQ(got.size(), want.size());
  int64_t lost = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first) << i;
    EXPECT_NEAR(got[i].second, want[i].second, 1e-9) << i;
    lost += want[i].first == "lost";
  }
  ASSERT_GT(lost, 2);                                  // the seed gives several dropouts...
  ASSERT_LT(lost, static_cast<int64_t>(want.size()));  // ...and several updates
  EXPECT_EQ(r->lost, lost);
  EXPECT_EQ(r->lost_dropout, lost);
  EXPECT_EQ(r->client_stats[0].lost, lost);
  // After each loss the client is idle at once and gets the next task.
  for (const auto& rec : p.of("lost", 0)) {
    bool reoffered = false;
    for (const auto& idle : p.of("idle", 0)) reoffered = reoffered || idle.time == rec.time;
    EXPECT_TRUE(reoffered) << "t=" << rec.time;
  }
  for (const auto& e : events_of(*mem, "lost")) EXPECT_EQ(e["reason"], "dropout");
  // A dropped-out task is downloaded but never uploaded.
  EXPECT_EQ(r->bytes_down, static_cast<int64_t>(want.size() + 1) * 8);
  EXPECT_EQ(r->bytes_up, static_cast<int64_t>(want.size() - static_cast<size_t>(lost)) * 8);
}

TEST(ClientStatsTest, StalenessPerClientByHand) {
  auto d = line_dataset(8);
  // Client 0: 1 step at 1 step/s (1 s tasks); client 1: at 0.4 steps/s (2.5 s tasks). The
  // strategy commits every update; the run ends at 4.5 s.
  auto clients = make_clients(d, 2, 4, {device(1.0), device(0.4)});
  SimOptions o = options(4.5, 1);
  MetricsHub hub;
  auto mem = std::make_shared<MemorySink>();
  hub.add_sink(mem);
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), &hub);
  Probe p;
  p.commit_each_update = true;
  auto r = sim.run(p);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // t=1: c0 (base 0) at v0 -> 0, v1.  t=2: c0 (base 1) at v1 -> 0, v2.
  // t=2.5: c1 (base 0) at v2 -> 2, v3.  t=3: c0 (base 2) at v3 -> 1, v4.
  // t=4: c0 (base 4) at v4 -> 0, v5.  Out at the end: c0 (base 5) and c1 (base 3).
  ASSERT_EQ(r->client_stats.size(), 2u);
  const ClientStats& s0 = r->client_stats[0];
  EXPECT_EQ(s0.tasks, 5);
  EXPECT_EQ(s0.steps, 4);
  EXPECT_EQ(s0.updates_accepted, 4);
  EXPECT_EQ(s0.lost, 0);
  EXPECT_DOUBLE_EQ(s0.mean_staleness, 0.25);
  EXPECT_EQ(s0.max_staleness, 1);
  const ClientStats& s1 = r->client_stats[1];
  EXPECT_EQ(s1.tasks, 2);
  EXPECT_EQ(s1.steps, 1);
  EXPECT_EQ(s1.updates_accepted, 1);
  EXPECT_DOUBLE_EQ(s1.mean_staleness, 2.0);
  EXPECT_EQ(s1.max_staleness, 2);
  EXPECT_EQ(s1.offline_periods, 0);
  EXPECT_EQ(s1.offline_s, 0.0);
  EXPECT_EQ(r->rounds, 5);

  // The "clients" event carries the same, just before the summary.
  ASSERT_GE(mem->events.size(), 2u);
  const Json& ev = mem->events[mem->events.size() - 2];
  EXPECT_EQ(ev["event"], "clients");
  EXPECT_EQ(mem->events.back()["event"], "summary");
  EXPECT_EQ(ev["clients"], r->client_stats_json());
  EXPECT_EQ(ev["clients"][0],
            Json::parse(R"({"id": 0, "tasks": 5, "steps": 4, "updates_accepted": 4,
                            "rejected": 0, "clipped": 0, "downweighted": 0, "lost": 0,
                            "offline_periods": 0, "offline_s": 0.0,
                            "mean_staleness": 0.25, "max_staleness": 1})"));
}

TEST(ClientStatsTest, RejectedUpdatesAreCountedPerClient) {
  auto d = line_dataset(4);
  // The straggler (client 1) misses every 5 s deadline; its late updates are rejected.
  auto clients = make_clients(d, 2, 2, {device(10.0), device(0.1)});
  SimOptions o = options(150.0, 10);  // the straggler's first update arrives at ~100 s
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  FedAvg fedavg({.round = {.fraction = 1.0, .min_clients = 1, .round_deadline_s = 5.0}});
  auto r = sim.run(fedavg);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const ClientStats& s1 = r->client_stats[1];
  EXPECT_GE(s1.rejected, 1);
  EXPECT_EQ(s1.updates_accepted, 0);
  EXPECT_EQ(s1.rejected, r->rejected);
  EXPECT_GT(s1.max_staleness, 1);  // rounds kept committing while it trained
  EXPECT_EQ(r->client_stats[0].updates_accepted, r->updates);
}

// ---------------------------------------------------------------------------------------
// No strategy stalls on dropouts or offline clients.

struct Churn {
  std::vector<SimClient> clients;
  std::shared_ptr<const Dataset> data;
};

Churn churn_population() {
  Churn c;
  c.data = line_dataset(200);
  std::vector<DeviceProfile> devs;
  for (int i = 0; i < 10; ++i) devs.push_back(device(2.0 + i % 4, 0.01 * (i % 3)));
  c.clients = make_clients(c.data, 10, 20, devs);
  return c;
}

SimOptions churn_options(size_t threads = 2) {
  SimOptions o = options(300.0, 2);
  o.training.lr = 0.3;
  o.dynamics.dropout = 0.3;
  o.dynamics.jitter = 0.2;
  o.dynamics.availability = {
      .mean_online_s = 20, .mean_offline_s = 10, .distribution = "exponential"};
  return o;
}

// The virtual times of the commits (eval events, eval_every = 1).
std::vector<double> commit_times(const MemorySink& mem) {
  std::vector<double> t;
  for (const auto& e : events_of(mem, "eval")) {
    if (e["round"].get<int64_t>() > 0) t.push_back(e["virtual_time_s"]);
  }
  return t;
}

void expect_keeps_committing(const std::vector<double>& t, double end, double max_gap) {
  ASSERT_FALSE(t.empty());
  double prev = 0;
  for (double x : t) {
    EXPECT_LT(x - prev, max_gap) << "no commit between " << prev << " and " << x;
    prev = x;
  }
  EXPECT_GT(t.back(), end - max_gap);
}

TEST(NoStallTest, FedAvgRoundsKeepClosingWithDeadlineDropoutsAndOfflineClients) {
  for (double deadline : {2.0, 0.0}) {
    SCOPED_TRACE("round_deadline_s=" + std::to_string(deadline));
    Churn c = churn_population();
    MetricsHub hub;
    auto mem = std::make_shared<MemorySink>();
    hub.add_sink(mem);
    Simulator sim(churn_options(), quadratic_factory(2, 0.01), c.clients, Shard::all(c.data), &hub);
    FedAvg fedavg({.round = {.fraction = 0.5, .min_clients = 2, .round_deadline_s = deadline}});
    auto r = sim.run(fedavg);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_GT(r->lost_dropout, 10);
    EXPECT_GT(r->lost_offline, 0);
    EXPECT_GT(r->offline_periods, 50);
    EXPECT_EQ(r->lost, r->lost_dropout + r->lost_offline);
    EXPECT_FALSE(r->stalled);
    EXPECT_GT(r->rounds, 50);
    expect_keeps_committing(commit_times(*mem), 300.0, 20.0);
    // Round events account for the losses.
    int64_t round_lost = 0;
    for (const auto& e : events_of(*mem, "round")) round_lost += e["lost"].get<int64_t>();
    EXPECT_GT(round_lost, 0);
  }
}

TEST(NoStallTest, AsyncStrategiesKeepCommittingWithDropoutsAndOfflineClients) {
  for (const std::string name : {"fedasync", "fedbuff"}) {
    SCOPED_TRACE(name);
    Churn c = churn_population();
    MetricsHub hub;
    auto mem = std::make_shared<MemorySink>();
    hub.add_sink(mem);
    Simulator sim(churn_options(), quadratic_factory(2, 0.01), c.clients, Shard::all(c.data), &hub);
    std::unique_ptr<Strategy> s;
    if (name == "fedasync") {
      s = std::make_unique<FedAsync>(FedAsyncOptions{});
    } else {
      FedBuffOptions fo;
      fo.buffer_size = 3;
      s = std::make_unique<FedBuff>(fo);
    }
    auto r = sim.run(*s);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_GT(r->lost_dropout, 10);
    EXPECT_GT(r->lost_offline, 0);
    EXPECT_GT(r->rounds, 100);
    expect_keeps_committing(commit_times(*mem), 300.0, 20.0);
    // Every client kept being used.
    for (const ClientStats& st : r->client_stats) {
      EXPECT_GT(st.updates_accepted, 5) << "client " << st.id;
      EXPECT_GT(st.offline_periods, 0) << "client " << st.id;
    }
  }
}

TEST(NoStallTest, RunEndsWhenTheStrategyStopsWorking) {
  auto d = line_dataset(8);
  auto clients = make_clients(d, 2, 4, {device(10.0)});
  for (bool availability : {false, true}) {
    SCOPED_TRACE(availability ? "with availability" : "always online");
    SimOptions o = options(0, 1);
    o.run.rounds = 5;  // never reached: the probe does nothing
    if (availability)
      o.dynamics.availability = {
          .mean_online_s = 5, .mean_offline_s = 3, .distribution = "exponential"};
    Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
    Probe p;
    p.dispatch_on_idle = false;
    auto r = sim.run(p);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_TRUE(r->stalled);
    EXPECT_EQ(r->rounds, 0);
  }
}

// ---------------------------------------------------------------------------------------

TEST(DynamicsDeterminismTest, SameSeedSameRunForAnyThreadCount) {
  for (const std::string name : {"fedavg", "fedbuff"}) {
    SCOPED_TRACE(name);
    std::string hash;
    std::vector<Json> reference;
    for (size_t threads : {1, 2, 4}) {
      Churn c = churn_population();
      MetricsHub hub;
      auto mem = std::make_shared<MemorySink>();
      hub.add_sink(mem);
      SimOptions o = churn_options(threads);
      o.run.max_virtual_time_s = 120.0;
      Simulator sim(o, quadratic_factory(2, 0.01), c.clients, Shard::all(c.data), &hub);
      std::unique_ptr<Strategy> s;
      if (name == "fedavg") {
        s = std::make_unique<FedAvg>(
            FedAvgOptions{.round = {.fraction = 0.5, .min_clients = 2, .round_deadline_s = 2.0}});
      } else {
        FedBuffOptions fo;
        fo.buffer_size = 3;
        s = std::make_unique<FedBuff>(fo);
      }
      auto r = sim.run(*s);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      // Every event but the wall-clock fields must match.
      std::vector<Json> events;
      for (Json e : mem->events) {
        e.erase("wall_time_s");
        e.erase("threads");  // the "start" event records the thread count
        events.push_back(std::move(e));
      }
      if (hash.empty()) {
        hash = r->model_hash;
        reference = std::move(events);
        EXPECT_GT(r->lost, 0);
      } else {
        EXPECT_EQ(r->model_hash, hash) << "threads=" << threads;
        EXPECT_EQ(events, reference) << "threads=" << threads;
      }
    }
  }
}

TEST(DynamicsDeterminismTest, AvailabilityDoesNotShiftOtherDraws) {
  // Turning availability on (with periods too long to matter) keeps jitter and dropouts.
  auto d = line_dataset(8);
  auto clients = make_clients(d, 2, 4, {device(3.0), device(5.0)});
  std::vector<std::vector<std::pair<std::string, double>>> logs;
  for (double online : {0.0, 1e9}) {
    SimOptions o = options(50.0, 3);
    o.dynamics.jitter = 0.3;
    o.dynamics.dropout = 0.2;
    o.dynamics.availability.mean_online_s = online;
    Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
    Probe p;
    auto r = sim.run(p);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    std::vector<std::pair<std::string, double>> log;
    for (const auto& rec : p.log) log.emplace_back(rec.what, rec.time);
    logs.push_back(std::move(log));
  }
  EXPECT_EQ(logs[0], logs[1]);
}

TEST(DynamicsOptionsTest, InvalidDynamicsAreRejectedByRun) {
  auto d = line_dataset(4);
  auto clients = make_clients(d, 1, 4, {device(1.0)});
  SimOptions o = options(10.0, 1);
  o.dynamics.dropout = 1.0;
  Simulator sim(o, quadratic_factory(2), clients, Shard::all(d), nullptr);
  Probe p;
  auto r = sim.run(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "clients.dropout: must be in [0, 1), got 1");
}

}  // namespace
}  // namespace cohort::sim
