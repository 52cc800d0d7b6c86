#include "cohort/sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <unordered_map>

#include "cohort/core/clock.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/runtime/compression.h"
#include "cohort/runtime/evaluator.h"
#include "cohort/runtime/model_file.h"
#include "cohort/runtime/runtime.h"
#include "cohort/strategy/task_config.h"
#include "cohort/trainer/control_variates.h"
#include "sim/adversary.h"
#include "sim/remote_job.h"
#include "sim/sim_state.h"
#include "sim/training_job.h"

namespace cohort::sim {

// The simulator's host side: virtual clock, event queue, device profiles and the training pool.
// The runtime core (core_) owns the strategy's view of the run.
class Simulator::Impl final : public runtime::RuntimeHost {
 public:
  // `examples`: each client's training examples; `holdouts`: their non-empty held-out
  // shards, for federated evaluation.
  Impl(Simulator& sim, Strategy& strategy, std::vector<int64_t> examples,
       std::vector<const Shard*> holdouts)
      : sim_(sim),
        opts_(sim.options_),
        strategy_(strategy),
        core_(core_options(opts_), strategy, *this, sim.metrics_),
        examples_(std::move(examples)),
        holdouts_(std::move(holdouts)) {}

  ~Impl() override {
    // Jobs not yet started return at once; running ones finish before the pool dies.
    cancel_->store(true);
    pool_.reset();
  }

  Result<SimSummary> run() {
    wall_start_ = std::chrono::steady_clock::now();
    runtime::CompressionOptions compression = opts_.compression;
    runtime::PrivacyOptions privacy = opts_.privacy;
    runtime::fold_uplink_into_secagg(compression, privacy);
    COHORT_ASSIGN_OR_RETURN(compression_, runtime::Compression::create(compression));
    if (compression_.downlink_delta) {
      downlink_deltas_ = std::make_unique<runtime::DownlinkDeltas>(
          compression_.downlink, compression_.downlink_history, opts_.run.seed);
    }
    const size_t n_threads = opts_.run.threads == 0
                                 ? std::max(1u, std::thread::hardware_concurrency())
                                 : static_cast<size_t>(opts_.run.threads);
    // Per-worker trainers plus one that makes the initial model on this thread.
    for (size_t i = 0; i < n_threads; ++i) {
      COHORT_ASSIGN_OR_RETURN(auto t, sim_.factory_());
      trainers_.push_back(std::move(t));
    }
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> init_trainer, sim_.factory_());
    // While every simulation's threads and loop fit the cores, the loop spins up to 1 ms for a
    // result before sleeping (take_result), and an idle training thread up to 1 ms for the
    // next task (between rounds): at 1M one-step clients the first took the loop's overhead
    // from ~30% to ~6%, the second (with faster sampling) to ~5% (docs/design/scale.md).
    cores_.claim(static_cast<int64_t>(n_threads) + 1);
    pool_ = std::make_unique<ThreadPool>(
        n_threads, ThreadPool::IdleSpin{std::chrono::milliseconds(1), &CoreClaim::fits_here});
    {
      std::vector<const Shard*> shards;  // an attack's victims-to-be (none: not needed)
      if (opts_.attack.kind != "none") {
        for (const SimClient& c : *sim_.clients_) shards.push_back(&c.shard);
      }
      COHORT_ASSIGN_OR_RETURN(adversary_,
                              Adversary::create(opts_.attack, shards,
                                                Rng::mix_seed(opts_.run.seed, "attackers")));
      core_.summary().attackers = adversary_.attackers();
    }

    // The population, registered at once: a client costs the runtime and this loop nothing
    // until it takes part (docs/design/scale.md).
    clients_.reset(examples_.size());
    core_.add_population(examples_, /*available=*/true);
    std::vector<Trainer*> workers;
    for (auto& t : trainers_) workers.push_back(t.get());
    evaluator_ =
        std::make_unique<Evaluator>(pool_.get(), workers, sim_.test_, std::move(holdouts_));
    if (opts_.contribution.enabled()) {
      Shard validation = validation_sample(sim_.test_, opts_.contribution_validation_examples,
                                           Rng::derive(opts_.run.seed, "contribution_validation"));
      validator_ = std::make_unique<Evaluator>(pool_.get(), workers, std::move(validation));
    }

