#include "cohort/sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <map>
#include <queue>
#include <set>
#include <string_view>
#include <unordered_map>

#include "cohort/client/control_variates.h"
#include "cohort/core/clock.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"

namespace cohort::sim {

Status SimOptions::validate() const {
  if (max_commits < 0) {
    return Status::invalid_argument("run.rounds: must be >= 0, got " + std::to_string(max_commits));
  }
  if (max_virtual_time_s < 0) {
    return Status::invalid_argument("run.max_virtual_time_s: must be >= 0, got " +
                                    std::to_string(max_virtual_time_s));
  }
  if (max_commits == 0 && max_virtual_time_s == 0) {
    return Status::invalid_argument(
        "run: set run.rounds or run.max_virtual_time_s (both are 0, the run would never end)");
  }
  if (eval_every < 0 || (eval_every == 0 && !(eval_interval_s > 0))) {
    return Status::invalid_argument(
        "run.eval_every: must be >= 1 (or 0 with run.eval_interval_s > 0), got " +
        std::to_string(eval_every));
  }
  if (eval_interval_s < 0) {
    return Status::invalid_argument("run.eval_interval_s: must be >= 0, got " +
                                    std::to_string(eval_interval_s));
  }
  if (target_accuracy < 0 || target_accuracy > 1) {
    return Status::invalid_argument("run.target_accuracy: must be in [0, 1], got " +
                                    std::to_string(target_accuracy));
  }
  COHORT_RETURN_IF_ERROR(dynamics.validate());
  return training.validate();
}

Json ClientStats::to_json() const {
  return {{"id", id},
          {"tasks", tasks},
          {"steps", steps},
          {"updates_accepted", updates_accepted},
          {"rejected", rejected},
          {"lost", lost},
          {"offline_periods", offline_periods},
          {"offline_s", offline_s},
          {"mean_staleness", mean_staleness},
          {"max_staleness", max_staleness}};
}

Json SimSummary::client_stats_json() const {
  Json arr = Json::array();
  for (const ClientStats& c : client_stats) arr.push_back(c.to_json());
  return arr;
}

Json SimSummary::to_json() const {
  Json j = {{"strategy", strategy},
            {"seed", seed},
            {"final_accuracy", final_accuracy},
            {"final_loss", final_loss},
            {"best_accuracy", best_accuracy},
            {"virtual_time_s", virtual_time_s},
            {"wall_time_s", wall_time_s},
            {"rounds", rounds},
            {"updates", updates},
            {"rejected", rejected},
            {"lost", lost},
            {"lost_dropout", lost_dropout},
            {"lost_offline", lost_offline},
            {"offline_periods", offline_periods},
            {"stalled", stalled},
            {"bytes_up", bytes_up},
            {"bytes_down", bytes_down},
            {"model_hash", model_hash}};
  j["time_to_target"] = time_to_target ? Json(*time_to_target) : Json(nullptr);
  if (final_fed_accuracy) j["final_fed_accuracy"] = *final_fed_accuracy;
  if (final_fed_worst10_accuracy) j["final_fed_worst10_accuracy"] = *final_fed_worst10_accuracy;
  return j;
}

FederatedEval federated_summary(std::span<const EvalResult> per_client) {
  FederatedEval f;
  std::vector<double> accs;
  double n = 0, acc = 0, loss = 0;
  for (const EvalResult& r : per_client) {
    if (r.num_examples <= 0) continue;
    const auto w = static_cast<double>(r.num_examples);
    n += w;
    acc += w * r.accuracy;
    loss += w * r.loss;
    accs.push_back(r.accuracy);
  }
  if (accs.empty()) return f;
  f.accuracy = acc / n;
  f.loss = loss / n;
  std::sort(accs.begin(), accs.end());
  const size_t k = std::max<size_t>(1, (accs.size() + 9) / 10);
  double worst = 0;
  for (size_t i = 0; i < k; ++i) worst += accs[i];
  f.worst10_accuracy = worst / static_cast<double>(k);
  return f;
}

namespace {

// kTaskLost: a dropped-out task's timeout; kOffline / kOnline: a client's availability changes.
enum class EventKind { kTaskDone, kTimer, kTaskLost, kOffline, kOnline };

struct Event {
  double time;
  uint64_t seq;
  EventKind kind;
  int64_t id;  // task number, timer id, or client id (kOffline, kOnline)
  bool operator>(const Event& o) const {
    return time != o.time ? time > o.time : seq > o.seq;
  }
};

struct InFlight {
  Task task;
  double dispatched_at = 0.0;
  double compute_s = 0.0;
  int64_t bytes_up = 0;
  std::future<Result<TrainResult>> result;
  // Set when the task is lost, so that its training, if not started yet, is skipped.
  std::shared_ptr<std::atomic<bool>> abandoned = std::make_shared<std::atomic<bool>>(false);
};

struct ClientState {
  ClientInfo info;
  bool online = true;
  int64_t task = -1;  // number of the task in flight, -1 = none
  bool idle() const { return online && task < 0; }
  Rng availability_rng;
  double offline_since = 0.0;
  ClientStats stats;
  int64_t arrived = 0;  // updates that arrived (accepted or rejected)
  int64_t staleness_sum = 0;
  // The client's own state across its tasks (SCAFFOLD: c_i); empty until its first task that
  // carries a server_state, so clients that never took part cost no model-sized memory.
  ArrayRecord client_state;
};

}  // namespace

class Simulator::Impl final : public StrategyHost {
 public:
  Impl(Simulator& sim, Strategy& strategy)
      : sim_(sim), strategy_(strategy), opts_(sim.options_),
        rng_(Rng::derive(opts_.seed, "strategy")) {}

