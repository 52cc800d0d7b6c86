// Runtime: the runtime core both hosts share. It is the StrategyHost a strategy talks to, and
// it keeps everything a run needs that does not depend on how time passes or how bytes move:
//
//   - the client table (ClientInfo, availability, the task in flight, per-client statistics);
//   - task bookkeeping: dispatch (ids, records), arrival (counters, staleness, measured speed,
//     the strategy's verdict), loss (reasons, "lost" events), rejections;
//   - the single path an update takes into the strategy (receive(); admission is
//     admit_update() in admission.h, run by the host where the bytes arrive) -- where codec
//     decoding and robust / privacy wrappers plug in;
//   - counters and metric events ("start", "eval", "rejected", "lost", "checkpoint",
//     "clients", "summary"), evaluation cadence (initial, every eval_every commits, on demand,
//     final) and checkpoint cadence (every checkpoint_every commits, written after the event;
//     the deployment server sets 0 and calls checkpoint() itself, for durable acks);
//   - the budget (max commits, max host-clock time) and the stop reason.
//
// A host adds only its clock and its transport through RuntimeHost: the simulator (virtual
// clock, device models, a thread pool of trainers; sim/simulator.h) and the deployment server
// (steady clock, gRPC; deploy/server.h). docs/design/architecture.md has the picture.
//
// Thread safety: not thread-safe. The simulator calls it from its loop thread; the server
// from its loop thread and from gRPC handlers, always holding the server's lock. The strategy
// is only ever called from inside Runtime methods.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cohort/core/lazy_table.h"
#include "cohort/core/metrics.h"
#include "cohort/core/position_set.h"
#include "cohort/core/rng.h"
#include "cohort/core/status.h"
#include "cohort/runtime/admission.h"
#include "cohort/runtime/bandwidth.h"
#include "cohort/runtime/checkpoint.h"
#include "cohort/runtime/client_metrics.h"
#include "cohort/runtime/evaluation.h"
#include "cohort/runtime/privacy.h"
#include "cohort/runtime/robustness.h"
#include "cohort/runtime/summary.h"
#include "cohort/strategy/strategy.h"
#include "cohort/trainer/trainer.h"