    COHORT_ASSIGN_OR_RETURN(
        ArrayRecord initial,
        initial_model(*init_trainer, opts_.init_model, Rng::mix_seed(opts_.run.seed, "init")));
    COHORT_RETURN_IF_ERROR(core_.start(
        std::move(initial),
        {{"max_virtual_time_s", opts_.run.max_virtual_time_s},
         {"threads", n_threads},
         {"attackers", adversary_.attackers()}}));

    const Availability& avail = opts_.dynamics.availability;
    if (avail.enabled()) {
      availability_rngs_.reserve(examples_.size());
      for (size_t i = 0; i < examples_.size(); ++i) {
        availability_rngs_.push_back(Rng::derive(opts_.run.seed, "availability", i));
        schedule_availability(static_cast<ClientId>(i),
                              avail.sample(availability_rngs_[i], /*online=*/true),
                              EventKind::kOffline);
      }
    }
    core_.offer_all();

    // With availability the queue never empties. This many availability changes since the
    // last dispatch, each finding nothing in flight and no timer pending, mean the strategy
    // has stopped working (it was offered every returning client and sent nothing).
    const int64_t quiet_limit = 100 * static_cast<int64_t>(examples_.size());
    const double max_time = opts_.run.max_virtual_time_s;
    std::string limit;  // set when the loop ends at a limit or a stop request
    bool stalled = false;
    const double loop_start = wall_seconds();
    while (!core_.stopping() && !core_.failure() && !queue_.empty()) {
      if (sim_.stop_requested_.load() || (opts_.stop_flag && opts_.stop_flag->load())) {
        limit = "stopped";
        break;
      }
      Event ev = queue_.top();
      // Interval evaluations: the model as it stands at each multiple of eval_interval_s
      // passed before this event (so curves of different strategies share time points).
      while (opts_.run.eval_interval_s > 0 && next_interval_eval_ <= ev.time &&
             (max_time == 0 || next_interval_eval_ <= max_time)) {
        clock_.set(next_interval_eval_);
        next_interval_eval_ += opts_.run.eval_interval_s;
        Status es = core_.evaluate_now();
        if (!es.ok()) core_.fail(es);
      }
      if (core_.failure()) break;
      if (max_time > 0 && ev.time > max_time) {
        clock_.set(max_time);
        limit = "max_time";
        break;
      }
      queue_.pop();
      clock_.set(ev.time);
      switch (ev.kind) {
        case EventKind::kTimer:
          --pending_timers_;
          if (cancelled_timers_.erase(ev.id) == 0) core_.fire_timer(ev.id);
          break;
        case EventKind::kTaskDone:
          deliver(ev.id);
          break;
        case EventKind::kTrained:
          start_upload(ev.id);
          break;
        case EventKind::kTaskLost:
          lose_task(ev.id, "dropout");
          break;
        case EventKind::kOffline:
        case EventKind::kOnline:
          set_online(static_cast<ClientId>(ev.id), ev.kind == EventKind::kOnline);
          if (in_flight_.empty() && pending_timers_ == 0 && ++quiet_changes_ > quiet_limit) {
            stalled = true;
          }
          break;
      }
      core_.after_event();
      start_pending();
      if (stalled) break;
    }
    core_.summary().loop_wall_s = wall_seconds() - loop_start;
    if (core_.failure()) return *core_.failure();
    if (!core_.stopping() && limit.empty() && queue_.empty()) stalled = true;
    core_.stop(stalled ? "stalled" : !limit.empty() ? limit : "rounds");

    RunSummary& summary = core_.summary();
    summary.stalled = stalled;
    // Offline periods still open at the end count up to now.
    for (size_t i : clients_.created_positions()) {
      const SimClientState& cs = *clients_.find(i);
      if (!cs.online) {
        core_.stats(static_cast<ClientId>(i)).offline_s += clock_.now() - cs.offline_since;
      }
    }
    COHORT_ASSIGN_OR_RETURN(SimSummary s, core_.finish());
    sim_.final_model_ = strategy_.global_model();
    return s;
  }

  // ---- RuntimeHost ----------------------------------------------------------------------
  double now() const override { return clock_.now(); }