  ~Impl() override {
    // Jobs not yet started return at once; running ones finish before the pool dies.
    cancel_->store(true);
    pool_.reset();
  }

  Result<SimSummary> run() {
    wall_start_ = std::chrono::steady_clock::now();
    const size_t n_threads = opts_.threads == 0 ? std::max(1u, std::thread::hardware_concurrency())
                                                : opts_.threads;
    // Per-worker trainers plus one for evaluation on this thread.
    for (size_t i = 0; i < n_threads; ++i) {
      COHORT_ASSIGN_OR_RETURN(auto t, sim_.factory_());
      trainers_.push_back(std::move(t));
    }
    COHORT_ASSIGN_OR_RETURN(eval_trainer_, sim_.factory_());
    pool_ = std::make_unique<ThreadPool>(n_threads);

    clients_.resize(sim_.clients_.size());
    for (size_t i = 0; i < clients_.size(); ++i) {
      clients_[i].info.id = static_cast<ClientId>(i);
      clients_[i].info.num_examples = sim_.clients_[i].shard.size();
      clients_[i].stats.id = static_cast<ClientId>(i);
      clients_[i].availability_rng = Rng::derive(opts_.seed, "availability", i);
    }

    COHORT_ASSIGN_OR_RETURN(ArrayRecord initial,
                            eval_trainer_->init_params(Rng::mix_seed(opts_.seed, "init")));
    summary_.strategy = strategy_.name();
    summary_.seed = opts_.seed;
    emit({{"event", "start"},
          {"strategy", strategy_.name()},
          {"clients", clients_.size()},
          {"params", initial.numel()},
          {"max_rounds", opts_.max_commits},
          {"max_virtual_time_s", opts_.max_virtual_time_s},
          {"threads", n_threads},
          {"seed", opts_.seed}});
    COHORT_RETURN_IF_ERROR(strategy_.start(this, std::move(initial)));
    COHORT_RETURN_IF_ERROR(evaluate_global());

    const Availability& avail = opts_.dynamics.availability;
    if (avail.enabled()) {
      for (auto& c : clients_) {
        schedule_availability(c.info.id, avail.sample(c.availability_rng, /*online=*/true),
                              EventKind::kOffline);
      }
    }
    for (const auto& c : clients_) {
      if (stopping_) break;
      if (c.idle()) strategy_.on_client_idle(c.info.id);
    }

    // With availability the queue never empties. This many availability changes since the
    // last dispatch, each finding nothing in flight and no timer pending, mean the strategy
    // has stopped working (it was offered every returning client and sent nothing).
    const int64_t quiet_limit = 100 * static_cast<int64_t>(clients_.size());
    bool stopped_by_limit = false;
    while (!stopping_ && !failure_ && !queue_.empty()) {
      if (sim_.stop_requested_.load() || (opts_.stop_flag && opts_.stop_flag->load())) {
        stopped_by_limit = true;
        break;
      }
      Event ev = queue_.top();
      // Interval evaluations: the model as it stands at each multiple of eval_interval_s
      // passed before this event (so curves of different strategies share time points).
      while (opts_.eval_interval_s > 0 && next_interval_eval_ <= ev.time &&
             (opts_.max_virtual_time_s == 0 || next_interval_eval_ <= opts_.max_virtual_time_s)) {
        clock_.set(next_interval_eval_);
        next_interval_eval_ += opts_.eval_interval_s;
        Status es = evaluate_global();
        if (!es.ok()) failure_ = es;
      }
      if (failure_) break;
      if (opts_.max_virtual_time_s > 0 && ev.time > opts_.max_virtual_time_s) {
        clock_.set(opts_.max_virtual_time_s);
        stopped_by_limit = true;
        break;
      }
      queue_.pop();
      clock_.set(ev.time);
      switch (ev.kind) {
        case EventKind::kTimer:
          --pending_timers_;
          if (cancelled_timers_.erase(ev.id) == 0) strategy_.on_timer(ev.id);
          break;
        case EventKind::kTaskDone:
          deliver(ev.id);
          break;
        case EventKind::kTaskLost:
          lose_task(ev.id, "dropout");
          break;
        case EventKind::kOffline:
        case EventKind::kOnline:
          set_online(static_cast<ClientId>(ev.id), ev.kind == EventKind::kOnline);
          if (in_flight_.empty() && pending_timers_ == 0) {
            if (++quiet_changes_ > quiet_limit) summary_.stalled = true;
          }
          break;
      }
      if (summary_.stalled) break;
    }
    if (failure_) return *failure_;
    if (!stopping_ && !stopped_by_limit && queue_.empty()) summary_.stalled = true;

    if (last_eval_version_ != strategy_.version()) COHORT_RETURN_IF_ERROR(evaluate_global());
    summary_.virtual_time_s = clock_.now();
    summary_.wall_time_s = wall_seconds();
    summary_.rounds = strategy_.version();
    summary_.model_hash = strategy_.global_model()->hash_hex();
    sim_.final_model_ = strategy_.global_model();
    summary_.client_stats = client_stats();
    emit({{"event", "clients"}, {"clients", summary_.client_stats_json()}});
    Json s = summary_.to_json();
    s["event"] = "summary";
    emit(std::move(s));
    return summary_;
  }

