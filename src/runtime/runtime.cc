#include "cohort/runtime/runtime.h"

#include <algorithm>
#include <cmath>

#include "cohort/core/format.h"

namespace cohort::runtime {

Runtime::Runtime(RuntimeOptions options, Strategy& strategy, RuntimeHost& host, MetricsHub* metrics)
    : options_(std::move(options)),
      strategy_(strategy),
      host_(host),
      metrics_(metrics),
      rng_(Rng::derive(options_.seed, "strategy")),
      next_task_number_(options_.first_task_number) {
  summary_.strategy = strategy_.name();
  summary_.seed = options_.seed;
}

// ---- clients ------------------------------------------------------------------------------

Runtime::Entry* Runtime::find(ClientId id) {
  return const_cast<Entry*>(static_cast<const Runtime*>(this)->find(id));
}

const Runtime::Entry* Runtime::find(ClientId id) const {
  // Dense ids (the simulator's 0..N-1) sit at their own index.
  if (id >= 0 && static_cast<size_t>(id) < entries_.size() &&
      entries_[static_cast<size_t>(id)].info.id == id) {
    return &entries_[static_cast<size_t>(id)];
  }
  auto it = std::lower_bound(entries_.begin(), entries_.end(), id, [](const Entry& e, ClientId v) {
    return e.info.id < v;
  });
  return it != entries_.end() && it->info.id == id ? &*it : nullptr;
}

void Runtime::add_client(ClientId id, int64_t num_examples) {
  typical_dirty_ = true;
  if (Entry* e = find(id)) {
    e->info.num_examples = num_examples;
    return;
  }
  Entry e;
  e.info.id = id;
  e.info.num_examples = num_examples;
  e.stats.id = id;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), id, [](const Entry& x, ClientId v) {
    return x.info.id < v;
  });
  entries_.insert(it, std::move(e));
}

bool Runtime::has_client(ClientId id) const { return find(id) != nullptr; }

void Runtime::set_available(ClientId id, bool available) {
  if (Entry* e = find(id)) e->available = available;
}

bool Runtime::available(ClientId id) const {
  const Entry* e = find(id);
  return e != nullptr && e->available;
}

bool Runtime::idle(const Entry& e) const {
  return e.available && e.task < 0 && host_.reachable(e.info.id);
}

void Runtime::offer(ClientId id) {
  const Entry* e = find(id);
  if (e != nullptr && idle(*e) && !stopping_ && !failure_) strategy_.on_client_idle(id);
}

const TaskRecord* Runtime::task_of(ClientId id) const {
  const Entry* e = find(id);
  return e == nullptr || e->task < 0 ? nullptr : task(e->task);
}

const TaskRecord* Runtime::task(int64_t task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}

ClientStats& Runtime::stats(ClientId id) { return find(id)->stats; }

AdmissionContext Runtime::admission_context(ClientId id) {
  if (typical_dirty_) {
    std::vector<int64_t> counts;
    counts.reserve(entries_.size());
    for (const Entry& e : entries_) {
      if (e.info.num_examples > 0) counts.push_back(e.info.num_examples);
    }
    typical_examples_ = 0;
    if (!counts.empty()) {
      auto mid = counts.begin() + static_cast<std::ptrdiff_t>(counts.size() / 2);
      std::nth_element(counts.begin(), mid, counts.end());
      typical_examples_ = *mid;
    }
    typical_dirty_ = false;
  }
  AdmissionContext ctx;
  ctx.typical_examples = typical_examples_;
  if (const Entry* e = find(id)) ctx.registered_examples = e->info.num_examples;
  return ctx;
}

std::vector<ClientId> Runtime::client_ids() const {
  std::vector<ClientId> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(e.info.id);
  return out;
}

// ---- lifecycle ----------------------------------------------------------------------------

