// Helpers that drive whole rounds of a RoundStrategy on a FakeHost, for strategy unit tests
// that follow a model over several rounds.
#pragma once

#include <vector>

#include "testing/fake_host.h"

namespace cohort::testing {

// An update from `task` whose pseudo-gradient (start - end) is `delta`.
inline Update update_with_delta(const Task& task, const std::vector<float>& delta,
                                int64_t examples) {
  Update u;
  u.client = task.client;
  u.base_version = task.version;
  u.delta = task.model->clone();
  for (size_t i = 0; i < delta.size(); ++i) u.delta.flat()[i] = delta[i];
  u.num_examples = examples;
  u.local_steps = task.local_steps;
  return u;
}

// Marks `clients` idle and lets the strategy open a round; returns the tasks it dispatched.
inline std::vector<Task> open_round(FakeHost& host, Strategy& s,
                                    const std::vector<ClientId>& clients) {
  for (ClientId id : clients) host.set_idle(id, true);
  s.on_client_idle(clients.front());
  return host.take_tasks();
}

// Opens a round with `clients` (ascending ids; fraction 1.0 samples them all) and sends
// client i's update with pseudo-gradient deltas[i] and examples[i]. Returns false if the
// round did not dispatch exactly one task per client or an update was rejected.
inline bool run_round(FakeHost& host, Strategy& s, const std::vector<ClientId>& clients,
                      const std::vector<std::vector<float>>& deltas,
                      const std::vector<int64_t>& examples) {
  std::vector<Task> tasks = open_round(host, s, clients);
  if (tasks.size() != clients.size()) return false;
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].client != clients[i]) return false;
    if (!s.on_update(update_with_delta(tasks[i], deltas[i], examples[i])).ok()) return false;
  }
  return true;
}

// Opens a round with `clients` and loses every task: the round closes with no update.
inline bool lose_round(FakeHost& host, Strategy& s, const std::vector<ClientId>& clients) {
  std::vector<Task> tasks = open_round(host, s, clients);
  if (tasks.size() != clients.size()) return false;
  for (const Task& t : tasks) s.on_task_lost(t.client, t.version);
  return true;
}

}  // namespace cohort::testing