  // StrategyHost ---------------------------------------------------------------------------
  double now() const override { return clock_.now(); }

  std::vector<ClientId> idle_clients() const override {
    std::vector<ClientId> out;
    for (const auto& c : clients_) {
      if (c.idle()) out.push_back(c.info.id);
    }
    return out;
  }

  size_t num_clients() const override { return clients_.size(); }
  const ClientInfo& client_info(ClientId id) const override { return clients_.at(id).info; }

  int64_t default_local_steps(ClientId id) const override {
    return opts_.training.steps_for(clients_.at(id).info.num_examples);
  }

  void dispatch(Task task) override {
    if (stopping_ || failure_) return;
    const ClientId c = task.client;
    if (c < 0 || c >= static_cast<ClientId>(clients_.size()) || !clients_[c].idle()) {
      const bool offline = c >= 0 && c < static_cast<ClientId>(clients_.size()) &&
                           !clients_[c].online;
      failure_ = Status::internal(strategy_.name() + " dispatched a task to client " +
                                  std::to_string(c) + ", which is not idle" +
                                  (offline ? " (it is offline)" : ""));
      return;
    }
    const int64_t number = next_task_++;
    ClientState& cs = clients_[c];
    cs.task = number;
    ++cs.stats.tasks;
    quiet_changes_ = 0;
    const ClientDynamics& dyn = opts_.dynamics;
    const DeviceProfile& dev = sim_.clients_[c].device;
    InFlight f;
    f.dispatched_at = clock_.now();
    // float32 records, no codec yet. A server_state goes down with the model and its
    // state_delta (same layout) comes back with the model delta.
    const int64_t state_bytes = task.server_state ? task.server_state->num_bytes() : 0;
    const int64_t bytes_down = task.model->num_bytes() + state_bytes;
    f.bytes_up = task.model->num_bytes() + state_bytes;
    const double nominal_compute_s = static_cast<double>(task.local_steps) / dev.speed;
    f.compute_s = nominal_compute_s;
    if (dyn.jitter > 0) {
      Rng jitter = Rng::derive(opts_.seed, "jitter", static_cast<uint64_t>(c),
                               static_cast<uint64_t>(number));
      f.compute_s *= std::max(0.05, jitter.normal(1.0, dyn.jitter));
    }
    const bool dropout =
        dyn.dropout > 0 && Rng::derive(opts_.seed, "dropout", static_cast<uint64_t>(c),
                                       static_cast<uint64_t>(number))
                                   .uniform() < dyn.dropout;
    const double down_s = static_cast<double>(bytes_down) / dev.down_bytes_per_s;
    const double up_s = static_cast<double>(f.bytes_up) / dev.up_bytes_per_s;
    const double arrival =
        f.dispatched_at + 2.0 * dev.latency_s + down_s + f.compute_s + up_s;
    summary_.bytes_down += bytes_down;
    f.task = std::move(task);
    if (dropout) {
      // Never trained: nothing would come back. The runtime gives up at its deadline.
      const double expected = 2.0 * dev.latency_s + down_s + nominal_compute_s + up_s;
      in_flight_.emplace(number, std::move(f));
      queue_.push(Event{clock_.now() + dyn.task_timeout_factor * expected, next_seq_++,
                        EventKind::kTaskLost, number});
      return;
    }
    in_flight_.emplace(number, std::move(f));
    queue_.push(Event{arrival, next_seq_++, EventKind::kTaskDone, number});
    // A task for the client whose update the strategy is handling right now (a round that
    // closes and re-samples it) starts once the simulator knows whether that update was
    // accepted, i.e. which client state the new task starts from.
    if (c == delivering_) {
      deferred_start_ = number;
    } else {
      start_training(number);
    }
  }