namespace cohort::runtime {

struct RuntimeOptions {
  // Budget: stop after this many commits (0 = no limit) or when the host clock passes
  // max_time_s (0 = no limit; the host checks it with over_time()).
  int64_t max_commits = 0;
  double max_time_s = 0.0;
  // Evaluate every this many commits (0 = not per commit), and at start and finish.
  int64_t eval_every = 1;
  // time_to_target: first host time the test accuracy reached this (0 = off).
  double target_accuracy = 0.0;
  // Several models at once: each model's target by name (absent: target_accuracy); the run's
  // time_to_target is when the last of them reached its own.
  std::map<std::string, double> model_targets;
  // Seeds the strategy's random stream (Rng::derive(seed, "strategy")).
  uint64_t seed = 1;
  // Local steps for default_local_steps().
  TrainConfig training;
  // Checkpoints: directory (empty = none), every how many commits the runtime writes one after
  // the event (0 = never by itself: the host takes checkpoint() when it needs one, as the
  // deployment does for durable acknowledgements), and how many files to keep.
  std::string checkpoint_dir;
  int64_t checkpoint_every = 1;
  int64_t checkpoint_keep = 3;
  // A dispatch to a client that is not idle is a strategy bug. Strict (the simulator): the run
  // fails with Internal. Lenient (deployment): the task is reported lost on the next turn and
  // the run goes on.
  bool strict_dispatch = true;
  // Whether a dispatch ends the client's availability. Deployment: yes, a client is idle only
  // while it polls for work and must poll again after its task (it may have gone away). The
  // simulator: no, availability is being online, and a client is idle again when its update
  // has arrived.
  bool dispatch_ends_availability = false;
  // A failed evaluation after a commit: fatal (the simulator) or logged (deployment).
  bool eval_errors_fatal = true;
  // Bounds every update passes (admission.h; the YAML admission: section).
  AdmissionOptions admission;
  // Robust aggregation (the robust: section); nullopt = the strategies' plain weighted sums.
  std::optional<RobustOptions> robust;
  // Contribution estimates (the contribution: section); method "none" = off.
  ContributionSettings contribution;
  // Differential privacy and secure aggregation (the privacy: section; runtime/privacy.h).
  PrivacyOptions privacy;
  // The server's DP noise: seeded from `seed` so that runs repeat (the simulator), or drawn
  // from the operating system's randomness (a deployment).
  bool reproducible_noise = true;
  // Task ids are (epoch << 40) | n, n counting from this (deployment: 1, as 0 means "no
  // task" on the wire; the simulator: 0, as task numbers seed training).
  int64_t first_task_number = 0;
};

// A task in flight.
struct TaskRecord {
  int64_t id = 0;
  Task task;
  double dispatched_at = 0.0;
};

// What a host provides.
class RuntimeHost {
 public:
  virtual ~RuntimeHost() = default;
  // Seconds on the host's clock (virtual in the simulator, steady in deployment).
  virtual double now() const = 0;
  // Wall-clock seconds since the run started (the "wall_time_s" of events).
  virtual double wall_seconds() const = 0;
  // A task was dispatched: deliver it (schedule its training, or hand it to the client's next
  // pull). Called from inside the strategy's dispatch; must not call back into the strategy.
  virtual void launch(const TaskRecord& task) = 0;
  // Timers: call Runtime::fire_timer(id) once the host clock reaches `due`, unless cancelled.
  virtual void schedule_timer(TimerId id, double due) = 0;
  virtual void cancel_timer(TimerId id) = 0;
  // Evaluates `model`; nullopt when the host has nothing to evaluate on.
  virtual Result<std::optional<Evaluation>> evaluate(
      const std::shared_ptr<const ArrayRecord>& model) = 0;
  // Whether client `id` can be handed a task now besides being idle (deployment: it polled
  // within the liveness timeout). Default: yes.
  virtual bool reachable(ClientId id) const { return true; }
  // True when reachable() is true for every client at all times (the simulator, whose clients
  // come and go through Runtime::set_available): the runtime then keeps an index of its idle
  // clients instead of scanning every client each time a strategy samples.
  virtual bool always_reachable() const { return false; }
  // How an unavailable client is described in messages ("offline", "not polling").
  virtual std::string unavailable_state() const { return "not available"; }
  // The run continues from a checkpoint saved when the host clock read `t`: the clock should
  // go on from there (timers and task times in the checkpoint are on that clock). Called once,
  // first thing in Runtime::start. Default: nothing (a clock that cannot be moved).
  virtual void resume_clock(double t) {}
  // Robust aggregation hooks (runtime/robustness.h). Whether the host rewrites aggregation
  // groups before the rule (the simulator's colluding attackers), and the rewrite itself.
  virtual bool rewrites_groups() const { return false; }
  virtual Status rewrite_group(ModelVersion version, std::span<GroupMember> members) {
    return Status();
  }
  // Evaluates `model` on the server's validation data for contribution estimates; nullopt
  // when there is none. Default: the central evaluation of evaluate().
  virtual Result<std::optional<EvalResult>> evaluate_contribution(
      const std::shared_ptr<const ArrayRecord>& model) {
    COHORT_ASSIGN_OR_RETURN(std::optional<Evaluation> e, evaluate(model));
    if (!e) return std::optional<EvalResult>();
    return std::optional<EvalResult>(e->central);
  }
  // The run stopped (budget reached, failure, stop()): the reason. Default: nothing.
  virtual void on_stop(const std::string& reason) {}
  // An operator-facing line (deployment: stderr). Default: dropped.
  virtual void log(const std::string& line) {}
  // Who runs secure aggregation's rounds when the clients hold their updates (cohort serve);
  // null: the runtime runs them in process (the simulator). runtime/secagg.h.
  virtual SecAggTransport* secagg_transport() { return nullptr; }
};

class Runtime final : public StrategyHost {
 public:
  // `metrics` may be null. The strategy and host must outlive the Runtime.
  Runtime(RuntimeOptions options, Strategy& strategy, RuntimeHost& host, MetricsHub* metrics);

