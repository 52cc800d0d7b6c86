#include "cohort/runtime/runtime.h"

#include <algorithm>
#include <cmath>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"

namespace cohort::runtime {

Runtime::Runtime(RuntimeOptions options, Strategy& strategy, RuntimeHost& host, MetricsHub* metrics)
    : options_(std::move(options)),
      admission_(admission_under_privacy(options_.admission, options_.privacy)),
      strategy_(strategy),
      host_(host),
      metrics_(metrics),
      rng_(Rng::derive(options_.seed, "strategy")),
      next_task_number_(options_.first_task_number) {
  summary_.strategy = strategy_.name();
  summary_.seed = options_.seed;
}

// ---- lifecycle ----------------------------------------------------------------------------

Status Runtime::start(ArrayRecord initial, Json start_fields, std::optional<Checkpoint> resume) {
  const int64_t params = initial.numel();
  const std::string where = "resuming from " + options_.checkpoint_dir;
  if (resume) {
    const Json& t = resume->runtime.contains("time") ? resume->runtime["time"] : Json();
    if (!t.is_number() || !std::isfinite(t.get<double>())) {
      return Status::data_loss(where + ": the checkpoint has no valid \"runtime.time\"");
    }
    host_.resume_clock(t.get<double>());
  }
  COHORT_RETURN_IF_ERROR(strategy_.start(this, std::move(initial)));
  robust_ = std::make_unique<RobustRuntime>(options_.robust, options_.contribution, host_, *this,
                                            options_.seed);
  if (options_.privacy.enabled()) {
    privacy_ = std::make_unique<PrivacyRuntime>(
        options_.privacy, *this,
        options_.reproducible_noise ? privacy::derive_seed(options_.seed, "dp_server")
                                    : privacy::random_seed(),
        num_clients(), options_.max_commits);
    privacy_->set_transport(host_.secagg_transport());
  }
  if (privacy_) COHORT_RETURN_IF_ERROR(privacy_->check_strategy(strategy_.name()));
  if (robust_->active() || privacy_) {
    COHORT_RETURN_IF_ERROR(robust_->install(strategy_, num_clients(), privacy_.get()));
  }
  std::vector<int64_t> in_flight;
  if (resume) {
    if (resume->strategy != strategy_.name()) {
      return Status::invalid_argument(options_.checkpoint_dir + ": checkpoint is for strategy " +
                                      resume->strategy + ", the config says " + strategy_.name());
    }
    COHORT_RETURN_IF_ERROR(strategy_.restore_state(std::move(resume->state)).with_context(where));
    if (resume->rng_state.size() == 4) rng_.set_state(resume->rng_state);
    epoch_ = resume->epoch + 1;
    COHORT_RETURN_IF_ERROR(restore_runtime_state(resume->runtime, &in_flight).with_context(where));
    resumed_from_ = strategy_.version();
  } else if (!options_.checkpoint_dir.empty()) {
    // Fail now rather than at the first checkpoint, hours into a run.
    StrategyState probe;
    COHORT_RETURN_IF_ERROR(strategy_.save_state(&probe).with_context("checkpoint_dir"));
  }
  Json ev = {{"event", "start"}, {"strategy", strategy_.name()},       {"clients", num_clients()},
             {"params", params}, {"max_rounds", options_.max_commits}, {"seed", options_.seed}};
  for (auto& [k, v] : start_fields.items()) ev[k] = v;
  if (resumed_from_ >= 0) ev["resumed_from_version"] = resumed_from_;
  emit(std::move(ev));
  COHORT_RETURN_IF_ERROR(evaluate_now().with_context("evaluating the initial model"));
  // Their clients' connections went with the old process: what the strategy already folded
  // in stays, the rest will not come.
  for (int64_t id : in_flight) lose(id, "restart");
  if (options_.max_commits > 0 && strategy_.version() >= options_.max_commits) stop("rounds");
  // The live view (a dashboard) gets every client now, then the ones that change.
  live_ = metrics_ != nullptr && metrics_->wants_live();
  if (!has_population()) {
    for (Entry& e : entries_) mark(e);
  } else if (live_) {
    // Every client gets a record: only when a live view wants them all.
    for (size_t i = 0; i < population_.size(); ++i) mark(*find(static_cast<ClientId>(i)));
  }
  publish_live();
  return Status();
}

Json Runtime::runtime_state() const {
  // A population's clients without a record are left out: all theirs is as registered.
  Json clients = Json::array();
  for (const Entry* p : records()) {
    const Entry& e = *p;
    const Activity& a = act_or_zero(e);
    clients.push_back({{"id", e.info.id},
                       {"num_examples", e.info.num_examples},
                       {"tasks_done", e.info.tasks_done},
                       {"measured_speed", e.info.measured_speed},
                       {"arrived", a.arrived},
                       {"staleness_sum", a.staleness_sum},
                       {"stats", a.stats.to_json()}});
  }
  Json tasks = Json::array();
  for (const auto& [id, r] : tasks_) {
    tasks.push_back({{"id", id},
                     {"client", r.task.client},
                     {"version", r.task.version},
                     {"local_steps", r.task.local_steps},
                     {"dispatched_at", r.dispatched_at}});
  }
  Json timers = Json::array();
  for (const auto& [id, due] : timers_) timers.push_back({id, due});
  const RunSummary& s = summary_;
  auto optional = [](const std::optional<double>& v) {
    return v ? Json(*v) : Json();
  };
  Json summary = {{"updates", s.updates},
                  {"rejected", s.rejected},
                  {"clipped", s.clipped},
                  {"downweighted", s.downweighted},
                  {"refused_commits", s.refused_commits},
                  {"lost", s.lost},
                  {"lost_dropout", s.lost_dropout},
                  {"lost_offline", s.lost_offline},
                  {"offline_periods", s.offline_periods},
                  {"bytes_up", s.bytes_up},
                  {"bytes_down", s.bytes_down},
                  {"final_accuracy", s.final_accuracy},
                  {"final_loss", s.final_loss},
                  {"best_accuracy", s.best_accuracy},
                  {"time_to_target", optional(s.time_to_target)},
                  {"final_fed_accuracy", optional(s.final_fed_accuracy)},
                  {"final_fed_worst10_accuracy", optional(s.final_fed_worst10_accuracy)}};
  const Admission::Window w = admission_.window();
  return {{"time", now()},
          {"next_task_number", next_task_number_},
          {"next_timer", next_timer_},
          {"last_eval_version", last_eval_version_},
          {"clients", std::move(clients)},
          {"tasks", std::move(tasks)},
          {"timers", std::move(timers)},
          {"summary", std::move(summary)},
          {"robust", robust_ ? robust_->state() : Json::object()},
          {"privacy", privacy_ ? privacy_->state() : Json::object()},
          {"admission", {{"recent_norms", w.recent_norms}, {"accepted", w.accepted}}}};
}

Status Runtime::restore_runtime_state(const Json& r, std::vector<int64_t>* in_flight) {
  idle_index_valid_ = false;
  // Every client is unavailable until the host says otherwise (start()).
  population_available_ = false;
  for (Entry* e : records()) {
    e->available = false;
    mark(*e);
  }
  try {
    next_task_number_ = r.at("next_task_number").get<int64_t>();
    next_timer_ = r.at("next_timer").get<TimerId>();
    last_eval_version_ = r.at("last_eval_version").get<ModelVersion>();
    for (const Json& c : r.at("clients")) {
      const auto id = c.at("id").get<ClientId>();
      add_client(id, c.at("num_examples").get<int64_t>());
      Entry& e = *find(id);
      e.info.tasks_done = c.at("tasks_done").get<int64_t>();
      e.info.measured_speed = c.at("measured_speed").get<double>();
      Activity a;
      a.arrived = c.at("arrived").get<int64_t>();
      a.staleness_sum = c.at("staleness_sum").get<int64_t>();
      a.stats = ClientStats::from_json(c.at("stats"));
      if (a.arrived > 0 || a.stats.active()) e.activity = std::make_unique<Activity>(a);
      e.available = false;
    }
    for (const Json& t : r.at("tasks")) {
      TaskRecord rec;
      rec.id = t.at("id").get<int64_t>();
      rec.task.client = t.at("client").get<ClientId>();
      rec.task.version = t.at("version").get<ModelVersion>();
      rec.task.local_steps = t.at("local_steps").get<int64_t>();
      rec.dispatched_at = t.at("dispatched_at").get<double>();
      Entry* e = find(rec.task.client);
      if (e == nullptr) {
        return Status::data_loss("task " + std::to_string(rec.id) + " of unknown client " +
                                 std::to_string(rec.task.client));
      }
      e->task = rec.id;
      in_flight->push_back(rec.id);
      tasks_.emplace(rec.id, std::move(rec));
    }
    std::sort(in_flight->begin(), in_flight->end());
    for (const Json& t : r.at("timers")) {
      const auto id = t.at(0).get<TimerId>();
      const auto due = t.at(1).get<double>();
      timers_[id] = due;
      host_.schedule_timer(id, due);
    }
    const Json& k = r.at("summary");
    RunSummary& s = summary_;
    s.updates = k.at("updates").get<int64_t>();
    s.rejected = k.at("rejected").get<int64_t>();
    s.clipped = k.at("clipped").get<int64_t>();
    s.downweighted = k.at("downweighted").get<int64_t>();
    s.refused_commits = k.at("refused_commits").get<int64_t>();
    s.lost = k.at("lost").get<int64_t>();
    s.lost_dropout = k.at("lost_dropout").get<int64_t>();
    s.lost_offline = k.at("lost_offline").get<int64_t>();
    s.offline_periods = k.at("offline_periods").get<int64_t>();
    s.bytes_up = k.at("bytes_up").get<int64_t>();
    s.bytes_down = k.at("bytes_down").get<int64_t>();
    s.final_accuracy = k.at("final_accuracy").get<double>();
    s.final_loss = k.at("final_loss").get<double>();
    s.best_accuracy = k.at("best_accuracy").get<double>();
    auto optional = [](const Json& v) {
      return v.is_null() ? std::optional<double>() : std::optional<double>(v.get<double>());
    };
    s.time_to_target = optional(k.at("time_to_target"));
    s.final_fed_accuracy = optional(k.at("final_fed_accuracy"));
    s.final_fed_worst10_accuracy = optional(k.at("final_fed_worst10_accuracy"));
    if (robust_ && r.contains("robust")) COHORT_RETURN_IF_ERROR(robust_->restore(r["robust"]));
    if (privacy_ && r.contains("privacy") && !r["privacy"].empty()) {
      COHORT_RETURN_IF_ERROR(privacy_->restore(r["privacy"]));
    }
    const Json& a = r.at("admission");
    admission_.restore_window(
        {a.at("recent_norms").get<std::vector<double>>(), a.at("accepted").get<int64_t>()});
  } catch (const std::exception& e) {
    return Status::data_loss(std::string("checkpoint runtime state: ") + e.what());
  }
  return Status();
}

Status Runtime::evaluate_now() {
  std::shared_ptr<const ArrayRecord> model = strategy_.global_model();
  COHORT_ASSIGN_OR_RETURN(std::optional<Evaluation> result, host_.evaluate(model));
  last_eval_version_ = strategy_.version();
  if (!result) return Status();
  EvalResult& e = result->central;
  summary_.final_accuracy = e.accuracy;
  summary_.final_loss = e.loss;
  summary_.best_accuracy = std::max(summary_.best_accuracy, e.accuracy);
  const double t = now();
  // With several models the target is every model's own (RunSummary::record_models).
  const bool reached = e.parts.empty() ? options_.target_accuracy > 0 &&
                                             e.accuracy >= options_.target_accuracy
                                       : summary_.record_models(e, t, options_.target_accuracy,
                                                                options_.model_targets);
  if (reached && !summary_.time_to_target) summary_.time_to_target = t;
  Json ev = {{"event", "eval"},
             {"strategy", strategy_.name()},
             {"round", strategy_.version()},
             {"updates", summary_.updates},
             {"virtual_time_s", t},
             {"wall_time_s", host_.wall_seconds()},
             {"bytes_up", summary_.bytes_up},
             {"bytes_down", summary_.bytes_down}};
  result->add_to(ev);
  if (privacy_ && privacy_->dp()) {
    ev["epsilon"] = privacy_->epsilon();
    ev["delta"] = privacy_->delta();
  }
  if (result->fed) {
    summary_.final_fed_accuracy = result->fed->accuracy;
    summary_.final_fed_worst10_accuracy = result->fed->worst10_accuracy;
  }
  emit(std::move(ev));
  strategy_.on_evaluation(e);
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
  summary_.peak_bytes_per_s = bandwidth_.peak();
  summary_.peak_sync_bytes_per_s = bandwidth_.sync_peak();
  if (robust_) robust_->fill(summary_);
  if (privacy_) privacy_->fill(summary_);
  // Only the clients that took part: the others' figures are all zero (summary.h).
  summary_.client_stats.clear();
  const std::vector<Entry*> records = this->records();
  for (const Entry* e : records) {
    if (!e->activity || !e->activity->stats.active()) continue;
    ClientStats st = e->activity->stats;
    if (e->activity->arrived > 0) st.mean_staleness = e->activity->mean_staleness();
    summary_.client_stats.push_back(st);
  }
  summary_.idle_clients =
      static_cast<int64_t>(num_clients()) - static_cast<int64_t>(summary_.client_stats.size());
  // Tasks still out will never be waited for: the live view stops showing them as training.
  for (Entry* e : records) {
    if (e->task >= 0) mark(*e);
  }
  publish_live();
  emit_clients_event();
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
  if (Entry* e = find(r.task.client); e != nullptr && e->task == task_id) {
    e->task = -1;
    mark(*e);
  }
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
  Activity& a = act(e);
  ++a.arrived;
  a.staleness_sum += staleness;
  a.last_staleness = staleness;
  a.stats.max_staleness = std::max(a.stats.max_staleness, staleness);
  a.stats.steps += u.local_steps;
  // Counted before the call so that an evaluation triggered by this update's commit includes
  // it; taken back if the strategy rejects the update.
  ++summary_.updates;
  receiving_ = true;
  refused_during_receive_ = Status();
  // A streamed delta (a spooled upload) reaches only strategies that fold it linearly.
  Status s;
  if (u.delta_source && !strategy_.accepts_streamed_delta()) {
    s = materialize_delta(u, strategy_.global_model()->layout());
  }
  if (s.ok()) {
    client_metrics_.begin(u.metrics, u.num_examples);
    s = strategy_.on_update(std::move(u));
  }
  receiving_ = false;
  // A commit this update made non-finite was refused: the update is rejected.
  if (s.ok() && !refused_during_receive_.ok()) s = refused_during_receive_;
  client_metrics_.end(s.ok());
  e.outcome = s.ok() ? Outcome::kAccepted : Outcome::kRejected;
  if (!s.ok()) {
    --summary_.updates;
    ++summary_.rejected;
    ++a.stats.rejected;
    emit({{"event", "rejected"}, {"client", c}, {"reason", s.to_string()}});
  } else {
    ++a.stats.updates_accepted;
    if (outcome.clipped) {
      ++a.stats.clipped;
      ++summary_.clipped;
    }
    if (outcome.downweighted) {
      ++a.stats.downweighted;
      ++summary_.downweighted;
    }
    admission_.record_accepted(outcome.norm);
    ++accepted_seq_;
  }
  return s;
}

Status Runtime::check_commit(const ArrayRecord& current, const ArrayRecord& next) const {
  // One pass over the next model answers finiteness, its largest weight and its norm.
  const ops::Magnitudes m = ops::magnitudes(next.flat());
  if (!std::isfinite(m.max_abs)) {
    COHORT_RETURN_IF_ERROR(next.check_finite());  // names the element
  }
  const double max_abs = options_.admission.max_abs_weight;
  if (max_abs > 0 && m.max_abs > max_abs) {
    return Status::invalid_argument("a weight of magnitude " + format_number(m.max_abs) +
                                    " would exceed " + format_number(max_abs) +
                                    " (admission.max_abs_weight)");
  }
  const double growth = options_.admission.max_model_growth;
  if (growth > 0) {
    const double before = std::max(1.0, std::sqrt(ops::sum_squares_fast(current.flat())));
    const double after = std::sqrt(m.sum_squares);
    if (after > growth * before) {
      return Status::invalid_argument(
          "its norm " + format_number(after) + " would be more than " + format_number(growth) +
          "x the current model's " + format_number(before) + " (admission.max_model_growth)");
    }
  }
  return Status();
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
  if (Entry* e = find(r.task.client)) {
    ++act(*e).stats.lost;
    // A task lost because its upload failed admission shows as rejected.
    e->outcome = reason == "rejected" ? Outcome::kRejected : Outcome::kLost;
    mark(*e);
  }
  emit({{"event", "lost"}, {"client", r.task.client}, {"version", r.task.version},
        {"reason", reason}, {"dispatched_at", r.dispatched_at}});
}

void Runtime::notify_lost(ClientId id, ModelVersion version) {
  if (!stopping_ && !failure_) strategy_.on_task_lost(id, version);
}

void Runtime::count_rejected(ClientId id, const Status& why) {
  ++summary_.rejected;
  if (Entry* e = find(id)) {
    ++act(*e).stats.rejected;
    e->outcome = Outcome::kRejected;
    mark(*e);
  }
  if (robust_) robust_->on_rejected(id);
  emit({{"event", "rejected"}, {"client", id}, {"reason", why.to_string()}});
}

// ---- events from the host -----------------------------------------------------------------

void Runtime::fire_timer(TimerId id) {
  timers_.erase(id);
  if (!stopping_ && !failure_) strategy_.on_timer(id);
}

void Runtime::after_event() {
  // A group refused for the budget commits nothing, so on_commit does not see it.
  if (privacy_ && privacy_->exhausted() && !stopping_) stop(privacy_->exhausted_reason());
  if (privacy_ && privacy_->fatal() && !failure_) {
    fail(*privacy_->fatal());
    stop("privacy failed");
  }
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
  publish_live();
}

Result<Checkpoint> Runtime::checkpoint() const {
  // Never checkpoint a model that fails the sanity check (a refused commit keeps the previous,
  // finite model, so this guards against strategy bugs).
  Status finite = strategy_.global_model()->check_finite();
  if (!finite.ok()) {
    return Status::failed_precondition("not checkpointing version " +
                                       std::to_string(strategy_.version()) + ": " +
                                       finite.message());
  }
  Checkpoint c;
  c.strategy = strategy_.name();
  c.version = strategy_.version();
  c.epoch = epoch_;
  c.rng_state = rng_.state();
  c.runtime = runtime_state();
  COHORT_RETURN_IF_ERROR(strategy_.save_state(&c.state));
  return c;
}

Status Runtime::write_checkpoint_now() {
  COHORT_ASSIGN_OR_RETURN(Checkpoint c, checkpoint());
  COHORT_RETURN_IF_ERROR(write_checkpoint(options_.checkpoint_dir, c, options_.checkpoint_keep));
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
  if (privacy_) privacy_->annotate(r.task);
  e->task = r.id;
  e->outcome = Outcome::kNone;
  if (options_.dispatch_ends_availability) e->available = false;
  mark(*e);
  ++act(*e).stats.tasks;
  auto [it, inserted] = tasks_.emplace(r.id, std::move(r));
  host_.launch(it->second);
}

TimerId Runtime::set_timer(double delay_s) {
  const TimerId id = next_timer_++;
  const double due = now() + std::max(0.0, delay_s);
  timers_[id] = due;
  host_.schedule_timer(id, due);
  return id;
}

void Runtime::cancel_timer(TimerId id) {
  timers_.erase(id);
  host_.cancel_timer(id);
}

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
  if (!options_.checkpoint_dir.empty() && options_.checkpoint_every > 0 &&
      ++commits_since_checkpoint_ >= options_.checkpoint_every) {
    checkpoint_pending_ = true;
  }
  if (options_.max_commits > 0 && version >= options_.max_commits) stop("rounds");
  if (privacy_ && privacy_->exhausted()) stop(privacy_->exhausted_reason());
}

void Runtime::emit_clients_event() {
  if (metrics_ == nullptr) return;
  // As text (MetricsSink::on_event_text): at a million clients the Json value would be
  // hundreds of MB. The fields and their order are those emit() would give it.
  std::string text = R"({"event":"clients","clients":)";
  summary_.append_client_stats(text);
  Json tail = {{"idle_clients", summary_.idle_clients}};
  stamp(tail);
  std::string rest = tail.dump();
  rest[0] = ',';
  text += rest;
  metrics_->emit_text("clients", text);
}

void Runtime::emit(Json event) {
  if (metrics_ == nullptr) return;
  client_metrics_.annotate(event);
  stamp(event);
  metrics_->emit(event);
}

void Runtime::stamp(Json& event) const {
  if (!event.contains("virtual_time_s")) event["virtual_time_s"] = now();
  if (!event.contains("wall_time_s")) event["wall_time_s"] = host_.wall_seconds();
}

}  // namespace cohort::runtime
