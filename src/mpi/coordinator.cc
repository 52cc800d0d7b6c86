// Rank 0: the simulator's RemoteTraining over MPI (cohort/mpi/mpi.h). One communication thread
// makes every MPI call while the run lasts (MPI_THREAD_SERIALIZED); the simulator's loop thread
// only queues jobs and waits on their futures.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "cohort/core/config_record_json.h"
#include "cohort/core/format.h"
#include "cohort/mpi/mpi.h"
#include "mpi/message.h"
#include "mpi/transport.h"

namespace cohort::mpi {

namespace {

using Clock = std::chrono::steady_clock;
using Promise = std::promise<Result<sim::RemoteResult>>;

std::string rank_name(int rank) { return "MPI rank " + std::to_string(rank); }

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

Status stop_workers(Session& session, double timeout_s) {
  for (int r = 1; r < session.size(); ++r) COHORT_RETURN_IF_ERROR(send_bytes(r, kStop, ""));
  std::vector<bool> stopped(static_cast<size_t>(session.size()), false);
  int left = session.size() - 1;
  const Clock::time_point start = Clock::now();
  Backoff backoff;
  while (left > 0) {
    // Hellos and results still on their way are read and dropped.
    COHORT_ASSIGN_OR_RETURN(std::optional<Incoming> in, poll(MPI_ANY_SOURCE));
    if (in) {
      backoff.reset();
      if (in->tag == kStopped && !stopped[static_cast<size_t>(in->source)]) {
        stopped[static_cast<size_t>(in->source)] = true;
        --left;
      }
      continue;
    }
    if (seconds_since(start) > timeout_s) {
      std::string silent;
      for (int r = 1; r < session.size(); ++r) {
        if (!stopped[static_cast<size_t>(r)])
          silent += (silent.empty() ? "" : ", ") + std::to_string(r);
      }
      return Status::deadline_exceeded("MPI rank(s) " + silent +
                                       " did not acknowledge the stop within " +
                                       format_number(timeout_s) + " s (--mpi-timeout)");
    }
    std::this_thread::sleep_for(backoff.next());
  }
  return Status();
}

class Coordinator::Impl {
 public:
  Impl(Session& session, MpiOptions options) : session_(session), options_(options) {
    workers_.resize(static_cast<size_t>(session.size()));
    for (int r = 0; r < session.size(); ++r) workers_[static_cast<size_t>(r)].rank = r;
  }

  ~Impl() { stop_thread(); }

  Session& session() { return session_; }
  double timeout_s() const { return options_.timeout_s; }

  Status wait_for_hellos(uint64_t fingerprint) {
    int left = session_.size() - 1;
    std::vector<bool> seen(static_cast<size_t>(session_.size()), false);
    const Clock::time_point start = Clock::now();
    Backoff backoff;
    while (left > 0) {
      COHORT_ASSIGN_OR_RETURN(std::optional<Incoming> in, poll(MPI_ANY_SOURCE));
      if (!in) {
        if (seconds_since(start) > options_.timeout_s) {
          for (int r = 1; r < session_.size(); ++r) {
            if (!seen[static_cast<size_t>(r)]) {
              return Status::deadline_exceeded(
                  rank_name(r) + " did not report its set-up (data, partition, trainer) within " +
                  format_number(options_.timeout_s) + " s (--mpi-timeout)");
            }
          }
        }
        std::this_thread::sleep_for(backoff.next());
        continue;
      }
      if (in->tag != kHello || seen[static_cast<size_t>(in->source)]) continue;
      seen[static_cast<size_t>(in->source)] = true;
      --left;
      COHORT_ASSIGN_OR_RETURN(MessageReader m, MessageReader::parse(std::move(in->bytes)));
      Status st = read_status(m.header());
      if (!st.ok()) return Status(st.code(), rank_name(in->source) + ": " + st.message());
      const uint64_t theirs = m.header().value("fingerprint", uint64_t{0});
      if (theirs != fingerprint) {
        return Status::failed_precondition(
            rank_name(in->source) + " built a different scenario than rank 0 (fingerprint " +
            std::to_string(theirs) + ", rank 0: " + std::to_string(fingerprint) +
            "): every rank must read the same config, seed and data files");
      }
    }
    return Status();
  }