  // ---- clients ---------------------------------------------------------------------------
  // Registers client `id` (not available yet); a known id only updates num_examples.
  // After add_population, REQUIRES: 0 <= id < the population's size.
  void add_client(ClientId id, int64_t num_examples);
  // Registers clients 0 .. n-1 at once (the simulator's population), client i with
  // num_examples[i] examples (n = its size; the span must stay valid for the Runtime's life),
  // all available or none: O(1), whatever n. A client's record is created the first time
  // something about it changes (docs/design/scale.md); until then it costs nothing.
  // REQUIRES: no client registered yet.
  void add_population(std::span<const int64_t> num_examples, bool available);
  bool has_client(ClientId id) const;
  // The client can take a task when it has none (simulator: online; deployment: polling).
  void set_available(ClientId id, bool available);
  bool available(ClientId id) const;
  // Tells the strategy that `id` is idle, if it is (available, no task, reachable) and the
  // run is not stopping.
  void offer(ClientId id);
  // offer() for every client in ascending id order, until the strategy wants no more idle
  // clients (Strategy::wants_idle_clients): a round strategy that opened its round at the
  // first of a million is not called a million times.
  void offer_all();
  // The task client `id` has in flight, or null.
  const TaskRecord* task_of(ClientId id) const;
  const TaskRecord* task(int64_t task_id) const;
  // Per-client statistics, for host-specific counts (offline periods).
  ClientStats& stats(ClientId id);
  // Every registered client id, ascending (also StrategyHost::client_ids).
  std::vector<ClientId> client_ids() const override;

  // ---- lifecycle -------------------------------------------------------------------------
  // Starts the strategy with `initial`, restores `resume` if given (the strategy's state
  // including work in progress, rng, clients and their statistics, counters, timers, clock,
  // epoch), emits "start" (strategy, clients, params, max_rounds, seed, then `start_fields`)
  // and evaluates the initial model. After a restore every client is unavailable until the
  // host says otherwise, and the tasks that were in flight at save time are lost with reason
  // "restart" (their clients went with the old process). Errors from the strategy, the
  // checkpoint (DataLoss / InvalidArgument with context) or the evaluation.
  Status start(ArrayRecord initial, Json start_fields, std::optional<Checkpoint> resume = {});
  // The version the run resumed from, or -1.
  ModelVersion resumed_from() const { return resumed_from_; }
  // Everything needed to continue the run after a crash, as of now. FailedPrecondition when
  // the global model is not finite (a model that fails the sanity check is never saved);
  // the strategy's errors (Unimplemented) otherwise.
  Result<Checkpoint> checkpoint() const;
  // Updates accepted so far in this process (never decreases): a checkpoint taken after the
  // n-th acceptance holds it.
  int64_t accepted_seq() const { return accepted_seq_; }
  // Evaluates the global model now (emits "eval", updates the summary).
  Status evaluate_now();
  // Ends the run: a final evaluation when the last committed model was not evaluated (and
  // the run has not failed), then the summary, emitted as "clients" and "summary" events (the
  // latter with `extra_fields`, e.g. the deployment's "mode"). Returns the run's failure, if
  // any, else the summary. Call once.
  Result<RunSummary> finish(const Json& extra_fields = Json::object());

  // ---- admission -------------------------------------------------------------------------
  // Thread-safe: a deployment admits updates on its gRPC handler threads.
  Admission& admission() { return admission_; }
  // What client `id` registered and the clients' median, for Admission::admit.
  AdmissionContext admission_context(ClientId id);

  // ---- tasks -----------------------------------------------------------------------------
  // An admitted update (Admission::admit) for task `task_id` arrived with `bytes_up` bytes:
  // the task ends, counters and staleness are updated, the strategy decides. Returns the
  // strategy's verdict (a rejection, or a commit the update made non-finite, is counted and
  // emitted as "rejected"), or FailedPrecondition when the task is no longer in flight or the
  // run is over. An accepted update's norm joins the admission window.
  Status receive(int64_t task_id, Update update, int64_t bytes_up,
                 const AdmissionOutcome& outcome = {});
  // Task `task_id` will never return: it ends, is counted under `reason` and emitted as
  // "lost", and the strategy is told (unless the run is stopping). The client stays available
  // or not as it was. No-op for a task no longer in flight.
  void lose(int64_t task_id, const std::string& reason);
  // Like lose() without telling the strategy: for callers that must not call it (a gRPC
  // handler); they call notify_lost() later from the loop. Returns the task's version.
  std::optional<ModelVersion> take_lost(int64_t task_id, const std::string& reason);
  void notify_lost(ClientId id, ModelVersion version);
  // The update for task `task_id` failed admission: counted and emitted as "rejected", and
  // the task is lost (reason "rejected") so the strategy, which never sees the update, can
  // close its round. For a gRPC handler: count_rejected + take_lost, then notify_lost later.
  void reject(int64_t task_id, const Status& why);
  // Counts and emits a rejected update from `id` (no task bookkeeping).
  void count_rejected(ClientId id, const Status& why);
  void add_bytes_down(int64_t bytes) { summary_.bytes_down += bytes; }
  void add_bytes_up(int64_t bytes) { summary_.bytes_up += bytes; }
  // A transfer of `bytes` between the server and a client over [start, end) on the host's
  // clock, for the run's peak bandwidth (summary "peak_bytes_per_s"; bandwidth.h); `initial`:
  // the client's first download of the model (left out of "peak_sync_bytes_per_s").
  void record_transfer(double start, double end, int64_t bytes, bool initial = false) {
    bandwidth_.add(start, end, bytes, initial);
  }
  // Under secure aggregation: the size of a client's masked input for a model of `numel`
  // parameters (what its upload carries instead of the update); nullopt otherwise.
  std::optional<int64_t> masked_input_bytes(int64_t numel) const {
    return privacy_ ? privacy_->masked_input_bytes(numel) : std::nullopt;
  }