  // Submits task `number`'s training to the pool, with the gradient correction of its client
  // state. The state is read here, on the loop thread that owns the store; the worker gets only
  // the correction.
  void start_training(int64_t number) {
    InFlight& f = in_flight_.at(number);
    const ClientId c = f.task.client;
    Result<ArrayRecord> correction = client_state_correction(f.task, clients_[c].client_state);
    if (!correction.ok()) {
      if (!failure_) failure_ = correction.error();
      return;
    }
    std::shared_ptr<const ArrayRecord> grad_correction;
    if (!correction->empty()) {
      grad_correction = std::make_shared<const ArrayRecord>(std::move(*correction));
    }
    const uint64_t seed = Rng::mix_seed(opts_.seed, "task", static_cast<uint64_t>(c),
                                        static_cast<uint64_t>(number));
    // Bigger tasks first (longest-processing-time order): a synchronous round then does not
    // end with one worker finishing its longest task while the others idle.
    const double priority = static_cast<double>(f.task.local_steps);
    f.result = pool_->submit(
        [this, model = f.task.model, c, steps = f.task.local_steps, cfg = f.task.config, seed,
         grad_correction, cancel = cancel_,
         abandoned = f.abandoned](size_t worker) -> Result<TrainResult> {
          if (cancel->load()) return Status::cancelled("simulation stopped");
          if (abandoned->load()) return Status::cancelled("task lost");
          return trainers_[worker]->train(*model, sim_.clients_[c].shard, steps, opts_.training,
                                          cfg, seed, grad_correction.get());
        },
        priority);
  }

  TimerId set_timer(double delay_s) override {
    const TimerId id = next_timer_++;
    ++pending_timers_;
    queue_.push(Event{clock_.now() + std::max(0.0, delay_s), next_seq_++, EventKind::kTimer, id});
    return id;
  }

  void cancel_timer(TimerId id) override { cancelled_timers_.insert(id); }

  void on_commit(ModelVersion version) override {
    if (opts_.eval_every > 0 && version % opts_.eval_every == 0) {
      Status s = evaluate_global();
      if (!s.ok() && !failure_) failure_ = s;
    }
    if (opts_.max_commits > 0 && version >= opts_.max_commits) stopping_ = true;
  }

  Rng& rng() override { return rng_; }

