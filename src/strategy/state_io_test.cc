// Checkpoints of every strategy: saved in the middle of a run (an open round, buffered
// updates, groups waiting, timers pending), restored into a fresh strategy, and continued
// with the same events, the restored strategy must behave exactly like the original one.
// Also StateIO's errors for missing, mistyped and mismatched entries.
#include "cohort/strategy/state_io.h"

#include <gtest/gtest.h>

#include "cohort/strategy/registry.h"
#include "testing/fake_host.h"

namespace cohort {
namespace {

using testing::FakeHost;

ArrayRecord initial_model() {
  // A trainable weight and a non-trainable buffer (FedCompass averages the latter).
  auto layout = *ArrayLayout::create({{"w", {6}, true}, {"bn", {2}, false}});
  ArrayRecord r(layout);
  for (int64_t i = 0; i < r.numel(); ++i) r.flat()[i] = 0.1f * static_cast<float>(i + 1);
  return r;
}

ConfigRecord params_for(const std::string& name) {
  const ConfigRecord round = {
      {"min_clients", int64_t{2}}, {"fraction", 0.5}, {"round_deadline_s", 4.0}};
  if (name == "fedasync") return {{"max_concurrency", int64_t{3}}};
  if (name == "fedbuff") return {{"buffer_size", int64_t{3}}, {"server_momentum", 0.5}};
  if (name == "async_local_sgd") return {};
  if (name == "fedast") {
    return {{"buffer_size", int64_t{3}}, {"window", int64_t{2}}, {"realloc_every", int64_t{3}}};
  }
  if (name == "fedcompass") {
    return {{"min_local_steps", int64_t{2}}, {"max_local_steps", int64_t{6}}};
  }
  ConfigRecord p = round;
  if (name == "fedavgm") p["server_momentum"] = 0.5;
  if (name == "streaming_diloco") {
    p["inner_steps"] = int64_t{4};
    p["fragments"] = int64_t{2};
    p["fragment_block"] = int64_t{1};
  }
  return p;
}

// Plays a run like the runtime would, with the event choices drawn from `events`.
struct Driver {
  FakeHost host;
  std::unique_ptr<Strategy> strategy;
  std::vector<Task> outstanding;
  std::vector<std::string> log;  // what happened, to compare two runs