  double wall_seconds() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
  }

  std::string unavailable_state() const override { return "offline"; }

  // Computes the task's arrival on the virtual clock from the client's device profile and the
  // real byte counts, and starts its training on the pool.
  void launch(const runtime::TaskRecord& record) override {
    const int64_t number = record.id;
    const Task& task = record.task;
    const ClientId c = task.client;
    quiet_changes_ = 0;
    const ClientDynamics& dyn = opts_.dynamics;
    const DeviceProfile& dev = (*sim_.clients_)[c].device;
    InFlight f;
    // A server_state goes down with the model and its state_delta (same layout) comes back
    // with the model delta, both as float32. The model goes through the downlink chain if
    // one is set; the delta's uplink size is known once it is encoded (kTrained).
    const int64_t state_bytes = task.server_state ? task.server_state->num_bytes() : 0;
    int64_t model_bytes = task.model->num_bytes();
    f.start_model = task.model;
    if (compression_.downlink) {
      Result<std::pair<std::shared_ptr<const ArrayRecord>, int64_t>> dm = downlink_model(task);
      if (!dm.ok()) {
        core_.fail(dm.error());
        return;
      }
      std::tie(f.start_model, model_bytes) = *dm;
    }
    f.bytes_up = task.model->num_bytes() + state_bytes;
    // Under secure aggregation what travels is the masked input (the key, share and unmask
    // messages are counted in the "secagg" events).
    std::optional<int64_t> masked = core_.masked_input_bytes(task.model->numel());
    if (masked) f.bytes_up = *masked + state_bytes;
    // A Streaming DiLoCo task moves fragments: the one merged down, the one synchronised up.
    Result<StreamingPlan> plan =
        streaming_plan(task, peek_state(c).kept_or_empty().kept_model, masked.has_value(),
                       compression_.downlink != nullptr);
    if (!plan.ok()) {
      core_.fail(plan.error());
      return;
    }
    if (plan->fragments) {
      model_bytes = plan->bytes_down;
      f.bytes_up = plan->bytes_up + state_bytes;
    }
    Result<std::optional<int64_t>> part = model_part_bytes(task, compression_.any(), masked.has_value());
    if (!part.ok() || *part) {
      if (!part.ok()) return core_.fail(part.error());
      model_bytes = **part;
      f.bytes_up = **part + state_bytes;
    }
    const int64_t bytes_down = model_bytes + state_bytes;
    f.state_bytes = state_bytes;
    const double nominal_compute_s = static_cast<double>(task.local_steps) / dev.speed;
    double compute_s = nominal_compute_s;
    if (dyn.jitter > 0) {
      Rng jitter = Rng::derive(opts_.run.seed, "jitter", static_cast<uint64_t>(c),
                               static_cast<uint64_t>(number));
      compute_s *= std::max(0.05, jitter.normal(1.0, dyn.jitter));
    }
    const bool dropout =
        dyn.dropout > 0 && Rng::derive(opts_.run.seed, "dropout", static_cast<uint64_t>(c),
                                       static_cast<uint64_t>(number))
                                   .uniform() < dyn.dropout;
    const double down_s = static_cast<double>(bytes_down) / dev.down_bytes_per_s;
    const double up_s = static_cast<double>(f.bytes_up) / dev.up_bytes_per_s;
    double trained_at = record.dispatched_at + 2.0 * dev.latency_s + down_s + compute_s;
    SimClientState& client = state(c);
    if (plan->overlap > 0 && client.trained_at > 0) {
      // The first `overlap` steps ran while the previous round's update went up and the merged
      // fragment came down: training ends the remaining steps after whichever ends last.
      const double step_s = compute_s / static_cast<double>(task.local_steps);
      trained_at = std::max(client.trained_at + static_cast<double>(plan->overlap) * step_s,
                            record.dispatched_at + 2.0 * dev.latency_s + down_s) +
                   static_cast<double>(task.local_steps - plan->overlap) * step_s;
    }
    const double arrival = trained_at + up_s;
    core_.add_bytes_down(bytes_down);
    const double down_at = record.dispatched_at + dev.latency_s;
    core_.record_transfer(down_at, down_at + down_s, bytes_down, !client.downloaded);
    client.downloaded = true;
    if (!dropout && !compression_.uplink) core_.record_transfer(arrival - up_s, arrival, f.bytes_up);
    if (dropout) {
      // Never trained: nothing would come back. The runtime gives up at its deadline.
      const double expected = 2.0 * dev.latency_s + down_s + nominal_compute_s + up_s;
      in_flight_.emplace(number, std::move(f));
      queue_.push(Event{clock_.now() + dyn.task_timeout_factor * expected, next_seq_++,
                        EventKind::kTaskLost, number});
      return;
    }
    const double due = f.due = compression_.uplink ? trained_at : arrival;
    in_flight_.emplace(number, std::move(f));
    client.trained_at = trained_at;
    if (compression_.uplink) {
      queue_.push(Event{trained_at, next_seq_++, EventKind::kTrained, number});
    } else {
      queue_.push(Event{arrival, next_seq_++, EventKind::kTaskDone, number});
    }
    // A task for the client whose update the strategy is handling right now (a round that
    // closes and re-samples it) starts once the simulator knows whether that update was
    // accepted, i.e. which client state the new task starts from.
    if (c == delivering_) {
      deferred_start_ = number;
    } else {
      queue_start(number, due);
    }
  }

  // Clients come and go through Runtime::set_available (availability traces, attacks).
  bool always_reachable() const override { return true; }

  void schedule_timer(TimerId id, double due) override {
    ++pending_timers_;
    queue_.push(Event{due, next_seq_++, EventKind::kTimer, id});
  }

  void cancel_timer(TimerId id) override { cancelled_timers_.insert(id); }

  // The runtime's Evaluator on this pool: the test set in fixed chunks and every client's
  // held-out split. Evaluation is an observer: it costs no virtual time.
  Result<std::optional<Evaluation>> evaluate(
      const std::shared_ptr<const ArrayRecord>& model) override {
    COHORT_ASSIGN_OR_RETURN(Evaluation e, evaluator_->evaluate(*model));
    return std::optional<Evaluation>(std::move(e));
  }

  // Contribution utilities on the validation sample (costs no virtual time either).
  Result<std::optional<EvalResult>> evaluate_contribution(
      const std::shared_ptr<const ArrayRecord>& model) override {
    if (!validator_) return std::optional<EvalResult>();
    COHORT_ASSIGN_OR_RETURN(Evaluation e, validator_->evaluate(*model));
    return std::optional<EvalResult>(e.central);
  }

  bool rewrites_groups() const override { return adversary_.rewrites_groups(); }
  Status rewrite_group(ModelVersion /*version*/, std::span<GroupMember> members) override {
    return adversary_.rewrite_group(clock_.now(), members);
  }

 private:
  // The start window (docs/design/scale.md): launched tasks go to the pool, earliest due
  // first, while fewer than kStartWindow per thread wait there, and at once when the loop
  // needs the result; what a task reads of its client is fixed from launch to delivery, so
  // when it starts changes nothing. Under MPI every task goes out at launch.
  static constexpr int64_t kStartWindow = 64;
  void queue_start(int64_t number, double due) {
    if (opts_.remote_training) return start_training(number, in_flight_.at(number));
    pending_starts_.push({due, number});
    start_pending();
  }
  void start_pending() {
    const auto window = kStartWindow * static_cast<int64_t>(pool_->size());
    while (!pending_starts_.empty() && pool_->queued() < window) {
      const int64_t number = pending_starts_.top().second;
      pending_starts_.pop();
      auto it = in_flight_.find(number);
      if (it != in_flight_.end()) start_now(number, it->second);  // unless lost meanwhile
    }
  }
  // Task `number`'s training, handed to the pool now if it was still waiting its turn; false
  // when that failed (the run is failing).
  bool start_now(int64_t number, InFlight& f) {
    if (!f.started) start_training(number, f);
    return !core_.failure();
  }

  // Submits task `number`'s training to the pool, with the gradient correction of its client
  // state. The state is read here, on the loop thread that owns the store; the worker gets only
  // the correction.
  void start_training(int64_t number, InFlight& f) {
    const runtime::TaskRecord* rec = core_.task(number);
    f.started = true;
    const Task& task = rec->task;
    const ClientId c = task.client;
    // Only a task carrying a server_state makes the client keep a state (c_i).
    ArrayRecord no_state;
    Result<ArrayRecord> correction =
        client_state_correction(task, task.server_state ? state(c).kept().client_state : no_state);
    if (!correction.ok()) {
      core_.fail(correction.error());
      return;
    }
    std::shared_ptr<const ArrayRecord> grad_correction;
    if (!correction->empty()) {
      grad_correction = std::make_shared<const ArrayRecord>(std::move(*correction));
    }
    const uint64_t seed = Rng::mix_seed(opts_.run.seed, "task", static_cast<uint64_t>(c),
                                        static_cast<uint64_t>(number));
    // In the pool, the result needed first, first. MPI ranks run bigger tasks first (so that
    // a round does not end with one rank on its longest task) and keep the version they were
    // sent for the tasks that follow (docs/design/mpi.md).
    const double priority = opts_.remote_training ? static_cast<double>(task.local_steps) : -f.due;
    // With uplink compression the worker also encodes the delta (error feedback from a copy of
    // the client's residual) and decodes it as the server will, in parallel with the others.
    std::vector<float> residual;
    if (compression_.uplink && compression_.uplink->error_feedback()) {
      residual = peek_state(c).kept_or_empty().ef_residual;
    }
    // An attacker dispatched from attack.start on trains on flipped labels or rewrites its
    // delta (sim/adversary.h).
    const double now = rec->dispatched_at;  // = launch time, whenever it starts
    const Shard* shard = &adversary_.shard(c, now, (*sim_.clients_)[c].shard);
    const bool attack_delta = adversary_.rewrites_delta(c, now);
    // Client-side DP (runtime/privacy.h): the client clips (and noises) its own delta.
    const bool client_dp = task.config.count(kDpClipNormKey) > 0;
    // The client's optimizer state goes with the task (a copy: a lost task leaves it as it was).
    Result<bool> keep = task_keep_optimizer_state(task.config);
    if (!keep.ok()) {
      core_.fail(keep.error().with_context("task for client " + std::to_string(c)));
      return;
    }
    std::optional<ArrayRecord> opt_state;
    if (*keep) opt_state = peek_state(c).kept_or_empty().optimizer_state.clone();
    // A Streaming DiLoCo worker trains its own model (a copy, kept when the update arrives).
    const std::optional<TaskStreaming> stream = *task_streaming(task.config);  // checked at launch
    std::optional<KeptModel> kept;
    if (stream) kept = peek_state(c).kept_or_empty().kept_model.clone();
    if (opts_.remote_training) {  // another process trains it (remote_training.h)
      auto job = submit_remote(*opts_.remote_training, task,
                               {number, seed, std::move(grad_correction), std::move(opt_state),
                                priority, f.abandoned, stream.has_value(), client_dp, attack_delta});
      if (!job.ok()) return core_.fail(job.error());
      f.result = std::move(*job);
      return;
    }
    TrainingJob job{.model = f.start_model,
                    .client = c,
                    .steps = task.local_steps,
                    .config = task.config,
                    .seed = seed,
                    .grad_correction = std::move(grad_correction),
                    .cancel = cancel_,
                    .abandoned = f.abandoned,
                    .residual = std::move(residual),
                    .uplink_seed = runtime::uplink_seed(opts_.run.seed, c, number),
                    .shard = shard,
                    .attack_delta = attack_delta,
                    .client_dp = client_dp,
                    .optimizer_state = std::move(opt_state),
                    .stream = stream,
                    .kept = std::move(kept)};
    f.slot = post_with_slot(
        *pool_,
        [this, job = std::move(job)](size_t worker) mutable {
          return run_training_job(job, *trainers_[worker],
                                  {opts_.training, compression_, adversary_, dp_client_seed_});
        },
        priority);
  }

  // Task `number`'s training ended and its compressed upload starts: its duration follows
  // from the payload's real size.
  void start_upload(int64_t number) {
    auto it = in_flight_.find(number);
    if (it == in_flight_.end()) return;  // lost meanwhile
    InFlight& f = it->second;
    if (!start_now(number, f)) return;
    f.ready = take_result(f);
    if (f.ready->ok()) f.bytes_up = (*f.ready)->payload_bytes + f.state_bytes;
    const DeviceProfile& dev = (*sim_.clients_)[core_.task(number)->task.client].device;
    const double up_s = static_cast<double>(f.bytes_up) / dev.up_bytes_per_s;
    core_.record_transfer(clock_.now(), clock_.now() + up_s, f.bytes_up);
    queue_.push(Event{clock_.now() + up_s, next_seq_++, EventKind::kTaskDone, number});
  }

  // Task f's training result (collected at kTrained, or waited for now: spinning up to 1 ms
  // first while every simulation's threads and loop fit the cores, parallel.h).
  Result<Trained> take_result(InFlight& f) {
    if (f.ready) return std::move(*f.ready);
    const std::chrono::nanoseconds spin =
        CoreClaim::fits_here() ? std::chrono::milliseconds(1) : std::chrono::milliseconds(0);
    if (f.slot) return f.slot->take(spin);
    wait_spinning(f.result, spin);
    return f.result.get();
  }

  // Task `number`'s result reaches the server at the current virtual time.
  void deliver(int64_t number) {
    auto it = in_flight_.find(number);
    if (it == in_flight_.end()) return;  // lost when its client went offline
    if (!start_now(number, it->second)) return;
    InFlight f = std::move(it->second);
    in_flight_.erase(it);
    const Task task = core_.task(number)->task;
    const ClientId c = task.client;
    Result<Trained> r = take_result(f);
    if (!r.ok()) {  // Unavailable: the client's own failure (trainer.h); the run goes on
      if (r.error().code() != StatusCode::kUnavailable) {
        return core_.fail(r.error().with_context("training client " + std::to_string(c)));
      }
      core_.reject(number, r.error());
      return core_.offer(c);
    }
    TrainResult& tr = r->result;
    // A trainer returning another layout is a bug in the trainer, not bad client input.
    Status shape = task.model->check_same_layout(tr.params, "trainer output");
    if (!shape.ok()) {
      core_.fail(shape);
      return;
    }
    SimClientState& cs = state(c);
    if (r->optimizer_state) cs.kept().optimizer_state = std::move(*r->optimizer_state);
    if (r->kept_model) cs.kept().kept_model = std::move(*r->kept_model);
    if (r->delta_ready) {
      // Computed (attacked, encoded and decoded) on the worker; the client's residual advances
      // with the upload.
      if (compression_.uplink && compression_.uplink->error_feedback()) {
        cs.kept().ef_residual = std::move(r->residual);
      }
    } else {
      // delta = start - end, computed in place in the result buffer.
      ops::sub(f.start_model->flat(), tr.params.flat(), tr.params.flat());
    }
    Result<ClientStateUpdate> state = update_client_state(task, cs.kept_or_empty().client_state,
                                                          tr.params, tr.steps, opts_.training);
    if (!state.ok()) {
      core_.fail(state.error());
      return;
    }
    Update u;
    u.client = c;
    u.base_version = task.version;
    u.delta = std::move(tr.params);
    u.num_examples = tr.num_examples;
    u.local_steps = tr.steps;
    u.state_delta = std::move(state->state_delta);
    u.metrics = std::move(tr.metrics);
    AdmissionOutcome outcome;
    Status admitted = core_.admission().admit(u, task, core_.admission_context(c), &outcome);
    Status s = admitted;
    if (!admitted.ok()) {
      core_.reject(number, admitted);
    } else {
      delivering_ = c;
      s = core_.receive(number, std::move(u), f.bytes_up, outcome);
      delivering_ = -1;
    }
    // Every simulated client is honest unless an attack says otherwise, so updates refused one
    // after another with none accepted mean a setting that can never make progress (an
    // admission bound below every update, ...): fail instead of retrying forever.
    rejected_in_a_row_ = s.ok() ? 0 : rejected_in_a_row_ + 1;
    if (rejected_in_a_row_ >=
        std::max<int64_t>(100, 10 * static_cast<int64_t>(sim_.clients_->size()))) {
      core_.fail(Status::failed_precondition(
          "simulation: the last " + std::to_string(rejected_in_a_row_) + " updates were all " +
          "rejected, none accepted (the last: " + s.message() + "); no progress is possible" +
          (admitted.ok() ? ""
                         : ". Has the model diverged (learning rates), or are the admission "
                           "bounds too tight for this training (docs/config.md)?")));
    }
    if (s.ok() && !state->next_state.empty()) {
      // Kept only once the server accepted the update: a rejected update's Delta c_i never
      // reached the server's c, so the client keeps its old c_i (SCAFFOLD: c = mean c_i).
      cs.kept().client_state = std::move(state->next_state);
    }
    if (deferred_start_ >= 0) {
      const int64_t deferred = deferred_start_;
      deferred_start_ = -1;
      if (auto it = in_flight_.find(deferred); it != in_flight_.end()) {
        queue_start(deferred, it->second.due);
      }
    }
    core_.offer(c);
  }

  // Reports task `number` lost (reason "dropout" or "offline") unless it already ended. The
  // client becomes idle right after the report if it is online.
  void lose_task(int64_t number, const char* reason) {
    auto it = in_flight_.find(number);
    if (it == in_flight_.end()) return;  // an earlier loss (offline) beat the dropout timeout
    // The training job, if any, may still be queued or running: skip or discard it (the
    // future's destructor does not wait).
    it->second.abandoned->store(true);
    in_flight_.erase(it);
    const ClientId c = core_.task(number)->task.client;
    core_.lose(number, reason);
    core_.offer(c);
  }

  void schedule_availability(ClientId c, double delay_s, EventKind kind) {
    queue_.push(Event{clock_.now() + delay_s, next_seq_++, kind, c});
  }

  // Client `c` goes offline (losing its task in flight) or comes back online (idle).
  void set_online(ClientId c, bool online) {
    SimClientState& cs = state(c);
    const Availability& avail = opts_.dynamics.availability;
    cs.online = online;
    core_.set_available(c, online);
    schedule_availability(c, avail.sample(availability_rngs_[static_cast<size_t>(c)], online),
                          online ? EventKind::kOffline : EventKind::kOnline);
    ClientStats& stats = core_.stats(c);
    if (!online) {
      cs.offline_since = clock_.now();
      ++stats.offline_periods;
      ++core_.summary().offline_periods;
      if (const runtime::TaskRecord* t = core_.task_of(c)) lose_task(t->id, "offline");
      return;
    }
    stats.offline_s += clock_.now() - cs.offline_since;
    core_.offer(c);
  }

  // The model `task`'s client trains from as the downlink chain delivers it, and the bytes of
  // its download: the version's payload (encoded once per version; the last few are kept, as
  // a round's tasks may straddle a commit), or under delta downlink the changes since the
  // version the client holds (runtime/downlink.h).
  Result<std::pair<std::shared_ptr<const ArrayRecord>, int64_t>> downlink_model(const Task& task) {
    if (compression_.downlink_delta) {
      std::optional<runtime::DownlinkDeltas::Held>& held = state(task.client).kept().downlink_held;
      COHORT_ASSIGN_OR_RETURN(runtime::DownlinkDeltas::Start s,
                              downlink_deltas_->start(task.version, task.model, held));
      held = s.holds;
      return std::make_pair(s.model, s.plan.bytes);
    }
    auto it = downlink_cache_.find(task.version);
    if (it == downlink_cache_.end()) {
      COHORT_ASSIGN_OR_RETURN(
          runtime::DownlinkModel m,
          runtime::encode_model(*compression_.downlink, *task.model,
                                runtime::downlink_seed(opts_.run.seed, task.version)));
      it = downlink_cache_.emplace(task.version, std::move(m)).first;
      while (downlink_cache_.size() > 4) downlink_cache_.erase(downlink_cache_.begin());
    }
    return std::make_pair(it->second.model, static_cast<int64_t>(it->second.payload->size()));
  }

  Simulator& sim_;
  const SimOptions& opts_;
  Strategy& strategy_;
  runtime::Runtime core_;
  ManualClock clock_;
  std::chrono::steady_clock::time_point wall_start_;
  std::vector<std::unique_ptr<Trainer>> trainers_;
  // Client-side DP noise (distributed noise under secure aggregation), from the run seed.
  const privacy::NoiseSeed dp_client_seed_ = privacy::derive_seed(opts_.run.seed, "dp_client");
  std::unique_ptr<Evaluator> validator_;  // contribution estimates' validation sample
  Adversary adversary_;
  std::unique_ptr<ThreadPool> pool_;
  CoreClaim cores_;  // this simulation's training threads and loop
  std::unique_ptr<Evaluator> evaluator_;
  runtime::Compression compression_;
  std::map<ModelVersion, runtime::DownlinkModel> downlink_cache_;
  std::unique_ptr<runtime::DownlinkDeltas> downlink_deltas_;
  std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
  // The population's example counts (core_ reads them) and its non-empty held-out shards
  // (handed to the evaluator at the start).
  const std::vector<int64_t> examples_;
  std::vector<const Shard*> holdouts_;
  // The clients' states, created at first use (a client that never takes part has none).
  LazyTable<SimClientState> clients_;
  SimClientState& state(ClientId c) {
    return clients_.get(static_cast<size_t>(c), [] {
      return SimClientState();
    });
  }
  // Client c's state, or a new client's when it has none.
  const SimClientState& peek_state(ClientId c) const {
    static const SimClientState kNew;
    const SimClientState* s = clients_.find(static_cast<size_t>(c));
    return s != nullptr ? *s : kNew;
  }
  std::vector<Rng> availability_rngs_;  // per client, only with availability dynamics
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::unordered_map<int64_t, InFlight> in_flight_;
  // Launched tasks waiting for the start window (queue_start): (due, task number).
  using DueTask = std::pair<double, int64_t>;
  std::priority_queue<DueTask, std::vector<DueTask>, std::greater<>> pending_starts_;
  std::set<TimerId> cancelled_timers_;
  uint64_t next_seq_ = 0;
  int64_t pending_timers_ = 0;  // timer events still in the queue (cancelled ones included)
  // Availability changes since the last dispatch that found nothing in flight and no timer.
  int64_t quiet_changes_ = 0;
  // The client whose update is being handed to the strategy (-1: none), and the task the
  // strategy dispatched to that client meanwhile, whose training waits (-1: none).
  ClientId delivering_ = -1;
  int64_t deferred_start_ = -1;
  int64_t rejected_in_a_row_ = 0;
  double next_interval_eval_ = opts_.run.eval_interval_s;
};