  void emit(Json event) override {
    if (sim_.metrics_ == nullptr) return;
    if (!event.contains("virtual_time_s")) event["virtual_time_s"] = clock_.now();
    if (!event.contains("wall_time_s")) event["wall_time_s"] = wall_seconds();
    sim_.metrics_->emit(event);
  }

 private:
  double wall_seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
  }

  void deliver(int64_t number) {
    auto it = in_flight_.find(number);
    if (it == in_flight_.end()) return;  // lost when its client went offline
    InFlight f = std::move(it->second);
    in_flight_.erase(it);
    Result<TrainResult> r = f.result.get();
    if (!r.ok()) {
      failure_ = r.error().with_context("training client " + std::to_string(f.task.client));
      return;
    }
    const ClientId c = f.task.client;
    TrainResult& tr = *r;
    // delta = start - end, computed in place in the result buffer.
    Status shape = f.task.model->check_same_layout(tr.params, "trainer output");
    if (!shape.ok()) {
      failure_ = shape;
      return;
    }
    ops::sub(f.task.model->flat(), tr.params.flat(), tr.params.flat());
    ClientState& cs = clients_[c];
    Result<ClientStateUpdate> state =
        update_client_state(f.task, cs.client_state, tr.params, tr.steps, opts_.training);
    if (!state.ok()) {
      failure_ = state.error();
      return;
    }
    summary_.bytes_up += f.bytes_up;

    cs.task = -1;
    cs.info.tasks_done += 1;
    const double elapsed = clock_.now() - f.dispatched_at;
    if (elapsed > 0) cs.info.measured_speed = static_cast<double>(tr.steps) / elapsed;

    Update u;
    u.client = c;
    u.base_version = f.task.version;
    u.delta = std::move(tr.params);
    u.num_examples = tr.num_examples;
    u.local_steps = tr.steps;
    u.state_delta = std::move(state->state_delta);
    u.metrics = std::move(tr.metrics);
    u.dispatched_at = f.dispatched_at;
    u.arrived_at = clock_.now();
    // Counted before the call so that an evaluation triggered by this update's commit
    // includes it; taken back if the strategy rejects the update.
    ++summary_.updates;
    const int64_t staleness = strategy_.version() - f.task.version;
    ++cs.arrived;
    cs.staleness_sum += staleness;
    cs.stats.max_staleness = std::max(cs.stats.max_staleness, staleness);
    cs.stats.steps += tr.steps;
    delivering_ = c;
    Status s = strategy_.on_update(std::move(u));
    delivering_ = -1;
    if (!s.ok()) {
      --summary_.updates;
      ++summary_.rejected;
      ++cs.stats.rejected;
      emit({{"event", "rejected"}, {"client", c}, {"reason", s.to_string()}});
    } else {
      ++cs.stats.updates_accepted;
    }
    if (s.ok() && !state->next_state.empty()) {
      // Kept only once the server accepted the update: a rejected update's Delta c_i never
      // reached the server's c, so the client keeps its old c_i (SCAFFOLD: c = mean c_i).
      cs.client_state = std::move(state->next_state);
    }
    if (deferred_start_ >= 0) {
      const int64_t number = deferred_start_;
      deferred_start_ = -1;
      start_training(number);
    }
    if (cs.idle() && !stopping_) strategy_.on_client_idle(c);
  }

  // Reports task `number` lost (reason "dropout" or "offline") unless it already ended. The
  // client becomes idle right after the report if it is online.
  void lose_task(int64_t number, const char* reason) {
    auto it = in_flight_.find(number);
    if (it == in_flight_.end()) return;  // an earlier loss (offline) beat the dropout timeout
    InFlight f = std::move(it->second);
    in_flight_.erase(it);
    // The training job, if any, may still be queued or running: skip or discard it (the
    // future's destructor does not wait).
    f.abandoned->store(true);
    const ClientId c = f.task.client;
    ClientState& cs = clients_[c];
    const bool dropout = std::string_view(reason) == "dropout";
    ++summary_.lost;
    ++(dropout ? summary_.lost_dropout : summary_.lost_offline);
    ++cs.stats.lost;
    emit({{"event", "lost"},
          {"client", c},
          {"version", f.task.version},
          {"reason", reason},
          {"dispatched_at", f.dispatched_at}});
    strategy_.on_task_lost(c, f.task.version);
    cs.task = -1;
    if (cs.idle() && !stopping_) strategy_.on_client_idle(c);
  }

