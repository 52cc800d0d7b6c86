#include "cohort/strategy/harness.h"

#include <algorithm>

namespace cohort::harness {

void ManualHost::add_client(ClientId id, int64_t num_examples, int64_t steps) {
  ClientInfo info;
  info.id = id;
  info.num_examples = num_examples;
  clients_[id] = info;
  steps_[id] = steps;
  idle_.insert(id);
}

void ManualHost::set_idle(ClientId id, bool idle) {
  if (idle)
    idle_.insert(id);
  else
    idle_.erase(id);
}

std::vector<ClientId> ManualHost::client_ids() const {
  std::vector<ClientId> ids;
  ids.reserve(clients_.size());
  for (const auto& [id, info] : clients_) ids.push_back(id);
  return ids;
}

void ManualHost::dispatch(Task task) {
  idle_.erase(task.client);
  dispatched.push_back(std::move(task));
}

TimerId ManualHost::set_timer(double delay_s) {
  timers[next_timer_] = now_ + delay_s;
  return next_timer_++;
}

std::vector<Task> ManualHost::take_tasks() {
  std::vector<Task> t = std::move(dispatched);
  dispatched.clear();
  return t;
}

ArrayRecord make_vector(const std::vector<float>& values) {
  auto layout = *ArrayLayout::create({{"w", {static_cast<int64_t>(values.size())}}});
  ArrayRecord r(layout);
  std::copy(values.begin(), values.end(), r.data());
  return r;
}

std::vector<float> values(const ArrayRecord& r) { return {r.flat().begin(), r.flat().end()}; }

Update update_with_delta(const Task& task, std::span<const float> delta, int64_t examples) {
  Update u;
  u.client = task.client;
  u.base_version = task.version;
  u.delta = task.model->clone();
  std::span<float> d = u.delta.flat();
  const size_t n = std::min(d.size(), delta.size());
  std::copy(delta.begin(), delta.begin() + static_cast<std::ptrdiff_t>(n), d.begin());
  u.num_examples = examples;
  u.local_steps = task.local_steps;
  return u;
}

Update make_update(const Task& task, const std::vector<float>& end, int64_t examples) {
  Update u;
  u.client = task.client;
  u.base_version = task.version;
  u.delta = task.model->clone();
  for (size_t i = 0; i < end.size(); ++i) u.delta.flat()[i] -= end[i];
  u.num_examples = examples;
  u.local_steps = task.local_steps;
  return u;
}

Status deliver_update(ManualHost& host, Strategy& s, Update update) {
  const ClientId c = update.client;
  host.set_idle(c, true);
  Status st = s.on_update(std::move(update));
  const auto idle = host.idle_clients();
  if (std::find(idle.begin(), idle.end(), c) != idle.end()) s.on_client_idle(c);
  return st;
}

Status deliver(ManualHost& host, Strategy& s, const Task& t, const std::vector<float>& end,
               int64_t examples) {
  return deliver_update(host, s, make_update(t, end, examples));
}

Status deliver_delta(ManualHost& host, Strategy& s, const Task& t, std::span<const float> delta,
                     int64_t examples) {
  return deliver_update(host, s, update_with_delta(t, delta, examples));
}

std::vector<Task> open_round(ManualHost& host, Strategy& s, const std::vector<ClientId>& clients) {
  for (ClientId id : clients) host.set_idle(id, true);
  if (!clients.empty()) s.on_client_idle(clients.front());
  return host.take_tasks();
}

bool run_round(ManualHost& host, Strategy& s, const std::vector<ClientId>& clients,
               const std::vector<std::vector<float>>& deltas, const std::vector<int64_t>& examples) {
  std::vector<Task> tasks = open_round(host, s, clients);
  if (tasks.size() != clients.size()) return false;
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].client != clients[i]) return false;
    if (!s.on_update(update_with_delta(tasks[i], deltas[i], examples[i])).ok()) return false;
  }
  return true;
}

bool lose_round(ManualHost& host, Strategy& s, const std::vector<ClientId>& clients) {
  std::vector<Task> tasks = open_round(host, s, clients);
  if (tasks.size() != clients.size()) return false;
  for (const Task& t : tasks) s.on_task_lost(t.client, t.version);
  return true;
}

Task task_of(const ManualHost& host, ClientId id) {
  for (auto it = host.dispatched.rbegin(); it != host.dispatched.rend(); ++it) {
    if (it->client == id) return *it;
  }
  return {};
}

bool has_task(const ManualHost& host, ClientId id) {
  return std::any_of(host.dispatched.begin(), host.dispatched.end(),
                     [id](const Task& t) { return t.client == id; });
}

}  // namespace cohort::harness
