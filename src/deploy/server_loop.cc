#include "deploy/server_loop.h"

#include <algorithm>
#include <cstdio>
#include <future>

#include "cohort/core/format.h"
#include "cohort/runtime/model_file.h"
#include "deploy/crash_points.h"
#include "deploy/limits.h"

namespace cohort::deploy {

void log_line(const std::string& line) {
  // Messages may quote what clients sent (names, reasons): LogLimiter prints them through
  // printable(), one event per line, so no client can forge a log line; and at most 50 lines
  // per 10 s, so no client can flood the log.
  static LogLimiter limiter(50, 10.0);
  limiter.log(line);
}

namespace {

runtime::RuntimeOptions core_options(const ServerOptions& o) {
  runtime::RuntimeOptions r;
  r.max_commits = o.max_rounds;
  r.max_time_s = o.max_wall_s;
  r.eval_every = o.eval_every;
  r.target_accuracy = o.target_accuracy;
  r.model_targets = o.model_targets;
  r.seed = o.seed;
  r.training = o.training;
  r.admission = o.admission;
  r.robust = o.robust;
  r.contribution = o.contribution;
  r.privacy = o.privacy;
  r.reproducible_noise = false;
  r.checkpoint_dir = o.checkpoint_dir;
  r.checkpoint_every = 0;  // the loop writes them: for durable acknowledgements
  r.checkpoint_keep = o.keep_checkpoints;
  r.strict_dispatch = false;            // keep serving everyone else; the task is reported lost
  r.dispatch_ends_availability = true;  // idle only while polling
  r.eval_errors_fatal = false;          // logged; training goes on
  r.first_task_number = 1;              // task id 0 means "no task" on the wire
  return r;
}

}  // namespace

ServerLoop::ServerLoop(const ServerOptions& options, Strategy& strategy, MetricsHub* hub)
    : core(core_options(options), strategy, *this, hub), opts_(options) {
  if (options.privacy.secagg.enabled) {
    SecAggCoordinator::Options so;
    so.stage_timeout_s = options.privacy.secagg.stage_timeout_s;
    so.poll_wait_s = std::max(0.05, options.pull_wait_s);
    so.keep_transcript = options.keep_secagg_transcript;
    secagg = std::make_unique<SecAggCoordinator>(*this, so);
  }
}

ServerLoop::~ServerLoop() { stop_and_join(); }

void ServerLoop::start_thread() {
  if (durable()) {
    writer_ = std::thread([this] {
      write_loop();
    });
  }
  thread_ = std::thread([this] {
    run();
  });
}

void ServerLoop::stop_and_join() {
  {
    std::lock_guard<std::mutex> lk(mu);
    stop = true;
    task_cv.notify_all();
    loop_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lk(mu);
    writer_stop_ = true;
    writer_cv_.notify_all();
  }
  if (writer_.joinable()) writer_.join();
}

void ServerLoop::post(std::function<void()> fn) {
  if (loop_exited) return;
  events_.push_back([this, fn = std::move(fn)] {
    if (!loop_exited) fn();
  });
  loop_cv_.notify_all();
}

Status ServerLoop::post_and_wait(std::function<Status()> fn) {
  auto p = std::make_shared<std::promise<Status>>();
  std::future<Status> f = p->get_future();
  {
    std::lock_guard<std::mutex> lk(mu);
    if (loop_exited) return Status::unavailable("the server is shutting down");
    events_.push_back([p, fn = std::move(fn), this] {
      p->set_value(loop_exited ? Status::unavailable("the server is shutting down") : fn());
    });
  }
  loop_cv_.notify_all();
  return f.get();
}

void ServerLoop::snapshot() {
  model_snapshot = core.strategy().global_model();
  version_snapshot = core.strategy().version();
}

Result<std::optional<Evaluation>> ServerLoop::evaluate(
    const std::shared_ptr<const ArrayRecord>& model) {
  if (!opts_.evaluate) return std::optional<Evaluation>();
  COHORT_ASSIGN_OR_RETURN(EvalResult r, opts_.evaluate(*model));
  Evaluation e;
  e.central = r;
  return std::optional<Evaluation>(e);
}

bool ServerLoop::reachable(ClientId id) const {
  return sessions.fresh(id, now(), opts_.client_timeout_s);
}

void ServerLoop::on_stop(const std::string& reason) {
  if (done) return;
  done = true;
  done_at_ = now();
  for (ClientId id : core.client_ids()) {
    if (sessions.fresh(id, done_at_, opts_.client_timeout_s)) to_tell_.insert(id);
  }
  log_line("run over (" + reason + ") at version " + std::to_string(core.strategy().version()));
  task_cv.notify_all();
  loop_cv_.notify_all();
}

bool ServerLoop::lingered_enough(double t) const {
  const double since = t - done_at_;
  if (since < opts_.done_grace_s) return false;
  if (since >= 2 * opts_.heartbeat_s() + 1.0) return true;  // the rest are gone
  return std::all_of(to_tell_.begin(), to_tell_.end(), [&](ClientId id) {
    return told_.count(id) > 0;
  });
}

void ServerLoop::check_liveness(double t) {
  for (ClientId id : core.client_ids()) {
    const bool stale = !sessions.fresh(id, t, opts_.client_timeout_s);
    if (stale && core.available(id)) core.set_available(id, false);
    const runtime::TaskRecord* task = core.task_of(id);
    if (task == nullptr) continue;
    if (stale) {
      core.lose(task->id, "timeout");
    } else if (opts_.task_timeout_s > 0 && t - task->dispatched_at > opts_.task_timeout_s) {
      core.lose(task->id, "deadline");
    }
  }
}

void ServerLoop::mark_durable_start() {
  durable_seq_ = core.accepted_seq();
  durable_version_ = core.resumed_from() >= 0 ? core.resumed_from() : 0;
}

bool ServerLoop::wait_durable(std::unique_lock<std::mutex>& lk, int64_t seq) {
  task_cv.wait(lk, [&] {
    return durable_seq_ >= seq || durability_failed_ || (loop_exited && !writing_ && writer_stop_);
  });
  return durable_seq_ >= seq;
}

void ServerLoop::durability_failed(const Status& why) {
  durability_failed_ = true;
  log_line("checkpoint failed, stopping: " + why.to_string());
  core.fail(why);
  core.stop("checkpoint failed");
  task_cv.notify_all();
}

void ServerLoop::maybe_checkpoint() {
  if (!durable() || writing_ || durability_failed_) return;
  const int64_t seq = core.accepted_seq();
  if (seq <= durable_seq_ && core.strategy().version() <= durable_version_) return;
  Result<Checkpoint> c = core.checkpoint();
  if (!c.ok()) {
    durability_failed(c.error());
    return;
  }
  to_write_ = std::move(*c);
  to_write_seq_ = seq;
  writing_ = true;
  writer_cv_.notify_all();
}

void ServerLoop::write_loop() {
  std::unique_lock<std::mutex> lk(mu);
  while (true) {
    writer_cv_.wait(lk, [&] {
      return to_write_.has_value() || writer_stop_;
    });
    if (!to_write_) return;
    Checkpoint c = std::move(*to_write_);
    to_write_.reset();
    const int64_t seq = to_write_seq_;
    lk.unlock();
    crash_point("checkpoint_write");
    Status s = write_checkpoint(opts_.checkpoint_dir, c, opts_.keep_checkpoints);
    if (s.ok()) crash_point("checkpoint_written");
    lk.lock();
    writing_ = false;
    if (s.ok()) {
      durable_seq_ = std::max(durable_seq_, seq);
      durable_version_ = std::max(durable_version_, c.version);
      core.emit({{"event", "checkpoint"}, {"version", c.version}, {"dir", opts_.checkpoint_dir}});
    } else {
      durability_failed(s);
    }
    task_cv.notify_all();
    loop_cv_.notify_all();
  }
}

void ServerLoop::finish_writes(std::unique_lock<std::mutex>& lk) {
  if (!durable()) return;
  // The write in progress, then the final state (nothing the strategy does changes it now).
  task_cv.wait(lk, [&] {
    return !writing_;
  });
  maybe_checkpoint();
  task_cv.wait(lk, [&] {
    return !writing_;
  });
  writer_stop_ = true;
  writer_cv_.notify_all();
  task_cv.notify_all();
}

void ServerLoop::run() {
  std::unique_lock<std::mutex> lk(mu);
  event_lock_ = &lk;
  auto after_event = [this] {
    core.after_event();
    snapshot();
    maybe_checkpoint();
  };
  maybe_checkpoint();  // what the restart changed (a round closed by the lost tasks)
  while (!stop) {
    if (!events_.empty()) {
      std::function<void()> ev = std::move(events_.front());
      events_.pop_front();
      ev();
      after_event();
      continue;
    }
    const double t = now();
    auto due = std::min_element(timers_.begin(), timers_.end(), [](const auto& a, const auto& b) {
      return a.second < b.second;
    });
    if (due != timers_.end() && due->second <= t && !done) {
      const TimerId id = due->first;
      timers_.erase(due);
      core.fire_timer(id);
      after_event();
      continue;
    }
    if (!done) {
      check_liveness(t);
      after_event();
      if (core.over_time(t)) core.stop("max_wall_s");
    }
    if (done && lingered_enough(t)) break;
    maybe_checkpoint();  // e.g. after the write in progress ended
    double wake = t + 0.05;
    if (due != timers_.end() && !done) wake = std::min(wake, due->second);
    loop_cv_.wait_for(lk, std::chrono::duration<double>(std::max(0.0, wake - t)));
  }
  // Handlers waiting on events see `loop_exited` and give up; run what is queued so their
  // futures are fulfilled.
  loop_exited = true;
  core.stop("shutdown");
  done = true;
  while (!events_.empty()) {
    std::function<void()> ev = std::move(events_.front());
    events_.pop_front();
    ev();
  }
  finish_writes(lk);
  write_summary();
  event_lock_ = nullptr;
  task_cv.notify_all();
}

void ServerLoop::write_summary() {
  Result<RunSummary> r = core.finish({{"mode", "deploy"}});
  snapshot();
  if (!opts_.out_dir.empty()) {
    // `cohort report DIR` reads summary.json beside metrics.jsonl, as for a simulation.
    Json file = core.summary().to_json();
    file["mode"] = "deploy";
    Status w = write_json_file(opts_.out_dir + "/summary.json", file);
    if (!w.ok()) log_line("cannot write summary.json: " + w.to_string());
    // The final model, to start another run from (model.init).
    if (model_snapshot != nullptr) {
      w = write_model_file(opts_.out_dir + "/" + kModelFile, *model_snapshot,
                           core.strategy().name(), version_snapshot);
      if (!w.ok()) log_line("cannot write " + std::string(kModelFile) + ": " + w.to_string());
    }
  }
}

}  // namespace cohort::deploy