  void schedule_availability(ClientId c, double delay_s, EventKind kind) {
    queue_.push(Event{clock_.now() + delay_s, next_seq_++, kind, c});
  }

  // Client `c` goes offline (losing its task in flight) or comes back online (idle).
  void set_online(ClientId c, bool online) {
    ClientState& cs = clients_[c];
    const Availability& avail = opts_.dynamics.availability;
    cs.online = online;
    schedule_availability(c, avail.sample(cs.availability_rng, online),
                          online ? EventKind::kOffline : EventKind::kOnline);
    if (!online) {
      cs.offline_since = clock_.now();
      ++cs.stats.offline_periods;
      ++summary_.offline_periods;
      if (cs.task >= 0) lose_task(cs.task, "offline");
      return;
    }
    cs.stats.offline_s += clock_.now() - cs.offline_since;
    if (cs.idle() && !stopping_) strategy_.on_client_idle(c);
  }

  std::vector<ClientStats> client_stats() const {
    std::vector<ClientStats> out;
    out.reserve(clients_.size());
    for (const ClientState& cs : clients_) {
      ClientStats st = cs.stats;
      if (!cs.online) st.offline_s += clock_.now() - cs.offline_since;
      if (cs.arrived > 0) {
        st.mean_staleness =
            static_cast<double>(cs.staleness_sum) / static_cast<double>(cs.arrived);
      }
      out.push_back(st);
    }
    return out;
  }

  // Evaluates the global model on the test set, split into fixed-size chunks spread over the
  // pool (the chunking, not the thread count, fixes the summation order, so results are
  // identical for any number of threads). Eval jobs jump the queue: the loop waits for them.
  // Evaluates `model` on each shard on the pool (eval jobs jump the queue: the loop waits for
  // them) and returns one result per shard, in shard order.
  Result<std::vector<EvalResult>> evaluate_shards(const std::shared_ptr<const ArrayRecord>& model,
                                                  const std::vector<const Shard*>& shards) {
    std::vector<std::future<Result<EvalResult>>> parts;
    parts.reserve(shards.size());
    for (const Shard* shard : shards) {
      parts.push_back(pool_->submit(
          [this, model, shard](size_t worker) { return trainers_[worker]->evaluate(*model, *shard); },
          1e300));
    }
    std::vector<EvalResult> out;
    Status first_error;
    for (auto& p : parts) {
      Result<EvalResult> r = p.get();
      if (!r.ok()) {
        if (first_error.ok()) first_error = r.error().with_context("evaluating the global model");
        out.emplace_back();
        continue;
      }
      out.push_back(*r);
    }
    COHORT_RETURN_IF_ERROR(first_error);
    return out;
  }

