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
#include <string>
#include <thread>

#include "cohort/core/clock.h"
#include "cohort/deploy/server.h"
#include "cohort/runtime/runtime.h"
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
  // Snapshots the model for readers, after an event (mu held).
  void snapshot();

  // ---- RuntimeHost (mu held) -------------------------------------------------------------
  double now() const override { return clock_.now(); }
  double wall_seconds() const override { return clock_.now(); }
  void launch(const runtime::TaskRecord& task) override { task_cv.notify_all(); }
  void schedule_timer(TimerId id, double due) override { timers_[id] = due; }
  void cancel_timer(TimerId id) override { timers_.erase(id); }
  Result<std::optional<Evaluation>> evaluate(
      const std::shared_ptr<const ArrayRecord>& model) override;
  bool reachable(ClientId id) const override;
  std::string unavailable_state() const override { return "not polling"; }
  void on_stop(const std::string& reason) override;
  void log(const std::string& line) override { log_line(line); }

 private:
  void run();
  // Clients silent for client_timeout_s are no longer idle and lose their task; tasks older
  // than task_timeout_s are lost.
  void check_liveness(double t);
  // The summary at the end of the run: "clients" and "summary" events, summary.json.
  void write_summary();

  const ServerOptions& opts_;
  SteadyClock clock_;
  std::condition_variable loop_cv_;  // wakes the loop: events, stop
  std::deque<std::function<void()>> events_;
  std::map<TimerId, double> timers_;
  double done_at_ = 0.0;
  std::thread thread_;
};

}  // namespace cohort::deploy