  void start_thread() {
    thread_ = std::thread([this] {
      loop();
    });
  }

  void stop_thread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  std::future<Result<sim::RemoteResult>> submit(sim::RemoteJob job) {
    Queued q;
    q.job = std::move(job);
    std::future<Result<sim::RemoteResult>> f = q.promise.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failure_.ok()) {
        q.promise.set_value(failure_);
      } else if (stop_) {
        q.promise.set_value(Status::cancelled("the MPI coordinator has stopped"));
      } else {
        q.seq = next_seq_++;
        incoming_.push_back(std::move(q));
      }
    }
    cv_.notify_all();
    return f;
  }

  Json traffic() const {
    std::lock_guard<std::mutex> lock(traffic_mu_);
    int64_t model_bytes = 0, sends = 0, max_sends = 0;
    for (const auto& [v, t] : versions_) {
      model_bytes += t.bytes;
      sends += t.sends;
      max_sends = std::max(max_sends, t.sends);
    }
    Json per_rank = Json::array();
    int64_t tasks = 0;
    for (const WorkerState& w : workers_) {
      per_rank.push_back(w.tasks);
      tasks += w.tasks;
    }
    const auto versions = static_cast<int64_t>(versions_.size());
    return {{"ranks", session_.size()},
            {"tasks", tasks},
            {"tasks_per_rank", per_rank},
            {"versions_sent", versions},
            {"model_sends", sends},
            {"model_bytes", model_bytes},
            {"model_bytes_per_version", versions > 0 ? model_bytes / versions : 0},
            {"max_sends_per_version", max_sends},
            {"task_bytes", task_bytes_},
            {"result_bytes", result_bytes_},
            {"total_bytes", model_bytes + task_bytes_ + result_bytes_}};
  }

 private:
  struct Queued {
    sim::RemoteJob job;
    Promise promise;
    uint64_t seq = 0;
  };
  struct Running {
    int64_t number = 0;
    ClientId client = 0;
    Promise promise;
    Clock::time_point sent;
    std::unique_ptr<std::string> buffer;  // alive until the send completes (or retired)
    MPI_Request request = MPI_REQUEST_NULL;
  };
  struct WorkerState {
    int rank = 0;
    std::optional<Running> running;
    std::deque<int64_t> models;  // mirrors the worker's cache, oldest first
    int64_t tasks = 0;
  };
  struct VersionTraffic {
    int64_t sends = 0;
    int64_t bytes = 0;
  };
  // Priority queue order: bigger priority first, then submission order.
  static bool later(const Queued& a, const Queued& b) {
    return a.job.priority != b.job.priority ? a.job.priority < b.job.priority : a.seq > b.seq;
  }

