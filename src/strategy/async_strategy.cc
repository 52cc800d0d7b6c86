#include "cohort/strategy/async_strategy.h"

namespace cohort {

AsyncOptions AsyncOptions::read(StrategyParams& p) {
  AsyncOptions o;
  o.max_concurrency = p.integer("max_concurrency", o.max_concurrency);
  p.check(o.max_concurrency >= 0, "max_concurrency", "must be >= 0 (0 = no limit)",
          static_cast<double>(o.max_concurrency));
  o.max_staleness = p.integer("max_staleness", o.max_staleness);
  p.check(o.max_staleness >= -1, "max_staleness", "must be >= -1 (-1 = no limit)",
          static_cast<double>(o.max_staleness));
  return o;
}

Task AsyncStrategy::make_task(ClientId id) {
  Task t;
  t.client = id;
  t.version = version_;
  t.model = model_;
  t.local_steps = host_->default_local_steps(id);
  return t;
}

void AsyncStrategy::dispatch_to(ClientId id) {
  Task t = make_task(id);
  in_flight_[id] = t.model;
  host_->dispatch(std::move(t));
}

void AsyncStrategy::on_client_idle(ClientId id) {
  if (in_flight_.count(id) != 0) return;
  if (group_excluded(id)) return;  // trust below robust.trust_threshold
  if (async_.max_concurrency > 0 && outstanding() >= async_.max_concurrency) return;
  dispatch_to(id);
}

void AsyncStrategy::fill_slots() {
  if (async_.max_concurrency == 0) {
    // Unlimited: every idle client trains (the runtime also calls on_client_idle for each).
    for (ClientId id : host_->idle_clients()) {
      if (in_flight_.count(id) == 0 && !group_excluded(id)) dispatch_to(id);
    }
    return;
  }
  while (outstanding() < async_.max_concurrency) {
    // A client with a task is not idle to the host, so without a trust threshold the host's
    // idle view is the list below, and one draw from it costs O(log clients), not O(clients).
    // A privacy stage excludes only the few clients whose updates are in its open group: a
    // draw that hits one is drawn again (without a privacy stage the first draw is taken).
    if (!group_may_exclude()) {
      const IdleClients view = host_->idle_view();
      if (view.empty()) return;
      bool placed = false;
      for (int draw = 0; draw < 8 && !placed; ++draw) {
        const ClientId pick = view[static_cast<int64_t>(
            host_->rng().uniform_int(static_cast<uint64_t>(view.size())))];
        if (in_flight_.count(pick) == 0 && !group_excluded(pick)) {
          dispatch_to(pick);
          placed = true;
        }
      }
      if (placed) continue;
      // Eight draws in the open group: the list below decides.
    }
    std::vector<ClientId> idle;
    for (ClientId id : host_->idle_clients()) {
      if (in_flight_.count(id) == 0 && !group_excluded(id)) idle.push_back(id);
    }
    if (idle.empty()) return;
    dispatch_to(idle[host_->rng().uniform_int(idle.size())]);
  }
}

Status AsyncStrategy::on_update(Update update) {
  auto it = in_flight_.find(update.client);
  if (it == in_flight_.end()) {
    return Status::failed_precondition("update from client " + std::to_string(update.client) +
                                       ": no task outstanding for it");
  }
  current_base_ = std::move(it->second);
  in_flight_.erase(it);
  Status s = validate_update(update);
  if (s.ok() && !current_base_) {
    // Restored from a checkpoint without its model: the runtime reports such tasks lost.
    s = Status::failed_precondition("update from client " + std::to_string(update.client) +
                                    ": its task predates the restart");
  }
  const int64_t staleness = version_ - update.base_version;
  if (s.ok() && async_.max_staleness >= 0 && staleness > async_.max_staleness) {
    s = Status::failed_precondition("update from client " + std::to_string(update.client) +
                                    " has staleness " + std::to_string(staleness) +
                                    ", above max_staleness " +
                                    std::to_string(async_.max_staleness));
  }
  if (s.ok()) s = apply(update, staleness);
  current_base_.reset();
  fill_slots();
  return s;
}

void AsyncStrategy::on_task_lost(ClientId id, ModelVersion /*version*/) {
  in_flight_.erase(id);
  fill_slots();
}

Status AsyncStrategy::io_async_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(io_base_state(io));
  std::vector<ClientId> in_flight;
  for (const auto& [id, base] : in_flight_) in_flight.push_back(id);
  io.value("in_flight", in_flight);
  if (io.loading() && io.status().ok()) {
    in_flight_.clear();
    for (ClientId id : in_flight) in_flight_[id] = nullptr;
  }
  return io.status();
}

}  // namespace cohort