Status Runtime::start(ArrayRecord initial, Json start_fields, std::optional<Checkpoint> resume) {
  const int64_t params = initial.numel();
  COHORT_RETURN_IF_ERROR(strategy_.start(this, std::move(initial)));
  if (resume) {
    const std::string where = "resuming from " + options_.checkpoint_dir;
    if (resume->strategy != strategy_.name()) {
      return Status::invalid_argument(options_.checkpoint_dir + ": checkpoint is for strategy " +
                                      resume->strategy + ", the config says " + strategy_.name());
    }
    COHORT_RETURN_IF_ERROR(strategy_.restore_state(std::move(resume->state)).with_context(where));
    if (resume->rng_state.size() == 4) rng_.set_state(resume->rng_state);
    epoch_ = resume->epoch + 1;
    for (const CheckpointClient& cc : resume->clients) {
      add_client(cc.id, cc.num_examples);
      find(cc.id)->info.tasks_done = cc.tasks_done;
    }
    const Json& k = resume->counters;
    summary_.updates = k.value("updates", int64_t{0});
    summary_.rejected = k.value("rejected", int64_t{0});
    summary_.lost = k.value("lost", int64_t{0});
    summary_.bytes_up = k.value("bytes_up", int64_t{0});
    summary_.bytes_down = k.value("bytes_down", int64_t{0});
    resumed_from_ = strategy_.version();
  } else if (!options_.checkpoint_dir.empty()) {
    // Fail now rather than at the first checkpoint, hours into a run.
    StrategyState probe;
    COHORT_RETURN_IF_ERROR(strategy_.save_state(&probe).with_context("checkpoint_dir"));
  }
  Json ev = {{"event", "start"}, {"strategy", strategy_.name()},       {"clients", entries_.size()},
             {"params", params}, {"max_rounds", options_.max_commits}, {"seed", options_.seed}};
  for (auto& [k, v] : start_fields.items()) ev[k] = v;
  if (resumed_from_ >= 0) ev["resumed_from_version"] = resumed_from_;
  emit(std::move(ev));
  COHORT_RETURN_IF_ERROR(evaluate_now().with_context("evaluating the initial model"));
  if (options_.max_commits > 0 && strategy_.version() >= options_.max_commits) stop("rounds");
  return Status();
}

Status Runtime::evaluate_now() {
  std::shared_ptr<const ArrayRecord> model = strategy_.global_model();
  COHORT_ASSIGN_OR_RETURN(std::optional<Evaluation> result, host_.evaluate(model));
  last_eval_version_ = strategy_.version();
  if (!result) return Status();
  const EvalResult& e = result->central;
  summary_.final_accuracy = e.accuracy;
  summary_.final_loss = e.loss;
  summary_.best_accuracy = std::max(summary_.best_accuracy, e.accuracy);
  const double t = now();
  if (options_.target_accuracy > 0 && !summary_.time_to_target &&
      e.accuracy >= options_.target_accuracy) {
    summary_.time_to_target = t;
  }
  Json ev = {{"event", "eval"},
             {"strategy", strategy_.name()},
             {"round", strategy_.version()},
             {"updates", summary_.updates},
             {"virtual_time_s", t},
             {"wall_time_s", host_.wall_seconds()},
             {"accuracy", e.accuracy},
             {"loss", e.loss},
             {"bytes_up", summary_.bytes_up},
             {"bytes_down", summary_.bytes_down}};
  if (result->fed) {
    const FederatedEval& f = *result->fed;
    ev["fed_accuracy"] = f.accuracy;
    ev["fed_loss"] = f.loss;
    ev["fed_worst10_accuracy"] = f.worst10_accuracy;
    ev["fed_clients"] = result->fed_clients;
    summary_.final_fed_accuracy = f.accuracy;
    summary_.final_fed_worst10_accuracy = f.worst10_accuracy;
  }
  emit(std::move(ev));
  return Status();
}

Result<RunSummary> Runtime::finish(const Json& extra_fields) {
  if (!failure_ && last_eval_version_ != strategy_.version()) {
    Status s = evaluate_now();
    if (!s.ok()) fail(s);
  }
  if (summary_.stop_reason.empty()) summary_.stop_reason = "stopped";
  summary_.virtual_time_s = now();
  summary_.wall_time_s = host_.wall_seconds();
  summary_.rounds = strategy_.version();
  summary_.model_hash = strategy_.global_model()->hash_hex();
  summary_.client_stats.clear();
  summary_.client_stats.reserve(entries_.size());
  for (const Entry& e : entries_) {
    ClientStats st = e.stats;
    if (e.arrived > 0) {
      st.mean_staleness = static_cast<double>(e.staleness_sum) / static_cast<double>(e.arrived);
    }
    summary_.client_stats.push_back(st);
  }
  emit({{"event", "clients"}, {"clients", summary_.client_stats_json()}});
  Json s = {{"event", "summary"}};
  const Json fields = summary_.to_json();
  for (const auto& [k, v] : fields.items()) s[k] = v;
  for (auto& [k, v] : extra_fields.items()) s[k] = v;
  emit(std::move(s));
  if (failure_) return *failure_;
  return summary_;
}

// ---- tasks --------------------------------------------------------------------------------

std::optional<TaskRecord> Runtime::take(int64_t task_id) {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return std::nullopt;
  TaskRecord r = std::move(it->second);
  tasks_.erase(it);
  if (Entry* e = find(r.task.client); e != nullptr && e->task == task_id) e->task = -1;
  return r;
}

