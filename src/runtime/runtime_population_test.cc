// A population registered at once (Runtime::add_population, the simulator's clients): it reads
// exactly as the same clients registered one by one, and a client gets a record only when
// something about it changes.
#include <algorithm>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/runtime/runtime.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "runtime/runtime_test_host.h"
#include "testing/fake_host.h"

namespace cohort::runtime {
namespace {

using ::cohort::testing::make_vector;

constexpr int kClients = 40;

int64_t examples_of(ClientId id) { return 1 + (id * 7) % 11; }

// The population's counts, as add_population takes them.
const std::vector<int64_t>& population_examples() {
  static const std::vector<int64_t> counts = [] {
    std::vector<int64_t> c(kClients);
    for (int i = 0; i < kClients; ++i) c[static_cast<size_t>(i)] = examples_of(i);
    return c;
  }();
  return counts;
}

// FedAvg that counts the clients it is offered.
class CountingFedAvg : public FedAvg {
 public:
  using FedAvg::FedAvg;
  void on_client_idle(ClientId id) override {
    ++offers;
    FedAvg::on_client_idle(id);
  }
  int offers = 0;
};

// One runtime over kClients clients, registered one by one or as a population.
struct Clients {
  explicit Clients(bool population,
                   FedAvgOptions o = {.round = {.fraction = 0.2, .min_clients = 2}})
      : strategy(o),
        rt(options_with([](RuntimeOptions& r) {
             r.seed = 7;
           }),
           strategy, host, &hub) {
    host.always = true;
    hub.add_sink(sink);
    if (population) {
      rt.add_population(population_examples(), /*available=*/true);
    } else {
      for (int i = 0; i < kClients; ++i) {
        rt.add_client(i, examples_of(i));
        rt.set_available(i, true);
      }
    }
  }
  // The clients of the tasks launched so far.
  std::vector<ClientId> launched_clients() const {
    std::vector<ClientId> out;
    for (int64_t id : host.launched) {
      if (const TaskRecord* r = rt.task(id)) out.push_back(r->task.client);
    }
    return out;
  }
  // Every task in flight returns an update of `value`.
  void answer_all(float value) {
    const std::vector<int64_t> ids = host.launched;
    host.launched.clear();
    for (int64_t id : ids) {
      const TaskRecord* r = rt.task(id);
      if (r == nullptr) continue;
      Update u;
      u.delta = make_vector({value + static_cast<float>(r->task.client)});
      u.num_examples = examples_of(r->task.client);
      u.local_steps = 1;
      u.base_version = r->task.version;
      ASSERT_TRUE(rt.receive(id, std::move(u), 4).ok());
      rt.after_event();
    }
  }
  TestHost host;
  MetricsHub hub;
  std::shared_ptr<MemorySink> sink = std::make_shared<MemorySink>();
  CountingFedAvg strategy;
  Runtime rt;
};

TEST(RuntimePopulationTest, ReadsAsTheSameClientsRegisteredOneByOne) {
  Clients one(false);
  Clients all(true);
  EXPECT_EQ(all.rt.num_clients(), static_cast<size_t>(kClients));
  EXPECT_EQ(all.rt.client_ids(), one.rt.client_ids());
  for (ClientId id = 0; id < kClients; ++id) {
    EXPECT_EQ(all.rt.client_info(id).id, id);
    EXPECT_EQ(all.rt.client_info(id).num_examples, examples_of(id));
    EXPECT_TRUE(all.rt.available(id));
    EXPECT_TRUE(all.rt.is_idle(id));
  }
  EXPECT_FALSE(all.rt.has_client(kClients));
  EXPECT_EQ(all.rt.client_info(kClients).id, -1);
  EXPECT_EQ(all.rt.idle_view().to_vector(), one.rt.idle_clients());
  ASSERT_TRUE(one.rt.start(make_vector({0.0f}), {}).ok());
  ASSERT_TRUE(all.rt.start(make_vector({0.0f}), {}).ok());
  // Three rounds, with a client going offline and one coming back between them: the same
  // samples, the same models.
  for (int round = 0; round < 3; ++round) {
    one.rt.offer_all();
    all.rt.offer_all();
    ASSERT_EQ(all.launched_clients().size(), 8u) << round;  // 20% of 40
    EXPECT_EQ(all.launched_clients(), one.launched_clients()) << round;
    EXPECT_EQ(all.rt.idle_view().to_vector(), one.rt.idle_view().to_vector()) << round;
    EXPECT_EQ(all.rt.idle_clients(), one.rt.idle_clients()) << round;
    one.answer_all(0.5f);
    all.answer_all(0.5f);
    for (Clients* r : {&one, &all}) {
      r->rt.set_available(3 + round, false);
      r->rt.set_available(2 + round, true);
    }
  }
  EXPECT_EQ(all.strategy.version(), 3);
  EXPECT_EQ(all.strategy.global_model()->hash_hex(), one.strategy.global_model()->hash_hex());
  Result<RunSummary> a = all.rt.finish();
  Result<RunSummary> b = one.rt.finish();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->idle_clients, b->idle_clients);
  EXPECT_GT(a->idle_clients, 0);
  ASSERT_EQ(a->client_stats.size(), b->client_stats.size());
  for (size_t i = 0; i < a->client_stats.size(); ++i) {
    EXPECT_EQ(a->client_stats[i].id, b->client_stats[i].id);
    EXPECT_EQ(a->client_stats[i].updates_accepted, b->client_stats[i].updates_accepted);
  }
}

TEST(RuntimePopulationTest, OfferAllStopsWhenTheStrategyWantsNoMoreClients) {
  Clients run(true);
  ASSERT_TRUE(run.rt.start(make_vector({0.0f}), {}).ok());
  run.rt.offer_all();
  // The first client opened the round (sampling 8 of 40); nobody else was asked.
  EXPECT_EQ(run.strategy.offers, 1);
  EXPECT_EQ(run.host.launched.size(), 8u);
  run.rt.offer_all();  // the round is open: not even one call
  EXPECT_EQ(run.strategy.offers, 1);

  // An asynchronous strategy is offered clients until its slots are full.
  TestHost host;
  host.always = true;
  FedBuff buff({.async = {.max_concurrency = 3}, .buffer_size = 2});
  Runtime rt({}, buff, host, nullptr);
  rt.add_population(population_examples(), true);
  ASSERT_TRUE(rt.start(make_vector({0.0f}), {}).ok());
  rt.offer_all();
  ASSERT_EQ(host.launched.size(), 3u);
  EXPECT_EQ(rt.task(host.launched[0])->task.client, 0);
  EXPECT_EQ(rt.task(host.launched[2])->task.client, 2);
  // Unlimited: every idle client.
  TestHost h2;
  h2.always = true;
  FedBuff unlimited({.buffer_size = 2});
  Runtime rt2({}, unlimited, h2, nullptr);
  rt2.add_population(population_examples(), true);
  ASSERT_TRUE(rt2.start(make_vector({0.0f}), {}).ok());
  rt2.offer_all();
  EXPECT_EQ(h2.launched.size(), static_cast<size_t>(kClients));
}

TEST(RuntimePopulationTest, ACheckpointHoldsOnlyTheClientsThatChangedAndRestoresThem) {
  Clients run(true);
  ASSERT_TRUE(run.rt.start(make_vector({0.0f}), {}).ok());
  run.rt.offer_all();
  const std::vector<ClientId> sampled = run.launched_clients();
  run.answer_all(0.25f);
  const std::vector<ClientId> training = run.launched_clients();  // the second round's
  ASSERT_EQ(training.size(), 8u);
  run.rt.set_available(39, false);  // one more client with a record
  std::set<ClientId> changed(sampled.begin(), sampled.end());
  changed.insert(training.begin(), training.end());
  changed.insert(39);
  Result<Checkpoint> c = run.rt.checkpoint();
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  std::vector<ClientId> listed;
  for (const Json& client : c->runtime.at("clients")) {
    const auto id = client.at("id").get<ClientId>();
    listed.push_back(id);
    const bool took_part = std::count(sampled.begin(), sampled.end(), id) == 1;
    EXPECT_EQ(client.at("tasks_done"), took_part ? 1 : 0) << id;
  }
  EXPECT_EQ(listed, std::vector<ClientId>(changed.begin(), changed.end()));  // ascending
  EXPECT_LT(listed.size(), static_cast<size_t>(kClients));

  TestHost host;
  host.always = true;
  FedAvg again(FedAvgOptions{.round = {.fraction = 0.2, .min_clients = 2}});
  Runtime rt({}, again, host, nullptr);
  rt.add_population(population_examples(), true);
  ASSERT_TRUE(rt.start(make_vector({0.0f}), {}, std::move(*c)).ok());
  EXPECT_EQ(again.version(), 1);
  for (ClientId id = 0; id < kClients; ++id) {
    // After a restore nobody is available until the host says so.
    EXPECT_FALSE(rt.available(id)) << id;
    const bool took_part = std::count(sampled.begin(), sampled.end(), id) == 1;
    EXPECT_EQ(rt.client_info(id).tasks_done, took_part ? 1 : 0) << id;
    EXPECT_EQ(rt.client_info(id).num_examples, examples_of(id)) << id;
  }
  EXPECT_TRUE(rt.idle_view().empty());
  rt.set_available(5, true);
  rt.set_available(6, true);
  EXPECT_EQ(rt.idle_view().to_vector(), (std::vector<ClientId>{5, 6}));
}

}  // namespace
}  // namespace cohort::runtime
