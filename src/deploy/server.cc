#include "cohort/deploy/server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "checkpoint.h"
#include "cohort/core/clock.h"
#include "cohort/v1/fleet.grpc.pb.h"

namespace cohort::deploy {

namespace pb = cohort::v1;

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian float32; big-endian hosts need byte swapping");

namespace {

grpc::Status to_grpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // StatusCode uses gRPC's numbering (status.h).
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(s.code())), s.message());
}

void log_line(const std::string& msg) {
  std::fprintf(stderr, "cohort serve: %s\n", msg.c_str());
  std::fflush(stderr);
}

Result<std::string> read_text(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(what + " " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void to_pb(const ArrayLayout& l, pb::Layout* out) {
  for (const ArraySpec& s : l.specs()) {
    pb::ArraySpec* a = out->add_arrays();
    a->set_name(s.name);
    for (int64_t d : s.shape) a->add_shape(d);
    a->set_trainable(s.trainable);
  }
}

std::string shape_str(const google::protobuf::RepeatedField<int64_t>& shape) {
  std::string s = "[";
  for (int i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// InvalidArgument naming the first array whose name or shape differs.
Status check_layout(const pb::Layout& got, const ArrayLayout& want) {
  const auto& specs = want.specs();
  const size_t n = std::min(specs.size(), static_cast<size_t>(got.arrays_size()));
  for (size_t i = 0; i < n; ++i) {
    const pb::ArraySpec& g = got.arrays(static_cast<int>(i));
    if (g.name() != specs[i].name) {
      return Status::invalid_argument("update layout: array " + std::to_string(i) + " is \"" +
                                      g.name() + "\", the model's is \"" + specs[i].name + "\"");
    }
    const bool same = g.shape_size() == static_cast<int>(specs[i].shape.size()) &&
                      std::equal(g.shape().begin(), g.shape().end(), specs[i].shape.begin());
    if (!same) {
      return Status::invalid_argument("update layout: array \"" + g.name() + "\" has shape " +
                                      shape_str(g.shape()) + ", the model's is " +
                                      shape_str(specs[i].shape));
    }
  }
  if (static_cast<size_t>(got.arrays_size()) != specs.size()) {
    return Status::invalid_argument(
        "update layout: " + std::to_string(got.arrays_size()) + " arrays, the model has " +
        std::to_string(specs.size()) +
        (static_cast<size_t>(got.arrays_size()) < specs.size()
             ? " (first missing: \"" + specs[n].name + "\")"
             : " (first extra: \"" + got.arrays(static_cast<int>(n)).name() + "\")"));
  }
  return Status();
}

void scalar_to_pb(const Scalar& v, pb::Scalar* out) {
  if (const auto* i = std::get_if<int64_t>(&v)) out->set_int_value(*i);
  else if (const auto* d = std::get_if<double>(&v)) out->set_double_value(*d);
  else if (const auto* b = std::get_if<bool>(&v)) out->set_bool_value(*b);
  else out->set_string_value(std::get<std::string>(v));
}

}  // namespace

Result<std::map<std::string, ClientId>> parse_tokens(const std::string& text,
                                                     const std::string& path) {
  std::map<std::string, ClientId> out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream ls(line);
    std::string token, id_str, extra;
    if (!(ls >> token)) continue;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    if (!(ls >> id_str) || (ls >> extra)) {
      return Status::invalid_argument(where + "expected \"TOKEN CLIENT_ID\"");
    }
    ClientId id = -1;
    try {
      size_t used = 0;
      id = std::stoll(id_str, &used);
      if (used != id_str.size()) id = -1;
    } catch (const std::exception&) {
      id = -1;
    }
    if (id < 0) {
      return Status::invalid_argument(where + "client id must be a non-negative integer, got \"" +
                                      id_str + "\"");
    }
    if (!out.emplace(token, id).second) {
      return Status::invalid_argument(where + "duplicate token (for client " + id_str + ")");
    }
  }
  if (out.empty()) return Status::invalid_argument(path + ": no tokens");
  return out;
}

// ---------------------------------------------------------------------------------------
// Impl: the loop thread (owns the strategy; StrategyHost) and the Fleet service.
//
// Locking: one mutex `mu_` guards all state. The loop thread holds it while it runs an
// event (so strategy callbacks into the host need no further locking) and releases it while
// waiting. gRPC handlers take it briefly to read or update the client registry and post
// events; they never call the strategy themselves. Stream payloads are copied outside the
// lock.

struct Server::Impl final : public StrategyHost, public pb::Fleet::Service {
  struct TaskRec {
    int64_t id = 0;
    Task task;
    double dispatched_at = 0;
    bool pulled = false;
  };
  struct ClientRec {
    ClientInfo info;
    double last_seen = -std::numeric_limits<double>::infinity();
    bool idle = false;
    std::optional<TaskRec> task;
  };

  Impl(ServerOptions o, std::unique_ptr<Strategy> s, ArrayRecord init)
      : opts(std::move(o)), strategy(std::move(s)), initial(std::move(init)), rng_(opts.seed) {}

  ServerOptions opts;
  std::unique_ptr<Strategy> strategy;
  ArrayRecord initial;
  std::shared_ptr<const ArrayLayout> layout;
  pb::Layout layout_pb;
  std::map<std::string, ClientId> tokens;

  std::unique_ptr<SteadyClock> clock;
  Rng rng_;
  MetricsHub hub;

  mutable std::mutex mu;
  std::condition_variable loop_cv;   // wakes the loop: events, stop
  std::condition_variable task_cv;   // wakes long-polling PullTask handlers and wait()
  std::deque<std::function<void()>> events;
  std::map<TimerId, double> timers;
  TimerId next_timer = 1;
  std::map<ClientId, ClientRec> clients;
  int64_t epoch = 0;
  int64_t next_task = 1;

  bool started = false;
  bool stop = false;
  bool done = false;
  double done_at = 0;
  std::string stop_reason;
  bool loop_exited = false;
  Status failure;
  bool eval_pending = false;
  bool ckpt_pending = false;
  int64_t commits_since_ckpt = 0;
  ModelVersion resumed_from = -1;
  std::shared_ptr<const ArrayRecord> model_snapshot;
  ModelVersion version_snapshot = 0;

  int64_t n_updates = 0, n_rejected = 0, n_lost = 0, bytes_up = 0, bytes_down = 0;
  double final_accuracy = 0, final_loss = 0, best_accuracy = 0;
  bool have_eval = false;

  std::mutex push_mu;  // push slots (max_concurrent_pushes)
  std::condition_variable push_cv;
  int64_t pushes_active = 0;

  std::unique_ptr<grpc::Server> server;
  std::thread loop_thread;
  std::mutex shutdown_mu;
  bool shut = false;

  // ---- StrategyHost (loop thread, mu held) ---------------------------------------------
  double now() const override { return clock ? clock->now() : 0.0; }

  bool fresh(const ClientRec& r, double t) const {
    return t - r.last_seen <= opts.client_timeout_s;
  }

  std::vector<ClientId> idle_clients() const override {
    std::vector<ClientId> out;
    const double t = now();
    for (const auto& [id, r] : clients) {
      if (r.idle && !r.task && fresh(r, t)) out.push_back(id);
    }
    return out;
  }
  size_t num_clients() const override { return clients.size(); }
  const ClientInfo& client_info(ClientId id) const override { return clients.at(id).info; }
  int64_t default_local_steps(ClientId id) const override {
    return opts.training.steps_for(clients.at(id).info.num_examples);
  }

  void dispatch(Task task) override {
    if (done) return;  // the run is over: nobody will pull it
    const ClientId c = task.client;
    auto it = clients.find(c);
    if (it == clients.end() || it->second.task) {
      // Not a client that can take a task: report the task lost on the next turn of the
      // loop rather than re-entering the strategy from inside its own call.
      log_line(strategy->name() + " dispatched a task to client " + std::to_string(c) +
               ", which is not idle; reporting it lost");
      const ModelVersion v = task.version;
      events.push_back([this, c, v] {
        ++n_lost;
        emit({{"event", "lost"}, {"client", c}, {"version", v}, {"reason", "not_idle"}});
        strategy->on_task_lost(c, v);
      });
      return;
    }
    ClientRec& r = it->second;
    r.idle = false;
    TaskRec t;
    t.id = (epoch << 40) | next_task++;
    t.dispatched_at = now();
    t.task = std::move(task);
    r.task = std::move(t);
    task_cv.notify_all();
  }

  TimerId set_timer(double delay_s) override {
    const TimerId id = next_timer++;
    timers[id] = now() + std::max(0.0, delay_s);
    return id;
  }
  void cancel_timer(TimerId id) override { timers.erase(id); }

  void on_commit(ModelVersion version) override {
    if (opts.evaluate && opts.eval_every > 0 && version % opts.eval_every == 0) eval_pending = true;
    if (!opts.checkpoint_dir.empty() && ++commits_since_ckpt >= std::max<int64_t>(1, opts.checkpoint_every)) {
      ckpt_pending = true;
    }
    if (opts.max_rounds > 0 && version >= opts.max_rounds) finish_run("rounds");
  }

  Rng& rng() override { return rng_; }

  void emit(Json event) override {
    if (!event.contains("virtual_time_s")) event["virtual_time_s"] = now();
    if (!event.contains("wall_time_s")) event["wall_time_s"] = now();
    hub.emit(event);
  }

  // ---- loop helpers (mu held) -----------------------------------------------------------
  void finish_run(const std::string& reason) {
    if (done) return;
    done = true;
    done_at = now();
    stop_reason = reason;
    log_line("run over (" + reason + ") at version " + std::to_string(strategy->version()));
    task_cv.notify_all();
    loop_cv.notify_all();
  }

  // Removes client c's task (REQUIRES: it has one), counts and reports the loss; returns the
  // version the task started from. The caller tells the strategy.
  ModelVersion take_task(ClientId c, ClientRec& r, const std::string& reason) {
    TaskRec t = std::move(*r.task);
    r.task.reset();
    ++n_lost;
    emit({{"event", "lost"},
          {"client", c},
          {"version", t.task.version},
          {"reason", reason},
          {"dispatched_at", t.dispatched_at}});
    return t.task.version;
  }

  void lose_task(ClientId c, const std::string& reason) {
    ClientRec& r = clients.at(c);
    if (!r.task) return;
    const ModelVersion v = take_task(c, r, reason);
    if (!done) strategy->on_task_lost(c, v);
  }

  Status evaluate_now() {
    Result<EvalResult> e = opts.evaluate(*strategy->global_model());
    if (!e.ok()) return e.error();
    final_accuracy = e->accuracy;
    final_loss = e->loss;
    best_accuracy = have_eval ? std::max(best_accuracy, e->accuracy) : e->accuracy;
    have_eval = true;
    emit({{"event", "eval"},
          {"strategy", strategy->name()},
          {"round", strategy->version()},
          {"updates", n_updates},
          {"accuracy", e->accuracy},
          {"loss", e->loss},
          {"bytes_up", bytes_up},
          {"bytes_down", bytes_down}});
    return Status();
  }

  Checkpoint make_checkpoint(Status* s) const {
    Checkpoint c;
    c.strategy = strategy->name();
    c.version = strategy->version();
    c.epoch = epoch;
    for (const auto& [id, r] : clients) {
      c.clients.push_back({id, r.info.num_examples, r.info.tasks_done});
    }
    c.rng_state = rng_.state();
    c.counters = {{"updates", n_updates}, {"rejected", n_rejected}, {"lost", n_lost},
                  {"bytes_up", bytes_up}, {"bytes_down", bytes_down}};
    *s = strategy->save_state(&c.state);
    return c;
  }

  // Runs after every event: deferred evaluation and checkpoint, snapshot for readers.
  void after_event() {
    model_snapshot = strategy->global_model();
    version_snapshot = strategy->version();
    if (eval_pending) {
      eval_pending = false;
      Status s = evaluate_now();
      if (!s.ok()) log_line("evaluation failed: " + s.to_string());
    }
    if (ckpt_pending) {
      ckpt_pending = false;
      commits_since_ckpt = 0;
      Status s;
      Checkpoint c = make_checkpoint(&s);
      if (s.ok()) s = write_checkpoint(opts.checkpoint_dir, c);
      if (s.ok()) {
        emit({{"event", "checkpoint"}, {"version", c.version}, {"dir", opts.checkpoint_dir}});
      } else {
        log_line("checkpoint failed: " + s.to_string());
        if (failure.ok()) failure = s;
        finish_run("checkpoint failed");
      }
    }
  }

  void check_liveness(double t) {
    for (auto& [id, r] : clients) {
      const bool stale = !fresh(r, t);
      if (stale && r.idle) r.idle = false;
      if (!r.task) continue;
      if (stale) {
        lose_task(id, "timeout");
      } else if (opts.task_timeout_s > 0 && t - r.task->dispatched_at > opts.task_timeout_s) {
        lose_task(id, "deadline");
      }
    }
  }

  void run_loop() {
    std::unique_lock<std::mutex> lk(mu);
    while (!stop) {
      if (!events.empty()) {
        std::function<void()> ev = std::move(events.front());
        events.pop_front();
        ev();
        after_event();
        continue;
      }
      const double t = now();
      auto due = std::min_element(timers.begin(), timers.end(),
                                  [](const auto& a, const auto& b) { return a.second < b.second; });
      if (due != timers.end() && due->second <= t && !done) {
        const TimerId id = due->first;
        timers.erase(due);
        strategy->on_timer(id);
        after_event();
        continue;
      }
      if (!done) {
        check_liveness(t);
        after_event();
        if (opts.max_wall_s > 0 && t >= opts.max_wall_s) finish_run("max_wall_s");
      }
      if (done && t - done_at >= opts.done_grace_s) break;
      double wake = t + 0.05;
      if (due != timers.end() && !done) wake = std::min(wake, due->second);
      loop_cv.wait_for(lk, std::chrono::duration<double>(std::max(0.0, wake - t)));
    }
    // Handlers waiting on events see `loop_exited` and give up; run what is queued so their
    // futures are fulfilled.
    loop_exited = true;
    done = true;
    while (!events.empty()) {
      std::function<void()> ev = std::move(events.front());
      events.pop_front();
      ev();
    }
    Json s = {{"event", "summary"},
              {"strategy", strategy->name()},
              {"mode", "deploy"},
              {"seed", opts.seed},
              {"final_accuracy", final_accuracy},
              {"final_loss", final_loss},
              {"best_accuracy", best_accuracy},
              {"virtual_time_s", now()},
              {"wall_time_s", now()},
              {"rounds", strategy->version()},
              {"updates", n_updates},
              {"rejected", n_rejected},
              {"lost", n_lost},
              {"bytes_up", bytes_up},
              {"bytes_down", bytes_down},
              {"model_hash", strategy->global_model()->hash_hex()},
              {"stop_reason", stop_reason.empty() ? "shutdown" : stop_reason}};
    if (!opts.out_dir.empty()) {
      // `cohort report DIR` reads summary.json beside metrics.jsonl, as for a simulation.
      Json file = s;
      file.erase("event");
      Status w = write_json_file(opts.out_dir + "/summary.json", file);
      if (!w.ok()) log_line("cannot write summary.json: " + w.to_string());
    }
    emit(std::move(s));
    hub.flush();
    task_cv.notify_all();
  }

  // Queues `fn` for the loop and returns its result. Unavailable once the loop has exited.
  Status post_and_wait(std::function<Status()> fn) {
    auto p = std::make_shared<std::promise<Status>>();
    std::future<Status> f = p->get_future();
    {
      std::lock_guard<std::mutex> lk(mu);
      if (loop_exited) return Status::unavailable("the server is shutting down");
      events.push_back([p, fn = std::move(fn), this] {
        p->set_value(loop_exited ? Status::unavailable("the server is shutting down") : fn());
      });
    }
    loop_cv.notify_all();
    return f.get();
  }

  void post(std::function<void()> fn) {
    // mu held by the caller.
    if (loop_exited) return;
    events.push_back([this, fn = std::move(fn)] {
      if (!loop_exited) fn();
    });
    loop_cv.notify_all();
  }

  // ---- handlers --------------------------------------------------------------------------
  Result<ClientId> authenticate(grpc::ServerContext* ctx) const {
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    if (it == md.end()) {
      return Status::unauthenticated("missing \"authorization: Bearer <token>\" metadata");
    }
    const std::string v(it->second.data(), it->second.size());
    constexpr std::string_view kBearer = "Bearer ";
    if (v.rfind(kBearer, 0) != 0) {
      return Status::unauthenticated("authorization metadata must be \"Bearer <token>\"");
    }
    auto t = tokens.find(v.substr(kBearer.size()));
    if (t == tokens.end()) return Status::unauthenticated("unknown or revoked token");
    return t->second;
  }

  // mu held.
  ClientRec& touch(ClientId c) {
    ClientRec& r = clients[c];
    r.info.id = c;
    r.last_seen = now();
    return r;
  }

  // Takes client c's task `task_id` away at once (so the client's next pull gets a new one)
  // and tells the strategy on the loop. mu held; handler threads.
  void detach_task(ClientId c, int64_t task_id, const std::string& reason) {
    auto it = clients.find(c);
    if (it == clients.end() || !it->second.task || it->second.task->id != task_id) return;
    const ModelVersion v = take_task(c, it->second, reason);
    post([this, c, v] {
      if (!done) strategy->on_task_lost(c, v);
    });
  }

  // Counts and logs a rejected push; a task it belonged to is reported lost (the strategy
  // never saw an update for it). mu held.
  void reject_push(ClientId c, int64_t task_id, const Status& s) {
    log_line("rejected update from client " + std::to_string(c) + ": " + s.to_string());
    ++n_rejected;
    emit({{"event", "rejected"}, {"client", c}, {"reason", s.to_string()}});
    if (task_id != 0) detach_task(c, task_id, "rejected");
  }

  grpc::Status Register(grpc::ServerContext* ctx, const pb::RegisterRequest* req,
                        pb::RegisterReply* reply) override {
    Result<ClientId> c = authenticate(ctx);
    if (!c.ok()) return to_grpc(c.error());
    if (req->num_examples() < 0) {
      return to_grpc(Status::invalid_argument("num_examples must be >= 0, got " +
                                              std::to_string(req->num_examples())));
    }
    std::lock_guard<std::mutex> lk(mu);
    ClientRec& r = touch(*c);
    r.info.num_examples = req->num_examples();
    // A client registering again restarted: its task is gone with it.
    if (r.task) detach_task(*c, r.task->id, "reconnected");
    r.idle = false;
    reply->set_client_id(*c);
    *reply->mutable_layout() = layout_pb;
    reply->set_chunk_bytes(opts.chunk_bytes);
    reply->set_heartbeat_interval_s(opts.heartbeat_interval_s);
    return grpc::Status::OK;
  }

  void fill_train(const TaskRec& t, pb::PullTaskReply* reply) const {
    reply->set_kind(pb::PullTaskReply::TRAIN);
    reply->set_task_id(t.id);
    reply->set_version(t.task.version);
    reply->set_local_steps(t.task.local_steps);
    for (const auto& [k, v] : t.task.config) scalar_to_pb(v, &(*reply->mutable_config())[k]);
    if (opts.task_timeout_s > 0) {
      reply->set_deadline_s(std::max(0.0, t.dispatched_at + opts.task_timeout_s - now()));
    }
    reply->set_has_server_state(t.task.server_state != nullptr);
  }

  grpc::Status PullTask(grpc::ServerContext* ctx, const pb::PullTaskRequest*,
                        pb::PullTaskReply* reply) override {
    Result<ClientId> c = authenticate(ctx);
    if (!c.ok()) return to_grpc(c.error());
    std::unique_lock<std::mutex> lk(mu);
    ClientRec& r = touch(*c);
    if (!r.task && !done && !r.idle) {
      r.idle = true;
      const ClientId id = *c;
      post([this, id] {
        auto& rr = clients.at(id);
        if (rr.idle && !rr.task && !done) strategy->on_client_idle(id);
      });
    }
    task_cv.wait_for(lk, std::chrono::duration<double>(opts.pull_wait_s), [&] {
      return r.task.has_value() || done || stop || ctx->IsCancelled();
    });
    if (done || stop) {
      reply->set_kind(pb::PullTaskReply::DONE);
    } else if (r.task) {
      r.task->pulled = true;
      fill_train(*r.task, reply);
    } else {
      reply->set_kind(pb::PullTaskReply::WAIT);
      reply->set_retry_after_s(0.2);
    }
    touch(*c);
    return grpc::Status::OK;
  }

  grpc::Status Download(grpc::ServerContext* ctx, const pb::DownloadRequest* req,
                        grpc::ServerWriter<pb::TensorChunk>* writer) override {
    Result<ClientId> c = authenticate(ctx);
    if (!c.ok()) return to_grpc(c.error());
    std::shared_ptr<const ArrayRecord> rec;
    {
      std::lock_guard<std::mutex> lk(mu);
      ClientRec& r = touch(*c);
      if (!r.task || r.task->id != req->task_id()) {
        return to_grpc(Status::failed_precondition(
            "task " + std::to_string(req->task_id()) + " is not client " + std::to_string(*c) +
            "'s current task (stale or unknown); pull a new task"));
      }
      if (req->what() == pb::DownloadRequest::MODEL) {
        rec = r.task->task.model;
      } else if (req->what() == pb::DownloadRequest::SERVER_STATE) {
        rec = r.task->task.server_state;
        if (!rec) return to_grpc(Status::failed_precondition("task has no server state"));
      } else {
        return to_grpc(Status::invalid_argument("DownloadRequest.what must be MODEL or SERVER_STATE"));
      }
    }
    const auto* bytes = reinterpret_cast<const char*>(rec->data());
    const int64_t total = rec->num_bytes();
    const int64_t chunk = std::max<int64_t>(1, opts.chunk_bytes);
    pb::TensorChunk msg;
    for (int64_t off = 0; off < total || (total == 0 && off == 0); off += chunk) {
      const int64_t n = std::min(chunk, total - off);
      msg.set_offset(off);
      msg.set_total_bytes(total);
      msg.set_data(bytes + off, static_cast<size_t>(n));
      if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      if (total == 0) break;
    }
    std::lock_guard<std::mutex> lk(mu);
    bytes_down += total;
    return grpc::Status::OK;
  }

  grpc::Status PushUpdate(grpc::ServerContext* ctx, grpc::ServerReader<pb::UpdateChunk>* reader,
                          pb::PushReply* reply) override {
    Result<ClientId> auth = authenticate(ctx);
    if (!auth.ok()) return to_grpc(auth.error());
    const ClientId c = *auth;
    int64_t task_id = 0;
    auto reject = [&](const Status& s) {
      {
        std::lock_guard<std::mutex> lk(mu);
        reject_push(c, task_id, s);
      }
      reply->set_accepted(false);
      reply->set_reason(s.to_string());
      return to_grpc(s);
    };
    pb::UpdateChunk msg;
    if (!reader->Read(&msg)) {
      return reject(Status::invalid_argument("empty update stream: the first message must be an UpdateHeader"));
    }
    if (!msg.has_header()) {
      return reject(Status::invalid_argument("the first message of an update stream must be an UpdateHeader"));
    }
    const pb::UpdateHeader h = msg.header();
    std::shared_ptr<const ArrayLayout> state_layout;
    ModelVersion task_version = 0;
    double dispatched_at = 0;
    Status task_status;
    {
      std::lock_guard<std::mutex> lk(mu);
      ClientRec& r = touch(c);
      if (done) {
        task_status = Status::failed_precondition("the run is over");
      } else if (!r.task || r.task->id != h.task_id()) {
        task_status = Status::failed_precondition(
            "update for task " + std::to_string(h.task_id()) + ", which is not client " +
            std::to_string(c) + "'s current task (stale or unknown)");
      } else {
        task_id = h.task_id();
        task_version = r.task->task.version;
        dispatched_at = r.task->dispatched_at;
        if (r.task->task.server_state) state_layout = r.task->task.server_state->layout();
      }
    }
    if (!task_status.ok()) return reject(task_status);
    if (h.base_version() != task_version) {
      return reject(Status::failed_precondition(
          "update base_version " + std::to_string(h.base_version()) + " but task " +
          std::to_string(task_id) + " was for version " + std::to_string(task_version)));
    }
    if (Status s = check_layout(h.layout(), *layout); !s.ok()) return reject(s);
    if (h.has_state_delta() != (state_layout != nullptr)) {
      return reject(Status::invalid_argument(
          std::string("has_state_delta is ") + (h.has_state_delta() ? "true" : "false") +
          " but the task " + (state_layout ? "carries" : "carries no") + " server state"));
    }
    // A push slot is held from the allocation of the buffer until the strategy is done with it.
    struct PushSlot {
      Impl* impl;
      bool held = false;
      ~PushSlot() {
        if (!held) return;
        std::lock_guard<std::mutex> lk(impl->push_mu);
        --impl->pushes_active;
        impl->push_cv.notify_one();
      }
    } slot{this};
    if (opts.max_concurrent_pushes > 0) {
      std::unique_lock<std::mutex> lk(push_mu);
      while (pushes_active >= opts.max_concurrent_pushes && !ctx->IsCancelled()) {
        push_cv.wait_for(lk, std::chrono::milliseconds(100));
      }
      if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      ++pushes_active;
      slot.held = true;
    }
    ArrayRecord delta(layout);
    ArrayRecord state;
    if (state_layout) state = ArrayRecord(state_layout);
    const int64_t model_bytes = delta.num_bytes();
    const int64_t expected = model_bytes + state.num_bytes();
    int64_t received = 0;
    int64_t index = 1;
    while (reader->Read(&msg)) {
      if (!msg.has_chunk()) {
        return reject(Status::invalid_argument("message " + std::to_string(index) +
                                               " of the update stream is not a TensorChunk "
                                               "(only the first message may be a header)"));
      }
      const pb::TensorChunk& ch = msg.chunk();
      if (ch.total_bytes() != expected) {
        return reject(Status::invalid_argument(
            "chunk total_bytes " + std::to_string(ch.total_bytes()) + ", expected " +
            std::to_string(expected) + " (numel * 4 of the model" +
            (state_layout ? " plus the state delta)" : ")")));
      }
      if (ch.offset() != received) {
        return reject(Status::invalid_argument(
            "chunk at offset " + std::to_string(ch.offset()) + ", expected " +
            std::to_string(received) + ": chunks must be contiguous and in order"));
      }
      const auto n = static_cast<int64_t>(ch.data().size());
      if (received + n > expected) {
        return reject(Status::resource_exhausted(
            "update stream exceeds the model's " + std::to_string(expected) + " bytes (chunk at " +
            std::to_string(received) + " carries " + std::to_string(n) + " bytes)"));
      }
      const char* src = ch.data().data();
      int64_t pos = received;
      int64_t left = n;
      if (pos < model_bytes) {
        const int64_t k = std::min(left, model_bytes - pos);
        std::memcpy(reinterpret_cast<char*>(delta.data()) + pos, src, static_cast<size_t>(k));
        src += k;
        pos += k;
        left -= k;
      }
      if (left > 0) {
        std::memcpy(reinterpret_cast<char*>(state.data()) + (pos - model_bytes), src,
                    static_cast<size_t>(left));
      }
      received += n;
      ++index;
    }
    if (received < expected) {
      return reject(Status::data_loss("truncated update stream: received " +
                                      std::to_string(received) + " of " +
                                      std::to_string(expected) + " bytes"));
    }
    if (Status s = delta.check_finite().with_context("update delta"); !s.ok()) return reject(s);
    if (state_layout) {
      if (Status s = state.check_finite().with_context("update state delta"); !s.ok()) return reject(s);
    }
    Update u;
    u.client = c;
    u.base_version = h.base_version();
    u.delta = std::move(delta);
    u.state_delta = std::move(state);
    u.num_examples = h.num_examples();
    u.local_steps = h.local_steps();
    for (const auto& [k, v] : h.metrics()) u.metrics[k] = v;
    u.dispatched_at = dispatched_at;
    auto shared_u = std::make_shared<Update>(std::move(u));
    Status s = post_and_wait([this, c, task_id, shared_u, expected]() -> Status {
      auto it = clients.find(c);
      if (done) return Status::failed_precondition("the run is over");
      if (it == clients.end() || !it->second.task || it->second.task->id != task_id) {
        // Lost (timeout) while the stream was arriving.
        return Status::failed_precondition("task " + std::to_string(task_id) +
                                           " was given up before its update arrived");
      }
      ClientRec& r = it->second;
      r.task.reset();
      shared_u->arrived_at = now();
      const double elapsed = shared_u->arrived_at - shared_u->dispatched_at;
      const int64_t steps = shared_u->local_steps;
      bytes_up += expected;
      ++n_updates;
      Status st = strategy->on_update(std::move(*shared_u));
      if (!st.ok()) {
        --n_updates;
        ++n_rejected;
        emit({{"event", "rejected"}, {"client", c}, {"reason", st.to_string()}});
        return st;
      }
      r.info.tasks_done += 1;
      if (elapsed > 0) r.info.measured_speed = static_cast<double>(steps) / elapsed;
      return Status();
    });
    if (!s.ok()) {
      log_line("rejected update from client " + std::to_string(c) + ": " + s.to_string());
      reply->set_accepted(false);
      reply->set_reason(s.to_string());
      return to_grpc(s);
    }
    reply->set_accepted(true);
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext* ctx, const pb::HeartbeatRequest* req,
                         pb::HeartbeatReply* reply) override {
    Result<ClientId> c = authenticate(ctx);
    if (!c.ok()) return to_grpc(c.error());
    std::lock_guard<std::mutex> lk(mu);
    ClientRec& r = touch(*c);
    reply->set_task_still_wanted(!done && req->task_id() != 0 && r.task &&
                                 r.task->id == req->task_id());
    return grpc::Status::OK;
  }

  grpc::Status ReportEval(grpc::ServerContext* ctx, const pb::EvalReport* req,
                          pb::EvalAck*) override {
    Result<ClientId> c = authenticate(ctx);
    if (!c.ok()) return to_grpc(c.error());
    std::lock_guard<std::mutex> lk(mu);
    touch(*c);
    emit({{"event", "client_eval"},
          {"client", *c},
          {"version", req->version()},
          {"loss", req->loss()},
          {"accuracy", req->accuracy()},
          {"num_examples", req->num_examples()}});
    return grpc::Status::OK;
  }

  // ---- lifecycle -------------------------------------------------------------------------
  Result<int> start() {
    if (started) return Status::failed_precondition("Server::start: already started");
    started = true;
    if (!strategy) return Status::invalid_argument("Server: no strategy");
    if (initial.empty() || initial.numel() == 0) {
      return Status::invalid_argument("Server: the initial model is empty");
    }
    if (opts.max_rounds < 0 || opts.max_wall_s < 0 || (opts.max_rounds == 0 && opts.max_wall_s == 0)) {
      return Status::invalid_argument(
          "Server: set max_rounds (run.rounds) or max_wall_s (run.max_virtual_time_s) > 0");
    }
    if (opts.chunk_bytes <= 0) {
      return Status::invalid_argument("Server: chunk_bytes must be > 0, got " +
                                      std::to_string(opts.chunk_bytes));
    }
    if (opts.client_timeout_s <= 0) {
      return Status::invalid_argument("Server: client_timeout_s must be > 0");
    }
    COHORT_ASSIGN_OR_RETURN(std::string tok_text, read_text(opts.tokens_file, "tokens file"));
    COHORT_ASSIGN_OR_RETURN(tokens, parse_tokens(tok_text, opts.tokens_file));

    std::shared_ptr<grpc::ServerCredentials> creds;
    if (opts.insecure) {
      if (!opts.tls_cert_file.empty() || !opts.tls_key_file.empty()) {
        return Status::invalid_argument("--insecure together with --cert/--key: choose one");
      }
      creds = grpc::InsecureServerCredentials();
    } else {
      if (opts.tls_cert_file.empty() || opts.tls_key_file.empty()) {
        return Status::invalid_argument(
            "TLS needs a certificate and a key (--cert FILE --key FILE); pass --insecure to "
            "serve without TLS");
      }
      COHORT_ASSIGN_OR_RETURN(std::string cert, read_text(opts.tls_cert_file, "certificate"));
      COHORT_ASSIGN_OR_RETURN(std::string key, read_text(opts.tls_key_file, "key"));
      grpc::SslServerCredentialsOptions so;
      so.pem_key_cert_pairs.push_back({key, cert});
      creds = grpc::SslServerCredentials(so);
    }

    if (!opts.out_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(opts.out_dir, ec);
      if (ec) return Status::internal(opts.out_dir + ": cannot create: " + ec.message());
      COHORT_ASSIGN_OR_RETURN(std::unique_ptr<JsonlFileSink> sink,
                              JsonlFileSink::open(opts.out_dir + "/metrics.jsonl"));
      hub.add_sink(std::shared_ptr<MetricsSink>(std::move(sink)));
    }
    for (const auto& s : opts.sinks) hub.add_sink(s);

    std::optional<Checkpoint> ckpt;
    if (opts.resume) {
      if (opts.checkpoint_dir.empty()) {
        return Status::invalid_argument("--resume needs --checkpoint-dir");
      }
      COHORT_ASSIGN_OR_RETURN(Checkpoint c, read_checkpoint(opts.checkpoint_dir));
      if (c.strategy != strategy->name()) {
        return Status::invalid_argument(opts.checkpoint_dir + ": checkpoint is for strategy " +
                                        c.strategy + ", the config says " + strategy->name());
      }
      ckpt = std::move(c);
    }

    std::unique_lock<std::mutex> lk(mu);
    clock = std::make_unique<SteadyClock>();
    layout = initial.layout();
    to_pb(*layout, &layout_pb);
    const int64_t params = initial.numel();
    Json start_ev = {{"event", "start"},
                     {"strategy", strategy->name()},
                     {"mode", "deploy"},
                     {"clients", tokens.size()},
                     {"params", params},
                     {"max_rounds", opts.max_rounds},
                     {"max_virtual_time_s", opts.max_wall_s},
                     {"seed", opts.seed}};
    for (auto& [k, v] : opts.start_fields.items()) start_ev[k] = v;
    COHORT_RETURN_IF_ERROR(strategy->start(this, std::move(initial)));
    if (ckpt) {
      COHORT_RETURN_IF_ERROR(strategy->restore_state(std::move(ckpt->state))
                                 .with_context("resuming from " + opts.checkpoint_dir));
      if (ckpt->rng_state.size() == 4) rng_.set_state(ckpt->rng_state);
      epoch = ckpt->epoch + 1;
      for (const CheckpointClient& cc : ckpt->clients) {
        ClientRec& r = clients[cc.id];
        r.info.id = cc.id;
        r.info.num_examples = cc.num_examples;
        r.info.tasks_done = cc.tasks_done;
      }
      const Json& k = ckpt->counters;
      n_updates = k.value("updates", int64_t{0});
      n_rejected = k.value("rejected", int64_t{0});
      n_lost = k.value("lost", int64_t{0});
      bytes_up = k.value("bytes_up", int64_t{0});
      bytes_down = k.value("bytes_down", int64_t{0});
      resumed_from = strategy->version();
      start_ev["resumed_from_version"] = resumed_from;
      log_line("resumed from " + opts.checkpoint_dir + " at version " + std::to_string(resumed_from));
    }
    if (!opts.checkpoint_dir.empty() && !ckpt) {
      // Fail now rather than at the first checkpoint, hours into a run.
      StrategyState probe;
      COHORT_RETURN_IF_ERROR(strategy->save_state(&probe).with_context("--checkpoint-dir"));
    }
    emit(std::move(start_ev));
    model_snapshot = strategy->global_model();
    version_snapshot = strategy->version();
    if (opts.evaluate) {
      Status s = evaluate_now();
      if (!s.ok()) return s.with_context("evaluating the initial model");
    }
    if (opts.max_rounds > 0 && strategy->version() >= opts.max_rounds) finish_run("rounds");

    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort(opts.listen_address, creds, &port);
    b.RegisterService(this);
    const int max_msg = static_cast<int>(std::min<int64_t>(
        std::numeric_limits<int>::max(), std::max<int64_t>(4 << 20, 2 * opts.chunk_bytes + (1 << 20))));
    b.SetMaxReceiveMessageSize(max_msg);
    b.SetMaxSendMessageSize(max_msg);
    // Bound what gRPC buffers for uploads waiting for a push slot: no BDP-driven growth of the
    // flow-control window and a 1 MB per-stream window, so a waiting client costs about 1 MB of
    // server memory instead of tens of MB (measured with `cohort bench large-model`).
    b.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    b.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1 << 20);
    server = b.BuildAndStart();
    if (!server || port == 0) {
      server.reset();
      return Status::unavailable("cannot listen on " + opts.listen_address);
    }
    loop_thread = std::thread([this] { run_loop(); });
    return port;
  }

  Status wait() {
    {
      std::unique_lock<std::mutex> lk(mu);
      task_cv.wait(lk, [&] { return loop_exited || !started || !server; });
    }
    shutdown();
    std::lock_guard<std::mutex> lk(mu);
    return failure;
  }

  void shutdown() {
    std::lock_guard<std::mutex> g(shutdown_mu);
    if (shut) return;
    shut = true;
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
      task_cv.notify_all();
      loop_cv.notify_all();
    }
    if (loop_thread.joinable()) loop_thread.join();
    if (server) {
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server->Wait();
    }
  }
};

Server::Server(ServerOptions options, std::unique_ptr<Strategy> strategy, ArrayRecord initial)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(strategy), std::move(initial))) {}

Server::~Server() { shutdown(); }

Result<int> Server::start() { return impl_->start(); }
Status Server::wait() { return impl_->wait(); }
void Server::shutdown() { impl_->shutdown(); }

ModelVersion Server::version() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->version_snapshot;
}

std::shared_ptr<const ArrayRecord> Server::global_model() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->model_snapshot;
}

}  // namespace cohort::deploy