  // Evaluates the global model on the test set, split into fixed-size chunks spread over the
  // pool (the chunking, not the thread count, fixes the summation order, so results are
  // identical for any number of threads), and, when clients hold out data, on every client's
  // held-out split (federated evaluation: example-weighted mean and the mean of the worst 10%
  // of clients). Federated evaluation is an observer: it costs no virtual time.
  Status evaluate_global() {
    std::shared_ptr<const ArrayRecord> model = strategy_.global_model();
    if (eval_chunks_.empty()) {
      constexpr int64_t kEvalChunk = 1000;
      const auto& idx = sim_.test_.indices;
      for (size_t lo = 0; lo < idx.size(); lo += kEvalChunk) {
        Shard s;
        s.data = sim_.test_.data;
        s.indices.assign(idx.begin() + static_cast<std::ptrdiff_t>(lo),
                         idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), lo + kEvalChunk)));
        eval_chunks_.push_back(std::move(s));
      }
    }
    std::vector<const Shard*> shards;
    for (const Shard& chunk : eval_chunks_) shards.push_back(&chunk);
    const size_t n_central = shards.size();
    std::vector<size_t> holdout_clients;
    for (size_t c = 0; c < sim_.clients_.size(); ++c) {
      if (sim_.clients_[c].holdout.size() > 0) {
        shards.push_back(&sim_.clients_[c].holdout);
        holdout_clients.push_back(c);
      }
    }
    COHORT_ASSIGN_OR_RETURN(std::vector<EvalResult> results, evaluate_shards(model, shards));
    double loss_sum = 0;
    int64_t correct = 0, total = 0;
    for (size_t i = 0; i < n_central; ++i) {
      const EvalResult& r = results[i];
      loss_sum += r.loss * static_cast<double>(r.num_examples);
      correct += std::llround(r.accuracy * static_cast<double>(r.num_examples));
      total += r.num_examples;
    }
    EvalResult e;
    e.num_examples = total;
    e.loss = total > 0 ? loss_sum / static_cast<double>(total) : 0.0;
    e.accuracy = total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
    last_eval_version_ = strategy_.version();
    summary_.final_accuracy = e.accuracy;
    summary_.final_loss = e.loss;
    summary_.best_accuracy = std::max(summary_.best_accuracy, e.accuracy);
    if (opts_.target_accuracy > 0 && !summary_.time_to_target &&
        e.accuracy >= opts_.target_accuracy) {
      summary_.time_to_target = clock_.now();
    }
    Json ev = {{"event", "eval"},
               {"strategy", strategy_.name()},
               {"round", strategy_.version()},
               {"updates", summary_.updates},
               {"virtual_time_s", clock_.now()},
               {"wall_time_s", wall_seconds()},
               {"accuracy", e.accuracy},
               {"loss", e.loss},
               {"bytes_up", summary_.bytes_up},
               {"bytes_down", summary_.bytes_down}};
    if (!holdout_clients.empty()) {
      const FederatedEval f = federated_summary(
          std::span<const EvalResult>(results).subspan(n_central));
      ev["fed_accuracy"] = f.accuracy;
      ev["fed_loss"] = f.loss;
      ev["fed_worst10_accuracy"] = f.worst10_accuracy;
      ev["fed_clients"] = holdout_clients.size();
      summary_.final_fed_accuracy = f.accuracy;
      summary_.final_fed_worst10_accuracy = f.worst10_accuracy;
    }
    emit(std::move(ev));
    return Status();
  }

  Simulator& sim_;
  Strategy& strategy_;
  const SimOptions& opts_;
  Rng rng_;
  ManualClock clock_;
  std::chrono::steady_clock::time_point wall_start_;
  std::vector<std::unique_ptr<Trainer>> trainers_;
  std::unique_ptr<Trainer> eval_trainer_;  // init_params only; evaluation runs on the pool
  std::vector<Shard> eval_chunks_;
  std::unique_ptr<ThreadPool> pool_;
  std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
  std::vector<ClientState> clients_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::unordered_map<int64_t, InFlight> in_flight_;
  std::set<TimerId> cancelled_timers_;
  uint64_t next_seq_ = 0;
  int64_t next_task_ = 0;
  TimerId next_timer_ = 0;
  int64_t pending_timers_ = 0;  // timer events still in the queue (cancelled ones included)
  // Availability changes since the last dispatch that found nothing in flight and no timer.
  int64_t quiet_changes_ = 0;
  bool stopping_ = false;
  // The client whose update is being handed to the strategy (-1: none), and the task the
  // strategy dispatched to that client meanwhile, whose training waits (-1: none).
  ClientId delivering_ = -1;
  int64_t deferred_start_ = -1;
  std::optional<Status> failure_;
  ModelVersion last_eval_version_ = -1;
  double next_interval_eval_ = opts_.eval_interval_s;
  SimSummary summary_;
};

Simulator::Simulator(SimOptions options, TrainerFactory factory, std::vector<SimClient> clients,
                     Shard test, MetricsHub* metrics)
    : options_(std::move(options)), factory_(std::move(factory)), clients_(std::move(clients)),
      test_(std::move(test)), metrics_(metrics) {}

Simulator::~Simulator() = default;

Result<SimSummary> Simulator::run(Strategy& strategy) {
  COHORT_RETURN_IF_ERROR(options_.validate());
  if (clients_.empty()) return Status::invalid_argument("clients.count: no clients to simulate");
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (clients_[i].shard.size() == 0) {
      return Status::invalid_argument("client " + std::to_string(i) + " has no training examples");
    }
  }
  if (test_.size() == 0) return Status::invalid_argument("the test set is empty");
  if (!factory_) return Status::invalid_argument("no trainer factory");
  stop_requested_.store(false);
  Impl impl(*this, strategy);
  return impl.run();
}

}  // namespace cohort::sim
