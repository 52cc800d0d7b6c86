// FakeHost: a StrategyHost driven by hand, for unit tests of strategies.
//
// Tests register clients, call strategy events directly and inspect what the strategy
// dispatched, which timers it set and which versions it committed. Time moves only when
// the test calls advance().
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "cohort/strategy/strategy.h"

namespace cohort::testing {

class FakeHost : public StrategyHost {
 public:
  explicit FakeHost(uint64_t seed = 1) : rng_(seed) {}

  void add_client(ClientId id, int64_t num_examples, int64_t steps = 1) {
    ClientInfo info;
    info.id = id;
    info.num_examples = num_examples;
    clients_[id] = info;
    steps_[id] = steps;
    idle_.insert(id);
  }
  void set_idle(ClientId id, bool idle) {
    if (idle)
      idle_.insert(id);
    else
      idle_.erase(id);
  }
  void advance(double dt) { now_ += dt; }
  // What the runtime would have measured from completed tasks.
  void set_measured_speed(ClientId id, double steps_per_s) {
    clients_.at(id).measured_speed = steps_per_s;
  }

  double now() const override { return now_; }
  std::vector<ClientId> idle_clients() const override { return {idle_.begin(), idle_.end()}; }
  size_t num_clients() const override { return clients_.size(); }
  const ClientInfo& client_info(ClientId id) const override { return clients_.at(id); }
  int64_t default_local_steps(ClientId id) const override { return steps_.at(id); }
  void dispatch(Task task) override {
    idle_.erase(task.client);
    dispatched.push_back(std::move(task));
  }
  TimerId set_timer(double delay_s) override {
    timers[next_timer_] = now_ + delay_s;
    return next_timer_++;
  }
  void cancel_timer(TimerId id) override { timers.erase(id); }
  void on_commit(ModelVersion version) override { commits.push_back(version); }
  Rng& rng() override { return rng_; }
  void emit(Json event) override { events.push_back(std::move(event)); }

  // Takes the tasks dispatched so far.
  std::vector<Task> take_tasks() {
    std::vector<Task> t = std::move(dispatched);
    dispatched.clear();
    return t;
  }

  std::vector<Task> dispatched;
  std::map<TimerId, double> timers;
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
inline ArrayRecord make_vector(const std::vector<float>& values) {
  auto layout = *ArrayLayout::create({{"w", {static_cast<int64_t>(values.size())}}});
  ArrayRecord r(layout);
  std::copy(values.begin(), values.end(), r.data());
  return r;
}

// An update from `task` whose client ended at parameters `end` (delta = start - end).
inline Update make_update(const Task& task, const std::vector<float>& end, int64_t examples) {
  Update u;
  u.client = task.client;
  u.base_version = task.version;
  u.delta = task.model->clone();
  for (size_t i = 0; i < end.size(); ++i) u.delta.flat()[i] -= end[i];
  u.num_examples = examples;
  u.local_steps = task.local_steps;
  return u;
}

inline std::vector<float> values(const ArrayRecord& r) {
  return {r.flat().begin(), r.flat().end()};
}

// The runtimes' protocol for an arriving update: the reporting client becomes idle, the
// strategy gets on_update, then on_client_idle if the client is still idle.
inline Status deliver(FakeHost& host, Strategy& s, const Task& t, const std::vector<float>& end,
                      int64_t examples = 10) {
  host.set_idle(t.client, true);
  Status st = s.on_update(make_update(t, end, examples));
  const auto idle = host.idle_clients();
  if (std::find(idle.begin(), idle.end(), t.client) != idle.end()) s.on_client_idle(t.client);
  return st;
}

// The latest task dispatched to `id` (a default Task if none: check with has_task).
inline Task task_of(const FakeHost& host, ClientId id) {
  for (auto it = host.dispatched.rbegin(); it != host.dispatched.rend(); ++it) {
    if (it->client == id) return *it;
  }
  return {};
}

inline bool has_task(const FakeHost& host, ClientId id) {
  return std::any_of(host.dispatched.begin(), host.dispatched.end(), [id](const Task& t) {
    return t.client == id;
  });
}

}  // namespace cohort::testing