  void collect() {
    for (Task& t : host.take_tasks()) {
      log.push_back("task " + std::to_string(t.client) + "@" + std::to_string(t.version) + "x" +
                    std::to_string(t.local_steps));
      outstanding.push_back(std::move(t));
    }
  }
  void offer(ClientId id) {
    const auto idle = host.idle_clients();
    if (std::find(idle.begin(), idle.end(), id) != idle.end()) strategy->on_client_idle(id);
  }
  void step(Rng& events) {
    const double r = events.uniform();
    if (!host.timers.empty() && r < 0.15) {
      auto due = std::min_element(host.timers.begin(), host.timers.end(),
                                  [](const auto& a, const auto& b) {
                                    return a.second < b.second;
                                  });
      const TimerId id = due->first;
      host.advance(std::max(0.0, due->second - host.now()));
      host.timers.erase(due);
      strategy->on_timer(id);
      log.push_back("timer " + std::to_string(id));
    } else if (!outstanding.empty()) {
      const size_t i = events.uniform_int(outstanding.size());
      Task t = std::move(outstanding[i]);
      outstanding.erase(outstanding.begin() + static_cast<std::ptrdiff_t>(i));
      host.advance(0.5 + events.uniform());
      host.set_idle(t.client, true);
      if (events.uniform() < 0.15) {
        strategy->on_task_lost(t.client, t.version);
        log.push_back("lost " + std::to_string(t.client));
      } else {
        Update u;
        u.client = t.client;
        u.base_version = t.version;
        u.delta = ArrayRecord(t.model->layout());
        for (float& v : u.delta.flat()) v = static_cast<float>(events.uniform(-0.1, 0.1));
        if (t.server_state) {
          u.state_delta = ArrayRecord(t.server_state->layout());
          for (float& v : u.state_delta.flat()) v = static_cast<float>(events.uniform(-0.1, 0.1));
        }
        u.num_examples = 1 + static_cast<int64_t>(events.uniform_int(20));
        u.local_steps = t.local_steps;
        Status s = strategy->on_update(std::move(u));
        log.push_back("update " + std::to_string(t.client) + (s.ok() ? " ok" : " rejected"));
      }
      offer(t.client);
    }
    collect();
  }
  // What the runtime does after a restore: every task in flight is lost, then clients come
  // back as they poll.
  void restart() {
    for (const Task& t : outstanding) host.set_idle(t.client, false);
    for (const Task& t : outstanding) strategy->on_task_lost(t.client, t.version);
    const std::vector<Task> was = std::move(outstanding);
    outstanding.clear();
    for (const Task& t : was) host.set_idle(t.client, true);
    for (const Task& t : was) offer(t.client);
    collect();
  }
};

class StrategyCheckpoint : public ::testing::TestWithParam<std::string> {};

// Whether a saved state holds work in progress: updates folded into an open round, a buffer
// or a group that has not been aggregated yet.
bool holds_work_in_progress(const StrategyState& st) {
  const Json& s = st.scalars;
  if (s.contains("round_open") && s["round_open"].get<bool>() &&
      s["round_received"].get<int64_t>() > 0) {
    return true;
  }
  if (s.contains("buffer_count") && s["buffer_count"].get<int64_t>() > 0) return true;
  if (s.contains("groups")) {
    for (const Json& g : s["groups"]) {
      if (!g.at(2).empty()) return true;  // members arrived, waiting for aggregation
    }
  }
  if (s.contains("pushes") && st.arrays.count("buffer") != 0) {
    for (float v : st.arrays.at("buffer").flat()) {
      if (v != 0.0f) return true;
    }
  }
  return false;
}

TEST_P(StrategyCheckpoint, RestoredMidRunBehavesLikeTheOriginal) {
  const std::string name = GetParam();
  const ConfigRecord params = params_for(name);
  int saved_in_progress = 0;
  for (int save_at : {3, 8, 11, 17, 26, 33, 45, 58, 70}) {
    SCOPED_TRACE(name + " saved after " + std::to_string(save_at) + " events");
    Driver a;
    for (ClientId id = 0; id < 6; ++id) a.host.add_client(id, 10 + id, 2 + id % 3);
    Result<std::unique_ptr<Strategy>> made = make_strategy(name, params);
    ASSERT_TRUE(made.ok()) << made.error().to_string();
    a.strategy = std::move(*made);
    ASSERT_TRUE(a.strategy->start(&a.host, initial_model()).ok());
    for (ClientId id = 0; id < 6; ++id) a.offer(id);
    a.collect();
    Rng events(42);
    for (int i = 0; i < save_at; ++i) a.step(events);

    StrategyState saved;
    ASSERT_TRUE(a.strategy->save_state(&saved).ok());
    if (holds_work_in_progress(saved)) ++saved_in_progress;
    Driver b;
    b.host = a.host;  // the runtime restores clients, timers, rng and clock itself
    b.outstanding = a.outstanding;
    b.log = a.log;
    b.strategy = std::move(*make_strategy(name, params));
    ASSERT_TRUE(b.strategy->start(&b.host, initial_model()).ok());
    Status restored = b.strategy->restore_state(std::move(saved));
    ASSERT_TRUE(restored.ok()) << restored.to_string();
    EXPECT_EQ(b.strategy->version(), a.strategy->version());

    Rng events_b = events;
    a.restart();
    b.restart();
    for (int i = 0; i < 40; ++i) {
      a.step(events);
      b.step(events_b);
    }
    EXPECT_EQ(a.log, b.log);
    EXPECT_EQ(a.strategy->version(), b.strategy->version());
    EXPECT_EQ(a.strategy->global_model()->hash_hex(), b.strategy->global_model()->hash_hex());
    EXPECT_GT(a.strategy->version(), 0);
  }
  // FedAsync commits every update: it never holds any.
  if (name != "fedasync") EXPECT_GT(saved_in_progress, 0);
}

INSTANTIATE_TEST_SUITE_P(All, StrategyCheckpoint, ::testing::ValuesIn(strategy_names()),
                         [](const auto& info) {
                           return info.param;
                         });

TEST(StateIO, NamesMissingAndMistypedEntries) {
  StrategyState st;
  int64_t n = 7;
  ArrayRecord a = testing::make_vector({1, 2, 3});
  {
    StateIO io = StateIO::saver(&st, "algo");
    io.value("n", n);
    io.array("a", a);
    ArrayRecord none;
    io.array("none", none);
    ASSERT_TRUE(io.status().ok());
  }
  {
    StrategyState copy{st.scalars, {}};
    copy.arrays.emplace("a", st.arrays.at("a").clone());
    StateIO io = StateIO::loader(&copy, "algo");
    int64_t m = 0;
    io.value("n", m);
    ArrayRecord b = testing::make_vector({0, 0, 0});
    io.array("a", b);
    ArrayRecord none = testing::make_vector({5});
    io.array("none", none);
    ASSERT_TRUE(io.status().ok()) << io.status().to_string();
    EXPECT_EQ(m, 7);
    EXPECT_EQ(testing::values(b), (std::vector<float>{1, 2, 3}));
    EXPECT_TRUE(none.empty());
  }
  {
    StrategyState copy{st.scalars, {}};
    StateIO io = StateIO::loader(&copy, "algo");
    int64_t m = 0;
    io.value("missing", m);
    io.value("n", m);  // ignored after the first problem
    EXPECT_EQ(io.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(io.status().message(), "algo: checkpoint has no \"missing\"");
    EXPECT_EQ(m, 0);
  }
  {
    StrategyState copy{st.scalars, {}};
    StateIO io = StateIO::loader(&copy, "algo");
    std::string text;
    io.value("n", text);
    EXPECT_EQ(io.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(io.status().message().find("\"n\""), std::string::npos) << io.status().message();
  }
  {
    StrategyState copy{st.scalars, {}};
    StateIO io = StateIO::loader(&copy, "algo");
    ArrayRecord b = testing::make_vector({0, 0, 0});
    io.array("a", b);  // not in `arrays`
    EXPECT_EQ(io.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(io.status().message(), "algo: checkpoint has no array \"a\"");
  }
  {
    StrategyState copy{st.scalars, {}};
    copy.arrays.emplace("a", st.arrays.at("a").clone());
    StateIO io = StateIO::loader(&copy, "algo");
    ArrayRecord b = testing::make_vector({0, 0});
    io.array("a", b);  // another shape
    EXPECT_EQ(io.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(testing::values(b), (std::vector<float>{0, 0}));
  }
  {
    StrategyState copy{st.scalars, {}};
    ArrayRecord bad = testing::make_vector({1, std::numeric_limits<float>::quiet_NaN(), 3});
    copy.arrays.emplace("a", std::move(bad));
    StateIO io = StateIO::loader(&copy, "algo");
    ArrayRecord b = testing::make_vector({0, 0, 0});
    io.array("a", b);
    EXPECT_EQ(io.status().code(), StatusCode::kDataLoss);
  }
}

TEST(StateIO, StrategyRefusesAnotherModelLayout) {
  auto s = std::move(*make_strategy("fedavg", {}));
  FakeHost host;
  ASSERT_TRUE(s->start(&host, testing::make_vector({1, 2, 3})).ok());
  StrategyState st;
  ASSERT_TRUE(s->save_state(&st).ok());
  auto t = std::move(*make_strategy("fedavg", {}));
  ASSERT_TRUE(t->start(&host, testing::make_vector({1, 2, 3, 4})).ok());
  Status r = t->restore_state(std::move(st));
  EXPECT_EQ(r.code(), StatusCode::kInvalidArgument) << r.to_string();
  EXPECT_NE(r.message().find("fedavg"), std::string::npos) << r.to_string();
}

}  // namespace
}  // namespace cohort