  // ---- events from the host --------------------------------------------------------------
  void fire_timer(TimerId id);
  // Runs what was deferred during the last event (checkpoints, lost reports of bad
  // dispatches). Hosts call it after every event.
  void after_event();

  // ---- run state -------------------------------------------------------------------------
  bool stopping() const { return stopping_; }
  // Stops the run with `reason` (first reason wins); the host is told through on_stop.
  void stop(const std::string& reason);
  const std::string& stop_reason() const { return summary_.stop_reason; }
  bool over_time(double t) const { return options_.max_time_s > 0 && t >= options_.max_time_s; }
  // A failure ends the run: the first one is kept.
  void fail(Status s);
  const std::optional<Status>& failure() const { return failure_; }
  RunSummary& summary() { return summary_; }
  const RuntimeOptions& options() const { return options_; }
  Strategy& strategy() { return strategy_; }
  // Epoch: how many times this run was resumed (task ids and checkpoints carry it).
  int64_t epoch() const { return epoch_; }

  // ---- StrategyHost ----------------------------------------------------------------------
  double now() const override;
  std::vector<ClientId> idle_clients() const override;
  IdleClients idle_view() const override;
  bool is_idle(ClientId id) const override;
  size_t num_clients() const override {
    return has_population() ? population_.size() : entries_.size();
  }
  ClientInfo client_info(ClientId id) const override;
  int64_t default_local_steps(ClientId id) const override;
  void dispatch(Task task) override;
  TimerId set_timer(double delay_s) override;
  void cancel_timer(TimerId id) override;
  void on_commit(ModelVersion version) override;
  Status check_commit(const ArrayRecord& current, const ArrayRecord& next) const override;
  void on_commit_refused(const Status& why) override;
  Rng& rng() override { return rng_; }
  void emit(Json event) override;

