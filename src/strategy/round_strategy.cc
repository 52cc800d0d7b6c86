#include "cohort/strategy/round_strategy.h"

#include <algorithm>
#include <cmath>

#include "cohort/strategy/task_config.h"

namespace cohort {

RoundStrategy::RoundStrategy(RoundOptions options) : options_(options) {}

Task RoundStrategy::make_task(ClientId client) const {
  Task t;
  t.client = client;
  t.version = version_;
  t.model = model_;
  t.local_steps = host_->default_local_steps(client);
  return t;
}

std::vector<Task> RoundStrategy::configure_train(int64_t /*round*/, const IdleClients& all_idle) {
  // Clients whose trust fell below robust.trust_threshold are not sampled (a list, then).
  const bool filter = group_may_exclude();
  IdleClients trusted;
  if (filter) {
    std::vector<ClientId> ids;
    for (int64_t i = 0; i < all_idle.size(); ++i) {
      if (!group_excluded(all_idle[i])) ids.push_back(all_idle[i]);
    }
    trusted = IdleClients(std::move(ids));
  }
  const IdleClients& idle = filter ? trusted : all_idle;
  const int64_t n = idle.size();
  int64_t m = static_cast<int64_t>(std::ceil(options_.fraction * static_cast<double>(n) - 1e-9));
  m = std::clamp<int64_t>(std::max(m, options_.min_clients), 0, n);
  std::vector<uint64_t> picks =
      host_->rng().sample_without_replacement(static_cast<uint64_t>(n), static_cast<uint64_t>(m));
  std::sort(picks.begin(), picks.end());
  std::vector<Task> tasks;
  tasks.reserve(picks.size());
  for (ClientId id : idle.at(picks)) tasks.push_back(make_task(id));
  return tasks;
}

void RoundStrategy::on_client_idle(ClientId /*id*/) {
  if (!open_) maybe_start_round();
}

void RoundStrategy::maybe_start_round() {
  if (open_) return;
  const IdleClients idle = host_->idle_view();
  if (idle.size() < std::max<int64_t>(1, options_.min_clients)) return;
  std::vector<Task> tasks = configure_train(round_ + 1, idle);
  if (tasks.empty()) return;
  if (!options_.lr_schedule.is_constant() && lr_schedule_scales_tasks()) {
    const double f = lr_factor(round_ + 1);
    for (Task& t : tasks) set_task_lr_scale(t.config, f);
  }
  ++round_;
  open_ = true;
  pending_.clear();
  report_ = RoundReport{};
  report_.round = round_;
  report_.sampled = static_cast<int64_t>(tasks.size());
  group_clear();
  begin_round(round_);
  // One client at a time, so the first task starts training (in the simulator) while the
  // others are still being handed out; dispatch never calls back into the strategy.
  for (auto& t : tasks) {
    pending_.insert(t.client);
    host_->dispatch(std::move(t));
  }
  if (options_.round_deadline_s > 0) deadline_timer_ = host_->set_timer(options_.round_deadline_s);
}

Status RoundStrategy::on_update(Update update) {
  if (!open_ || update.base_version != version_ || pending_.count(update.client) == 0) {
    ++late_;
    return Status::failed_precondition(
        "update from client " + std::to_string(update.client) + " for version " +
        std::to_string(update.base_version) + " arrived after its round closed (now round " +
        std::to_string(round_) + ", version " + std::to_string(version_) + ")");
  }
  Status s = validate_update(update);
  if (s.ok()) s = accumulate(update);
  // The update is folded in: free its buffer now, before the round may close and allocate the
  // next model, so a commit holds model + accumulator + next model, not also this update.
  update.delta = ArrayRecord();
  update.state_delta = ArrayRecord();
  pending_.erase(update.client);
  if (s.ok()) {
    ++report_.received;
    report_.examples += update.num_examples;
  } else {
    ++report_.rejected;
  }
  if (pending_.empty()) close_round();
  return s;
}

void RoundStrategy::on_task_lost(ClientId id, ModelVersion /*version*/) {
  if (!open_ || pending_.erase(id) == 0) return;
  ++report_.lost;
  if (pending_.empty()) close_round();
}

void RoundStrategy::on_timer(TimerId id) {
  if (!open_ || id != deadline_timer_) return;
  deadline_timer_ = -1;
  report_.timed_out = static_cast<int64_t>(pending_.size());
  pending_.clear();
  close_round();
}

void RoundStrategy::close_round() {
  open_ = false;
  if (deadline_timer_ >= 0) {
    host_->cancel_timer(deadline_timer_);
    deadline_timer_ = -1;
  }
  Json ev = {{"event", "round"},
             {"strategy", name()},
             {"round", report_.round},
             {"sampled", report_.sampled},
             {"received", report_.received},
             {"lost", report_.lost},
             {"timed_out", report_.timed_out},
             {"rejected", report_.rejected},
             {"examples", report_.examples}};
  bool committed = false;
  if (report_.received > 0) {
    Result<std::optional<ArrayRecord>> next = aggregate_train(report_);
    if (!next.ok()) {
      ev["error"] = next.error().to_string();
    } else if (next->has_value()) {
      ev["version"] = version_ + 1;
      host_->emit(ev);
      committed = true;
      commit(std::move(**next));
    }
  }
  if (!committed) {
    ev["version"] = version_;
    host_->emit(ev);
  }
  maybe_start_round();
}

Status RoundStrategy::io_round_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(io_base_state(io));
  io.value("round", round_);
  io.value("round_open", open_);
  io.value("round_pending", pending_);
  io.value("round_sampled", report_.sampled);
  io.value("round_received", report_.received);
  io.value("round_lost", report_.lost);
  io.value("round_timed_out", report_.timed_out);
  io.value("round_rejected", report_.rejected);
  io.value("round_examples", report_.examples);
  io.value("round_deadline_timer", deadline_timer_);
  io.value("late_updates", late_);
  if (io.loading()) report_.round = round_;
  return io.status();
}

std::optional<int64_t> RoundStrategy::group_size(size_t num_clients) const {
  const auto n = static_cast<int64_t>(num_clients);
  int64_t m = static_cast<int64_t>(std::ceil(options_.fraction * static_cast<double>(n) - 1e-9));
  return std::clamp<int64_t>(std::max(m, options_.min_clients), 0, n);
}

Status RoundStrategy::check_population(size_t num_clients) const {
  if (options_.min_clients <= static_cast<int64_t>(num_clients)) return Status();
  return Status::invalid_argument(
      "min_clients: must be <= the number of clients (" + std::to_string(num_clients) + "), got " +
      std::to_string(options_.min_clients) + ": no round could ever start");
}

}  // namespace cohort