Simulator::Simulator(SimOptions options, TrainerFactory factory, std::vector<SimClient> clients,
                     Shard test, MetricsHub* metrics)
    : Simulator(std::move(options), std::move(factory),
                std::make_shared<const std::vector<SimClient>>(std::move(clients)), std::move(test),
                metrics) {}

Simulator::Simulator(SimOptions options, TrainerFactory factory,
                     std::shared_ptr<const std::vector<SimClient>> clients, Shard test,
                     MetricsHub* metrics)
    : options_(std::move(options)),
      factory_(std::move(factory)),
      clients_(clients ? std::move(clients) : std::make_shared<const std::vector<SimClient>>()),
      test_(std::move(test)),
      metrics_(metrics) {}

Simulator::~Simulator() = default;

Result<SimSummary> Simulator::run(Strategy& strategy) {
  COHORT_RETURN_IF_ERROR(options_.validate());
  if (clients_->empty()) return Status::invalid_argument("clients.count: no clients to simulate");
  // One pass over the population: every client has training examples (their counts are what
  // it registers); the non-empty held-out shards are evaluated (federated evaluation).
  std::vector<int64_t> examples(clients_->size());
  std::vector<const Shard*> holdouts;
  for (size_t i = 0; i < clients_->size(); ++i) {
    const SimClient& c = (*clients_)[i];
    if (c.shard.size() == 0) {
      return Status::invalid_argument("client " + std::to_string(i) + " has no training examples");
    }
    examples[i] = static_cast<int64_t>(c.shard.size());
    if (c.holdout.size() > 0) holdouts.push_back(&c.holdout);
  }
  if (test_.size() == 0) return Status::invalid_argument("the test set is empty");
  if (!factory_) return Status::invalid_argument("no trainer factory");
  stop_requested_.store(false);
  Impl impl(*this, strategy, std::move(examples), std::move(holdouts));
  return impl.run();
}

}  // namespace cohort::sim