 private:
  // How the client's last task ended (the live view's lost / rejected states).
  enum class Outcome : uint8_t { kNone, kAccepted, kRejected, kLost };
  // What a client did, allocated when it first gets a task or an update or goes offline: a
  // client that never takes part costs only its Entry (docs/design/scale.md).
  struct Activity {
    ClientStats stats;
    int64_t arrived = 0;  // updates that arrived (accepted or rejected)
    int64_t staleness_sum = 0;
    int64_t last_staleness = 0;
    // Mean staleness of its updates that arrived; 0 when none did.
    double mean_staleness() const {
      return arrived > 0 ? static_cast<double>(staleness_sum) / static_cast<double>(arrived) : 0.0;
    }
  };
  struct Entry {
    ClientInfo info;
    int64_t task = -1;  // id of the task in flight, -1 = none
    double changed_at = 0.0;
    std::unique_ptr<Activity> activity;  // null until the client takes part
    bool available = false;
    Outcome outcome = Outcome::kNone;
    bool live_dirty = false;  // in live_dirty_
  };
  // The client's activity, allocated on first use.
  static Activity& act(Entry& e);
  // The client's activity, or all zeros when it has none.
  static const Activity& act_or_zero(const Entry& e);
  // The client's record, to change it (a population client's is created here); null for an
  // unknown id.
  Entry* find(ClientId id);
  // The client's record, to read it: a population client that has none yet reads as its
  // default, valid until the next peek(). Null for an unknown id.
  const Entry* peek(ClientId id) const;
  // Whether the clients were registered as a population (add_population), and whether `id`
  // is one of its clients.
  bool has_population() const { return population_.size() > 0; }
  bool in_population(ClientId id) const {
    return id >= 0 && static_cast<size_t>(id) < population_.size();
  }
  // A population client's record before anything about it changed.
  Entry population_entry(ClientId id) const;
  // The i-th client's id in ascending order, which is position i of the idle index; and the
  // position of a record.
  ClientId id_at(size_t i) const {
    return has_population() ? static_cast<ClientId>(i) : entries_[i].info.id;
  }
  size_t position_of(const Entry& e) const {
    return has_population() ? static_cast<size_t>(e.info.id)
                            : static_cast<size_t>(&e - entries_.data());
  }
  // Every client's record (read-only), ascending ids; population clients without one read as
  // their default. O(clients).
  template <typename F>
  void for_each_client(F&& f) const {
    const size_t n = num_clients();
    for (size_t i = 0; i < n; ++i) f(*peek(id_at(i)));
  }
  // The records that exist, ascending ids: every registered client's, or a population's that
  // took part or changed in some way. The others are all defaults.
  std::vector<const Entry*> records() const;
  std::vector<Entry*> records();
  bool idle(const Entry& e) const;
  // The idle index's positions of the ks-th idle clients.
  void select_positions(std::span<const uint64_t> ks, std::span<ClientId> out) const;
  // The idle index (always_reachable hosts): entry positions that are available with no task.
  // Rebuilt on first use after the table changed shape, then kept by mark().
  void index_idle(const Entry& e);
  // Removes task `task_id` from the table; nullopt when not in flight.
  std::optional<TaskRecord> take(int64_t task_id);
  void count_lost(const TaskRecord& r, const std::string& reason);
  Status write_checkpoint_now();
  // The "clients" event (every participating client's statistics), streamed as text.
  void emit_clients_event();
  // Adds the clock fields every event carries (virtual_time_s, wall_time_s) unless set.
  void stamp(Json& event) const;
  // Live view (runtime_clients.cc): `e` changed; publishes the changed rows and the totals.
  void mark(Entry& e);
  LiveClient live_row(const Entry& e) const;
  void publish_live();
  Json runtime_state() const;
  // Restores runtime_state(); the ids of the tasks that were in flight go to `in_flight`.
  Status restore_runtime_state(const Json& r, std::vector<int64_t>* in_flight);

  RuntimeOptions options_;
  Admission admission_;
  std::unique_ptr<RobustRuntime> robust_;
  std::unique_ptr<PrivacyRuntime> privacy_;
  Strategy& strategy_;
  RuntimeHost& host_;
  MetricsHub* metrics_;
  Rng rng_;
  // The client table (docs/design/scale.md). Clients registered one by one (add_client: the
  // deployment's) are entries_, sorted by id (entries_[id] when ids are dense). A population
  // registered at once (add_population: the simulator's 0 .. n-1) is population_, whose
  // records exist only for the clients something happened to; the others read as
  // population_entry(id).
  std::vector<Entry> entries_;
  LazyTable<Entry> population_;
  std::span<const int64_t> population_examples_;
  bool population_available_ = false;
  mutable Entry peeked_;  // what peek() returns for a population client without a record
  mutable PositionSet idle_index_;
  mutable bool idle_index_valid_ = false;
  std::unordered_map<int64_t, TaskRecord> tasks_;
  int64_t epoch_ = 0;
  int64_t next_task_number_;
  TimerId next_timer_ = 0;
  std::map<TimerId, double> timers_;  // pending timers and when they are due
  int64_t accepted_seq_ = 0;
  ClientMetricsMean client_metrics_;  // clients' metrics into the commit events
  bool stopping_ = false;
  std::optional<Status> failure_;
  ModelVersion last_eval_version_ = -1;
  ModelVersion resumed_from_ = -1;
  int64_t commits_since_checkpoint_ = 0;
  bool checkpoint_pending_ = false;
  std::vector<std::function<void()>> deferred_;
  // The median of the clients' registered example counts (typical_dirty_: recompute).
  int64_t typical_examples_ = 0;
  bool typical_dirty_ = true;
  // A commit refused while the strategy handled the update being received (else OK).
  Status refused_during_receive_;
  bool receiving_ = false;
  RunSummary summary_;
  BandwidthMeter bandwidth_;
  // Live view: on from start() when a sink wants it (MetricsHub::wants_live).
  bool live_ = false;
  bool live_published_ = false;
  std::vector<ClientId> live_dirty_;
  LiveTotals live_totals_;
};

}  // namespace cohort::runtime
