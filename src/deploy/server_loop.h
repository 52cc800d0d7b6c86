// The deployment server's loop: the host of the runtime core on a steady clock. One thread
// runs every strategy event (posted by the gRPC handlers, timers, liveness checks) while
// holding `mu`; handlers take `mu` briefly to read or change the client table through the
// core and never call the strategy themselves. Internal to cohort_deploy.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "cohort/core/clock.h"
#include "cohort/deploy/server.h"
#include "cohort/runtime/runtime.h"
#include "deploy/secagg_coordinator.h"
#include "deploy/sessions.h"

namespace cohort::deploy {

// "cohort serve: <line>" on stderr.
void log_line(const std::string& line);

class ServerLoop final : public runtime::RuntimeHost {
 public:
  ServerLoop(const ServerOptions& options, Strategy& strategy, MetricsHub* hub);
  ~ServerLoop() override;

  // Everything below is guarded by `mu` unless said otherwise.
  mutable std::mutex mu;
  std::condition_variable task_cv;  // wakes long-polling PullTask handlers and wait()
  runtime::Runtime core;
  Sessions sessions;
  bool done = false;         // the run is over: pulls get DONE
  bool stop = false;         // shutdown requested
  bool loop_exited = false;  // the loop thread finished (summary written)
  std::shared_ptr<const ArrayRecord> model_snapshot;
  ModelVersion version_snapshot = 0;
  // Secure aggregation's rounds (privacy.secagg), null without it.
  std::unique_ptr<SecAggCoordinator> secagg;

  // Starts the loop thread (mu not held).
  void start_thread();
  // Asks the loop to end and joins it (mu not held). Idempotent.
  void stop_and_join();
  // Queues `fn` for the loop (mu held). Dropped once the loop has exited.
  void post(std::function<void()> fn);
  // Queues `fn` and waits for its result (mu not held). Unavailable once the loop exited.
  Status post_and_wait(std::function<Status()> fn);
  // Records contact from `id` (mu held).
  void touch(ClientId id) { sessions.touch(id, now()); }
  // `id` was told the run is over (a DONE pull or a run_over heartbeat; mu held). After the
  // run ends the loop keeps serving until every client in contact then was told, or for at
  // most two heartbeat intervals + 1 s (and at least done_grace_s).
  void told_done(ClientId id) { told_.insert(id); }
  // Snapshots the model for readers, after an event (mu held).
  void snapshot();

  // ---- durability (with a checkpoint directory; docs/checkpoint_format.md) ---------------
  // The loop takes a checkpoint after any event that accepted an update or committed a
  // version, and a writer thread puts it on disk (fsync) outside the lock; updates accepted
  // meanwhile go into the next one. An update is acknowledged once a checkpoint holding it is
  // on disk, and a task is handed out once its version is.
  bool durable() const { return !opts_.checkpoint_dir.empty(); }
  // Waits (mu held through `lk`) until the `seq`-th accepted update is on disk. False when
  // the server stops, or a checkpoint fails, first.
  bool wait_durable(std::unique_lock<std::mutex>& lk, int64_t seq);
  // Whether tasks for version `v` may be handed out.
  bool version_durable(ModelVersion v) const { return !durable() || v <= durable_version_; }
  // The state after start() is on disk already (a fresh run: nothing to lose; a resumed one:
  // read from disk), up to what the restart itself changed (mu held).
  void mark_durable_start();

  // ---- RuntimeHost (mu held) -------------------------------------------------------------
  double now() const override { return clock_offset_ + clock_.now(); }
  double wall_seconds() const override { return now(); }
  void launch(const runtime::TaskRecord& task) override { task_cv.notify_all(); }
  void schedule_timer(TimerId id, double due) override { timers_[id] = due; }
  void cancel_timer(TimerId id) override { timers_.erase(id); }
  Result<std::optional<Evaluation>> evaluate(
      const std::shared_ptr<const ArrayRecord>& model) override;
  bool reachable(ClientId id) const override;
  std::string unavailable_state() const override { return "not polling"; }
  void on_stop(const std::string& reason) override;
  void resume_clock(double t) override { clock_offset_ = t; }
  void log(const std::string& line) override { log_line(line); }
  runtime::SecAggTransport* secagg_transport() override { return secagg.get(); }

  // The loop thread's lock while it runs an event, else null (mu held): what waits inside an
  // event (a secure aggregation round) waits on it, so handlers go on meanwhile.
  std::unique_lock<std::mutex>* event_lock() const { return event_lock_; }

 private:
  void run();
  // Clients silent for client_timeout_s are no longer idle and lose their task; tasks older
  // than task_timeout_s are lost.
  void check_liveness(double t);
  // After the run ended: whether the loop may exit (see told_done).
  bool lingered_enough(double t) const;
  // The summary at the end of the run: "clients" and "summary" events, summary.json.
  void write_summary();
  // After an event: hands a checkpoint to the writer when something must become durable and
  // no write is in progress (mu held).
  void maybe_checkpoint();
  // The writer thread; and the end of the run: the last write, then the writer stops (mu held
  // through `lk`).
  void write_loop();
  void finish_writes(std::unique_lock<std::mutex>& lk);
  // A checkpoint could not be taken or written: the run ends (acknowledgements cannot be
  // durable any more).
  void durability_failed(const Status& why);

  const ServerOptions& opts_;
  SteadyClock clock_;
  std::condition_variable loop_cv_;  // wakes the loop: events, stop
  std::deque<std::function<void()>> events_;
  std::map<TimerId, double> timers_;
  double done_at_ = 0.0;
  std::set<ClientId> to_tell_;  // clients in contact when the run ended
  std::set<ClientId> told_;
  double clock_offset_ = 0.0;  // the clock continues from the checkpoint's time
  std::thread thread_;
  std::unique_lock<std::mutex>* event_lock_ = nullptr;
  // Durability (guarded by mu).
  int64_t durable_seq_ = 0;
  ModelVersion durable_version_ = 0;
  std::optional<Checkpoint> to_write_;
  int64_t to_write_seq_ = 0;
  bool writing_ = false;
  bool writer_stop_ = false;
  bool durability_failed_ = false;
  std::condition_variable writer_cv_;
  std::thread writer_;
};

}  // namespace cohort::deploy