Status Runtime::receive(int64_t task_id, Update u, int64_t bytes_up,
                        const AdmissionOutcome& outcome) {
  if (stopping_) return Status::failed_precondition("the run is over");
  std::optional<TaskRecord> rec = take(task_id);
  if (!rec) {
    // Lost (a timeout, the client went offline) while the update was on its way.
    return Status::failed_precondition("task " + std::to_string(task_id) +
                                       " was given up before its update arrived");
  }
  const ClientId c = rec->task.client;
  Entry& e = *find(c);
  const double t = now();
  u.client = c;
  u.base_version = rec->task.version;
  u.dispatched_at = rec->dispatched_at;
  u.arrived_at = t;
  summary_.bytes_up += bytes_up;
  e.info.tasks_done += 1;
  const double elapsed = t - rec->dispatched_at;
  if (elapsed > 0) e.info.measured_speed = static_cast<double>(u.local_steps) / elapsed;
  const int64_t staleness = strategy_.version() - rec->task.version;
  ++e.arrived;
  e.staleness_sum += staleness;
  e.stats.max_staleness = std::max(e.stats.max_staleness, staleness);
  e.stats.steps += u.local_steps;
  // Counted before the call so that an evaluation triggered by this update's commit includes
  // it; taken back if the strategy rejects the update.
  ++summary_.updates;
  receiving_ = true;
  refused_during_receive_ = Status();
  Status s = strategy_.on_update(std::move(u));
  receiving_ = false;
  // A commit this update made non-finite was refused: the update is rejected.
  if (s.ok() && !refused_during_receive_.ok()) s = refused_during_receive_;
  if (!s.ok()) {
    --summary_.updates;
    ++summary_.rejected;
    ++e.stats.rejected;
    emit({{"event", "rejected"}, {"client", c}, {"reason", s.to_string()}});
  } else {
    ++e.stats.updates_accepted;
    if (outcome.clipped) {
      ++e.stats.clipped;
      ++summary_.clipped;
    }
    if (outcome.downweighted) {
      ++e.stats.downweighted;
      ++summary_.downweighted;
    }
    admission_.record_accepted(outcome.norm);
  }
  return s;
}

void Runtime::on_commit_refused(const Status& why) {
  ++summary_.refused_commits;
  host_.log(why.to_string());
  emit({{"event", "commit_refused"}, {"version", strategy_.version()}, {"reason", why.to_string()}});
  if (receiving_) refused_during_receive_ = why;
}

std::optional<ModelVersion> Runtime::take_lost(int64_t task_id, const std::string& reason) {
  std::optional<TaskRecord> rec = take(task_id);
  if (!rec) return std::nullopt;
  count_lost(*rec, reason);
  return rec->task.version;
}

void Runtime::lose(int64_t task_id, const std::string& reason) {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return;
  const ClientId c = it->second.task.client;
  const ModelVersion v = it->second.task.version;
  count_lost(it->second, reason);
  // The client still counts as busy while the strategy hears of the loss (it has not reported
  // back), so a round that closes here does not re-sample it in the same breath.
  notify_lost(c, v);
  take(task_id);
}

void Runtime::reject(int64_t task_id, const Status& why) {
  const TaskRecord* r = task(task_id);
  if (r == nullptr) return;
  count_rejected(r->task.client, why);
  lose(task_id, "rejected");
}

void Runtime::count_lost(const TaskRecord& r, const std::string& reason) {
  ++summary_.lost;
  if (reason == "dropout") ++summary_.lost_dropout;
  if (reason == "offline") ++summary_.lost_offline;
  if (Entry* e = find(r.task.client)) ++e->stats.lost;
  emit({{"event", "lost"},
        {"client", r.task.client},
        {"version", r.task.version},
        {"reason", reason},
        {"dispatched_at", r.dispatched_at}});
}

void Runtime::notify_lost(ClientId id, ModelVersion version) {
  if (!stopping_ && !failure_) strategy_.on_task_lost(id, version);
}

void Runtime::count_rejected(ClientId id, const Status& why) {
  ++summary_.rejected;
  if (Entry* e = find(id)) ++e->stats.rejected;
  emit({{"event", "rejected"}, {"client", id}, {"reason", why.to_string()}});
}

// ---- events from the host -----------------------------------------------------------------

void Runtime::fire_timer(TimerId id) {
  if (!stopping_ && !failure_) strategy_.on_timer(id);
}

void Runtime::after_event() {
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> work = std::move(deferred_);
    deferred_.clear();
    for (auto& fn : work) fn();
  }
  if (checkpoint_pending_) {
    checkpoint_pending_ = false;
    commits_since_checkpoint_ = 0;
    Status s = write_checkpoint_now();
    if (!s.ok()) {
      host_.log("checkpoint failed: " + s.to_string());
      fail(s);
      stop("checkpoint failed");
    }
  }
}