  void loop() {
    Backoff backoff;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) break;
        for (Queued& q : incoming_) {
          pending_.push_back(std::move(q));
          std::push_heap(pending_.begin(), pending_.end(), later);
        }
        incoming_.clear();
      }
      bool progress = false;
      Status st = step(&progress);
      if (!st.ok()) {
        fail(st);
        return;
      }
      if (progress) {
        backoff.reset();
        continue;
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, backoff.next(), [&] {
        return stop_ || !incoming_.empty();
      });
    }
    // Stopped: whatever is queued or in flight will not be collected.
    for (Queued& q : pending_) q.promise.set_value(Status::cancelled("the simulation ended"));
    pending_.clear();
    for (WorkerState& w : workers_) {
      if (w.running) w.running->promise.set_value(Status::cancelled("the simulation ended"));
      retire(w);
    }
  }

  // Drops a worker's task in flight whose result nobody will collect. A send not completed yet
  // keeps its buffer until the coordinator dies (after the workers acknowledged the stop, or
  // the job was aborted): MPI may still read it.
  void retire(WorkerState& w) {
    if (!w.running) return;
    if (w.running->request != MPI_REQUEST_NULL) {
      MPI_Request_free(&w.running->request);
      retired_.push_back(std::move(w.running->buffer));
    }
    w.running.reset();
  }

  // Every job queued or in flight, and every later one, ends with `st` (the run fails).
  void fail(const Status& st) {
    std::lock_guard<std::mutex> lock(mu_);
    failure_ = st;
    for (Queued& q : incoming_) q.promise.set_value(st);
    incoming_.clear();
    for (Queued& q : pending_) q.promise.set_value(st);
    pending_.clear();
    for (WorkerState& w : workers_) {
      if (w.running) w.running->promise.set_value(st);
      retire(w);
    }
  }

  Status step(bool* progress) {
    // Idle workers take the next job.
    for (size_t r = 1; r < workers_.size(); ++r) {
      WorkerState& w = workers_[r];
      while (!w.running && !pending_.empty()) {
        std::pop_heap(pending_.begin(), pending_.end(), later);
        Queued q = std::move(pending_.back());
        pending_.pop_back();
        *progress = true;
        if (q.job.abandoned && q.job.abandoned->load()) {
          q.promise.set_value(Status::cancelled("task lost"));
          continue;
        }
        COHORT_RETURN_IF_ERROR(send_task(w, std::move(q)));
      }
    }
    for (;;) {
      COHORT_ASSIGN_OR_RETURN(std::optional<Incoming> in, poll(MPI_ANY_SOURCE));
      if (!in) break;
      *progress = true;
      if (in->tag == kResult) COHORT_RETURN_IF_ERROR(receive_result(std::move(*in)));
    }
    for (size_t r = 1; r < workers_.size(); ++r) {
      WorkerState& w = workers_[r];
      if (!w.running) continue;
      if (w.running->request != MPI_REQUEST_NULL) {
        int done = 0;
        COHORT_RETURN_IF_ERROR(mpi_status(MPI_Test(&w.running->request, &done, MPI_STATUS_IGNORE),
                                          "sending a task to " + rank_name(w.rank)));
      }
      if (seconds_since(w.running->sent) > options_.timeout_s) {
        return Status::deadline_exceeded(
            rank_name(w.rank) + " did not return task " + std::to_string(w.running->number) +
            " (client " + std::to_string(w.running->client) + ") within " +
            format_number(options_.timeout_s) + " s (--mpi-timeout): it hangs or died");
      }
    }
    return Status();
  }

  int64_t model_id(const std::shared_ptr<const ArrayRecord>& model) {
    for (const auto& [m, id] : known_models_) {
      if (m == model) return id;
    }
    known_models_.emplace_back(model, next_model_id_);
    while (known_models_.size() > 64) known_models_.pop_front();
    return next_model_id_++;
  }

  Status send_task(WorkerState& w, Queued q) {
    const sim::RemoteJob& job = q.job;
    MessageWriter m;
    Json& h = m.header();
    const int64_t id = model_id(job.model);
    h["number"] = job.number;
    h["client"] = job.client;
    h["version"] = job.version;
    h["steps"] = job.steps;
    h["seed"] = job.seed;
    h["config"] = to_json(job.config);
    h["model_id"] = id;
    int64_t model_bytes = 0;
    if (std::find(w.models.begin(), w.models.end(), id) == w.models.end()) {
      m.add_record("model", *job.model);
      model_bytes = job.model->num_bytes();
      w.models.push_back(id);
      while (w.models.size() > static_cast<size_t>(options_.models_per_rank)) w.models.pop_front();
    }
    if (job.grad_correction) m.add_record("grad_correction", *job.grad_correction);
    if (job.optimizer_state) m.add_record("optimizer_state", *job.optimizer_state);
    Running run;
    run.number = job.number;
    run.client = job.client;
    run.promise = std::move(q.promise);
    run.buffer = std::make_unique<std::string>(m.finish());
    run.sent = Clock::now();
    {
      std::lock_guard<std::mutex> lock(traffic_mu_);
      if (model_bytes > 0) {
        VersionTraffic& t = versions_[job.version];
        ++t.sends;
        t.bytes += model_bytes;
      }
      task_bytes_ += static_cast<int64_t>(run.buffer->size()) - model_bytes;
      ++w.tasks;
    }
    w.running = std::move(run);
    return mpi_status(
        MPI_Isend(w.running->buffer->data(), static_cast<int>(w.running->buffer->size()), MPI_BYTE,
                  w.rank, kTask, MPI_COMM_WORLD, &w.running->request),
        "sending a task to " + rank_name(w.rank));
  }

  Status receive_result(Incoming in) {
    const size_t bytes = in.bytes.size();
    {
      std::lock_guard<std::mutex> lock(traffic_mu_);
      result_bytes_ += static_cast<int64_t>(bytes);
    }
    WorkerState& w = workers_[static_cast<size_t>(in.source)];
    COHORT_ASSIGN_OR_RETURN(MessageReader m, MessageReader::parse(std::move(in.bytes)));
    const int64_t number = m.header().value("number", int64_t{-1});
    if (!w.running || w.running->number != number) {
      return Status::internal(rank_name(w.rank) + " returned task " + std::to_string(number) +
                              ", which it was not training");
    }
    Running run = std::move(*w.running);
    w.running.reset();
    // The worker received the task, so its send completes at once.
    COHORT_RETURN_IF_ERROR(mpi_status(MPI_Wait(&run.request, MPI_STATUS_IGNORE),
                                      "sending a task to " + rank_name(w.rank)));
    run.promise.set_value(decode_result(m, w.rank));
    return Status();
  }

  static Result<sim::RemoteResult> decode_result(const MessageReader& m, int rank) {
    Status st = read_status(m.header());
    if (!st.ok()) return Status(st.code(), "on " + rank_name(rank) + ": " + st.message());
    sim::RemoteResult r;
    COHORT_ASSIGN_OR_RETURN(r.result.params, m.record("params"));
    COHORT_ASSIGN_OR_RETURN(r.result.metrics, read_metrics(m, "metrics"));
    r.result.num_examples = m.header().value("num_examples", int64_t{0});
    r.result.steps = m.header().value("steps", int64_t{0});
    if (m.has("optimizer_state")) {
      COHORT_ASSIGN_OR_RETURN(ArrayRecord s, m.record("optimizer_state"));
      r.optimizer_state = std::move(s);
    }
    return r;
  }

  Session& session_;
  const MpiOptions options_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  Status failure_;
  std::vector<Queued> incoming_;  // submitted, not yet seen by the thread
  uint64_t next_seq_ = 0;
  // The thread's own.
  std::vector<Queued> pending_;  // a heap (later())
  std::vector<WorkerState> workers_;
  std::deque<std::pair<std::shared_ptr<const ArrayRecord>, int64_t>> known_models_;
  int64_t next_model_id_ = 0;
  std::vector<std::unique_ptr<std::string>> retired_;  // buffers of sends left to complete
  // Traffic, read by traffic() from other threads.
  mutable std::mutex traffic_mu_;
  std::map<ModelVersion, VersionTraffic> versions_;
  int64_t task_bytes_ = 0;
  int64_t result_bytes_ = 0;
};

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Coordinator::~Coordinator() = default;

Result<std::shared_ptr<Coordinator>> Coordinator::start(Session& session, MpiOptions options,
                                                        uint64_t fingerprint) {
  COHORT_RETURN_IF_ERROR(options.validate());
  if (session.rank() != 0) return Status::internal("the MPI coordinator runs on rank 0");
  auto impl = std::make_unique<Impl>(session, options);
  COHORT_RETURN_IF_ERROR(impl->wait_for_hellos(fingerprint));
  impl->start_thread();
  return std::shared_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

std::future<Result<sim::RemoteResult>> Coordinator::submit(sim::RemoteJob job) {
  return impl_->submit(std::move(job));
}

Status Coordinator::shutdown() {
  impl_->stop_thread();
  return stop_workers(impl_->session(), impl_->timeout_s());
}

Json Coordinator::traffic() const { return impl_->traffic(); }

}  // namespace cohort::mpi
