// Driving a strategy without a runtime: for unit tests of a strategy, for trying an
// aggregation rule on hand-made updates, and for the Python module's pure-math calls.
//
// ManualHost is a StrategyHost whose clients, idle set and clock are set by hand; it records
// what the strategy dispatched, which timers it set, which versions it committed and which
// events it emitted. Time moves only when the caller calls advance(); timers fire only when
// the caller calls Strategy::on_timer. The free functions below follow the runtimes' protocol
// for the common steps (open a round, deliver an update, lose a task).
//
//   harness::ManualHost host;
//   for (ClientId c = 0; c < 3; ++c) host.add_client(c, /*num_examples=*/100);
//   auto s = make_strategy("fedavg", {}).value();
//   s->start(&host, harness::make_vector({0, 0}));
//   std::vector<Task> tasks = harness::open_round(host, *s, {0, 1, 2});
//   for (const Task& t : tasks) harness::deliver_delta(host, *s, t, {0.5f, -1.0f}, 100);
//   // host.commits == {1}; s->global_model() == {-0.5, 1.0} (server lr 1)
//
// Not thread-safe: one thread drives the host and the strategy.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <vector>

#include "cohort/strategy/strategy.h"

namespace cohort::harness {

class ManualHost : public StrategyHost {
 public:
  explicit ManualHost(uint64_t seed = 1) : rng_(seed) {}

  // Registers client `id` (idle) with its example count and the local steps its tasks
  // default to.
  void add_client(ClientId id, int64_t num_examples, int64_t steps = 1);
  void set_idle(ClientId id, bool idle);
  void advance(double dt) { now_ += dt; }
  // What the runtime would have measured from completed tasks.
  void set_measured_speed(ClientId id, double steps_per_s) {
    clients_.at(id).measured_speed = steps_per_s;
  }

  double now() const override { return now_; }
  std::vector<ClientId> idle_clients() const override { return {idle_.begin(), idle_.end()}; }
  size_t num_clients() const override { return clients_.size(); }
  std::vector<ClientId> client_ids() const override;
  ClientInfo client_info(ClientId id) const override { return clients_.at(id); }
  int64_t default_local_steps(ClientId id) const override { return steps_.at(id); }
  void dispatch(Task task) override;
  TimerId set_timer(double delay_s) override;
  void cancel_timer(TimerId id) override { timers.erase(id); }
  void on_commit(ModelVersion version) override { commits.push_back(version); }
  Rng& rng() override { return rng_; }
  void emit(Json event) override { events.push_back(std::move(event)); }

  // Takes the tasks dispatched so far.
  std::vector<Task> take_tasks();

  std::vector<Task> dispatched;
  std::map<TimerId, double> timers;  // id -> when it fires
  std::vector<ModelVersion> commits;
  std::vector<Json> events;

 private:
  double now_ = 0.0;
  Rng rng_;
  std::map<ClientId, ClientInfo> clients_;
  std::map<ClientId, int64_t> steps_;
  std::set<ClientId> idle_;
  TimerId next_timer_ = 0;
};

// A record with layout {"w": [n]} holding `values`.
ArrayRecord make_vector(const std::vector<float>& values);
std::vector<float> values(const ArrayRecord& r);

// An update from `task` whose pseudo-gradient (start - end) is `delta` (the task model's
// layout, flattened), or whose client ended at parameters `end`.
Update update_with_delta(const Task& task, std::span<const float> delta, int64_t examples);
Update make_update(const Task& task, const std::vector<float>& end, int64_t examples);

// The runtimes' protocol for an arriving update: the reporting client becomes idle, the
// strategy gets on_update, then on_client_idle if the client is still idle.
Status deliver_update(ManualHost& host, Strategy& s, Update update);
Status deliver(ManualHost& host, Strategy& s, const Task& t, const std::vector<float>& end,
               int64_t examples = 10);
Status deliver_delta(ManualHost& host, Strategy& s, const Task& t, std::span<const float> delta,
                     int64_t examples);

// Marks `clients` idle and tells the strategy about the first one (a round strategy samples
// every idle client at once); returns the tasks it dispatched.
std::vector<Task> open_round(ManualHost& host, Strategy& s, const std::vector<ClientId>& clients);
// Opens a round with `clients` (ascending ids; fraction 1.0 samples them all) and sends
// client i's update with pseudo-gradient deltas[i] and examples[i]. False if the round did
// not dispatch exactly one task per client or an update was rejected.
bool run_round(ManualHost& host, Strategy& s, const std::vector<ClientId>& clients,
               const std::vector<std::vector<float>>& deltas, const std::vector<int64_t>& examples);
// Opens a round with `clients` and loses every task: the round closes with no update.
bool lose_round(ManualHost& host, Strategy& s, const std::vector<ClientId>& clients);

// The latest task dispatched to `id` (a default Task if none: check with has_task).
Task task_of(const ManualHost& host, ClientId id);
bool has_task(const ManualHost& host, ClientId id);

}  // namespace cohort::harness