Checkpoint Runtime::make_checkpoint(Status* status) const {
  Checkpoint c;
  c.strategy = strategy_.name();
  c.version = strategy_.version();
  c.epoch = epoch_;
  for (const Entry& e : entries_) {
    c.clients.push_back({e.info.id, e.info.num_examples, e.info.tasks_done});
  }
  c.rng_state = rng_.state();
  c.counters = {{"updates", summary_.updates},
                {"rejected", summary_.rejected},
                {"lost", summary_.lost},
                {"bytes_up", summary_.bytes_up},
                {"bytes_down", summary_.bytes_down}};
  *status = strategy_.save_state(&c.state);
  return c;
}

Status Runtime::write_checkpoint_now() {
  // Never checkpoint a model that fails the sanity check (a refused commit keeps the previous,
  // finite model, so this guards against strategy bugs).
  COHORT_RETURN_IF_ERROR(strategy_.global_model()->check_finite().with_context(
      "not checkpointing version " + std::to_string(strategy_.version())));
  Status s;
  Checkpoint c = make_checkpoint(&s);
  COHORT_RETURN_IF_ERROR(s);
  COHORT_RETURN_IF_ERROR(write_checkpoint(options_.checkpoint_dir, c));
  emit({{"event", "checkpoint"}, {"version", c.version}, {"dir", options_.checkpoint_dir}});
  return Status();
}

// ---- run state ----------------------------------------------------------------------------

void Runtime::stop(const std::string& reason) {
  if (stopping_) return;
  stopping_ = true;
  summary_.stop_reason = reason;
  host_.on_stop(reason);
}

void Runtime::fail(Status s) {
  if (!failure_) failure_ = std::move(s);
}

// ---- StrategyHost -------------------------------------------------------------------------

double Runtime::now() const { return host_.now(); }

std::vector<ClientId> Runtime::idle_clients() const {
  std::vector<ClientId> out;
  for (const Entry& e : entries_) {
    if (idle(e)) out.push_back(e.info.id);
  }
  return out;
}

const ClientInfo& Runtime::client_info(ClientId id) const {
  const Entry* e = find(id);
  if (e == nullptr) {
    // REQUIRES of StrategyHost: a strategy asking about an unknown client is a bug.
    static const ClientInfo kUnknown{.id = -1};
    return kUnknown;
  }
  return e->info;
}

int64_t Runtime::default_local_steps(ClientId id) const {
  return options_.training.steps_for(client_info(id).num_examples);
}

void Runtime::dispatch(Task task) {
  if (stopping_ || failure_) return;  // the run is over: nobody will train it
  const ClientId c = task.client;
  Entry* e = find(c);
  if (e == nullptr || !idle(*e)) {
    const std::string what =
        strategy_.name() + " dispatched a task to client " + std::to_string(c) +
        ", which is not idle" +
        (e != nullptr && !e->available ? " (it is " + host_.unavailable_state() + ")" : "");
    if (options_.strict_dispatch) {
      fail(Status::internal(what));
      return;
    }
    // Not a client that can take a task: report the task lost on the next turn rather than
    // re-entering the strategy from inside its own call.
    host_.log(what + "; reporting it lost");
    const ModelVersion v = task.version;
    deferred_.push_back([this, c, v] {
      ++summary_.lost;
      emit({{"event", "lost"}, {"client", c}, {"version", v}, {"reason", "not_idle"}});
      notify_lost(c, v);
    });
    return;
  }
  TaskRecord r;
  r.id = (epoch_ << 40) | next_task_number_++;
  r.dispatched_at = now();
  r.task = std::move(task);
  e->task = r.id;
  if (options_.dispatch_ends_availability) e->available = false;
  ++e->stats.tasks;
  auto [it, inserted] = tasks_.emplace(r.id, std::move(r));
  host_.launch(it->second);
}

TimerId Runtime::set_timer(double delay_s) {
  const TimerId id = next_timer_++;
  host_.schedule_timer(id, now() + std::max(0.0, delay_s));
  return id;
}

void Runtime::cancel_timer(TimerId id) { host_.cancel_timer(id); }

void Runtime::on_commit(ModelVersion version) {
  if (options_.eval_every > 0 && version % options_.eval_every == 0) {
    Status s = evaluate_now();
    if (!s.ok()) {
      if (options_.eval_errors_fatal) {
        fail(s);
      } else {
        host_.log("evaluation failed: " + s.to_string());
      }
    }
  }
  if (!options_.checkpoint_dir.empty() &&
      ++commits_since_checkpoint_ >= std::max<int64_t>(1, options_.checkpoint_every)) {
    checkpoint_pending_ = true;
  }
  if (options_.max_commits > 0 && version >= options_.max_commits) stop("rounds");
}

void Runtime::emit(Json event) {
  if (metrics_ == nullptr) return;
  if (!event.contains("virtual_time_s")) event["virtual_time_s"] = now();
  if (!event.contains("wall_time_s")) event["wall_time_s"] = host_.wall_seconds();
  metrics_->emit(event);
}

}  // namespace cohort::runtime
