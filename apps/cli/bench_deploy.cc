// `cohort bench load` and `cohort bench large-model`: end-to-end benchmarks of the gRPC
// deployment on loopback (compiled only with COHORT_WITH_GRPC).
//
// Both run the server as a child process (`cohort bench deploy-server`, hidden: a
// deploy::Server hosting a real strategy on a model built directly as an ArrayRecord, no
// LibTorch model), so its peak RSS (/proc/self/status VmHWM, read by the child just before it
// exits) is the server's alone. The parent runs lightweight clients with the generated sync
// stub, one channel (one TCP connection) per client, few threads each serving several clients:
// Register, then { PullTask -> Download -> PushUpdate } with a constructed delta, no training.
//
//   load:        FedBuff (buffer_size B), C clients x N updates of `--update-mb` MB; reports
//                updates/s, uplink MB/s, p50/p99 PushUpdate latency, server peak RSS, and
//                checks that the server accepted exactly C x N updates (its summary.json),
//                that clients saw exactly C x N accepted replies, N per client, and no task
//                accepted twice.
//   large-model: FedAvg (fraction 1, min_clients K), K clients each pushing one P-param
//                update; reports round wall time, the server's aggregation time (the duration
//                of the strategy's on_update call that closed the round and committed, timed
//                by a forwarding Strategy wrapper in the child) and server peak RSS vs the
//                model size (goal < 4x).
//
// Everything binds 127.0.0.1 with an OS-chosen port; the run is bounded by --timeout.
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <latch>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/deploy/server.h"
#include "cohort/strategy/registry.h"
#include "cohort/v1/fleet.grpc.pb.h"
#include "commands.h"

namespace cohort::cli {

namespace {

namespace pb = ::cohort::v1;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// "VmHWM" / "VmRSS" of /proc/self/status in bytes (-1 when unavailable).
int64_t proc_status_bytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) == 0) return std::atoll(line.c_str() + prefix.size()) * 1024;
  }
  return -1;
}

// ---- child: the server -------------------------------------------------------------------

struct ServerChildArgs {
  std::string strategy = "fedbuff";
  int64_t params = 250000;
  int64_t clients = 500;
  int64_t buffer_size = 10;
  int64_t max_rounds = 1;
  int64_t max_concurrent_pushes = 0;
  int64_t chunk_bytes = 1 << 20;
  double max_wall_s = 120;
  std::string tokens;
  std::string out;
};

// Forwards everything to the real strategy and times on_update / on_timer; a call after which
// the version moved is a commit, and its duration is the aggregation's.
class TimedStrategy final : public Strategy {
 public:
  explicit TimedStrategy(std::unique_ptr<Strategy> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  Status start(StrategyHost* host, ArrayRecord initial) override {
    return inner_->start(host, std::move(initial));
  }
  void on_client_idle(ClientId id) override { inner_->on_client_idle(id); }
  Status on_update(Update update) override {
    Status s;
    timed([&] { s = inner_->on_update(std::move(update)); });
    return s;
  }
  void on_task_lost(ClientId id, ModelVersion v) override { inner_->on_task_lost(id, v); }
  void on_timer(TimerId id) override {
    timed([&] { inner_->on_timer(id); });
  }
  std::shared_ptr<const ArrayRecord> global_model() const override {
    return inner_->global_model();
  }
  ModelVersion version() const override { return inner_->version(); }
  Status save_state(StrategyState* out) const override { return inner_->save_state(out); }
  Status restore_state(StrategyState state) override {
    return inner_->restore_state(std::move(state));
  }

  // Read after Server::wait() returned (the loop thread has exited).
  double update_seconds = 0;      // all on_update calls (folding updates in as they arrive)
  double commit_seconds = 0;      // calls that committed (aggregation + commit)
  double last_commit_seconds = 0;
  int64_t commits = 0;

 private:
  template <typename F>
  void timed(F&& f) {
    const ModelVersion before = inner_->version();
    const auto t0 = Clock::now();
    f();
    const double dt = seconds_since(t0);
    update_seconds += dt;
    if (inner_->version() != before) {
      commit_seconds += dt;
      last_commit_seconds = dt;
      ++commits;
    }
  }
  std::unique_ptr<Strategy> inner_;
};

Result<std::shared_ptr<const ArrayLayout>> bench_layout(int64_t params) {
  std::vector<ArraySpec> specs;
  const int64_t bias = params > 1000 ? 1000 : 0;
  specs.push_back({"dense.weight", {params - bias}});
  if (bias > 0) specs.push_back({"dense.bias", {bias}});
  return ArrayLayout::create(std::move(specs));
}

Status run_server_child(const ServerChildArgs& a) {
  const int64_t rss_before_model = proc_status_bytes("VmRSS");
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const ArrayLayout> layout, bench_layout(a.params));
  ArrayRecord initial(layout);
  std::fill(initial.flat().begin(), initial.flat().end(), 0.0f);
  ConfigRecord params;
  if (a.strategy == "fedbuff") {
    params["buffer_size"] = a.buffer_size;
  } else {
    params["fraction"] = 1.0;
    params["min_clients"] = a.clients;
  }
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> inner, make_strategy(a.strategy, params));
  auto timed = std::make_unique<TimedStrategy>(std::move(inner));
  TimedStrategy* timing = timed.get();

  deploy::ServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.insecure = true;
  o.tokens_file = a.tokens;
  o.chunk_bytes = a.chunk_bytes;
  o.max_concurrent_pushes = a.max_concurrent_pushes;
  o.client_timeout_s = 60;
  o.heartbeat_interval_s = 10;
  o.max_rounds = a.max_rounds;
  o.max_wall_s = a.max_wall_s;
  o.done_grace_s = 1.0;
  o.out_dir = a.out;
  deploy::Server server(std::move(o), std::move(timed), std::move(initial));
  COHORT_ASSIGN_OR_RETURN(int port, server.start());
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  const int64_t rss_ready = proc_status_bytes("VmRSS");
  Status s = server.wait();
  Json r = {{"rss_before_model_bytes", rss_before_model},
            {"rss_ready_bytes", rss_ready},
            {"peak_rss_bytes", proc_status_bytes("VmHWM")},
            {"update_seconds", timing->update_seconds},
            {"commit_seconds", timing->commit_seconds},
            {"last_commit_seconds", timing->last_commit_seconds},
            {"commits", timing->commits},
            {"version", server.version()},
            {"status", s.ok() ? "ok" : s.to_string()}};
  std::printf("RESULT %s\n", r.dump().c_str());
  std::fflush(stdout);
  return s;
}

// ---- parent: process handling -------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  int port = 0;
  std::thread reader;  // drains the child's stdout
  std::mutex mu;
  std::string result_line;
  std::string stderr_path;
};

// Starts `cohort bench deploy-server ARGS` (this executable), waits for its "listening on"
// line (up to 30 s).
Status start_child(const std::vector<std::string>& args, const std::string& stderr_path,
                   Child* child) {
  int fds[2];
  if (pipe(fds) != 0) return Status::internal("pipe: " + std::string(std::strerror(errno)));
  std::vector<std::string> argv_s = {"cohort", "bench", "deploy-server"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Status::internal("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    dup2(fds[1], 1);
    const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) dup2(err, 2);
    close(fds[0]);
    close(fds[1]);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  child->pid = pid;
  child->stderr_path = stderr_path;
  std::FILE* f = fdopen(fds[0], "r");
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f) != nullptr) {
    int port = 0;
    if (std::sscanf(buf, "listening on 127.0.0.1:%d", &port) == 1) {
      child->port = port;
      break;
    }
  }
  if (child->port == 0) {
    std::fclose(f);
    waitpid(pid, nullptr, 0);
    child->pid = -1;
    std::ifstream e(stderr_path);
    std::stringstream ss;
    ss << e.rdbuf();
    return Status::internal("the server child did not start: " + ss.str());
  }
  child->reader = std::thread([f, child] {
    char line[1 << 16];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "RESULT ", 7) == 0) {
        std::lock_guard<std::mutex> lk(child->mu);
        child->result_line = line + 7;
      }
    }
    std::fclose(f);
  });
  return Status();
}

// Waits up to `timeout_s` for the child to exit, then SIGTERM, then SIGKILL. Returns its
// RESULT json.
Result<Json> finish_child(Child* child, double timeout_s) {
  const auto t0 = Clock::now();
  int status = 0;
  bool exited = false;
  int signals_sent = 0;
  while (!exited) {
    const pid_t r = waitpid(child->pid, &status, WNOHANG);
    if (r == child->pid) {
      exited = true;
      break;
    }
    const double t = seconds_since(t0);
    if (t > timeout_s && signals_sent == 0) {
      kill(child->pid, SIGTERM);
      signals_sent = 1;
    } else if (t > timeout_s + 10 && signals_sent == 1) {
      kill(child->pid, SIGKILL);
      signals_sent = 2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  child->reader.join();
  child->pid = -1;
  std::string line;
  {
    std::lock_guard<std::mutex> lk(child->mu);
    line = child->result_line;
  }
  if (line.empty()) {
    return Status::internal("the server child exited (status " + std::to_string(status) +
                            ") without a RESULT line; see " + child->stderr_path);
  }
  try {
    return Json::parse(line);
  } catch (const std::exception& e) {
    return Status::internal(std::string("server child RESULT: ") + e.what());
  }
}

// ---- parent: clients ----------------------------------------------------------------------

struct BenchClient {
  int64_t id = 0;
  std::string token;
  std::unique_ptr<pb::Fleet::Stub> stub;
  int64_t remaining = 0;
  int64_t accepted = 0;
  std::set<int64_t> accepted_tasks;
};

struct ThreadStats {
  std::vector<double> push_s;
  int64_t accepted = 0, rejected = 0, errors = 0, waits = 0, done_early = 0, duplicates = 0;
  int64_t bytes_up = 0, bytes_down = 0;
  double last_download_end = 0;   // seconds since the bench's epoch
  double first_push_start = -1;
  std::string first_error;
  void error(const std::string& what) {
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

void add_auth(grpc::ClientContext* ctx, const BenchClient& c, double timeout_s) {
  ctx->AddMetadata("authorization", "Bearer " + c.token);
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
}

// One PullTask -> Download -> PushUpdate cycle for client `c`.
void client_step(BenchClient& c, const pb::Layout& layout, const std::vector<float>& delta,
                 int64_t chunk_bytes, Clock::time_point epoch, ThreadStats& st) {
  pb::PullTaskReply task;
  {
    grpc::ClientContext ctx;
    add_auth(&ctx, c, 10);
    grpc::Status s = c.stub->PullTask(&ctx, pb::PullTaskRequest(), &task);
    if (!s.ok()) return st.error("PullTask: " + s.error_message());
  }
  if (task.kind() == pb::PullTaskReply::WAIT) {
    ++st.waits;
    return;
  }
  if (task.kind() == pb::PullTaskReply::DONE) {
    ++st.done_early;
    c.remaining = 0;
    return;
  }
  {
    grpc::ClientContext ctx;
    add_auth(&ctx, c, 300);
    pb::DownloadRequest req;
    req.set_task_id(task.task_id());
    req.set_what(pb::DownloadRequest::MODEL);
    auto reader = c.stub->Download(&ctx, req);
    pb::TensorChunk chunk;
    while (reader->Read(&chunk)) st.bytes_down += static_cast<int64_t>(chunk.data().size());
    grpc::Status s = reader->Finish();
    if (!s.ok()) return st.error("Download: " + s.error_message());
    st.last_download_end = std::max(st.last_download_end, seconds_since(epoch));
  }
  const auto t0 = Clock::now();
  if (st.first_push_start < 0) st.first_push_start = seconds_since(epoch);
  grpc::ClientContext ctx;
  add_auth(&ctx, c, 300);
  pb::PushReply reply;
  auto writer = c.stub->PushUpdate(&ctx, &reply);
  pb::UpdateChunk msg;
  pb::UpdateHeader* h = msg.mutable_header();
  h->set_task_id(task.task_id());
  h->set_base_version(task.version());
  h->set_num_examples(1);
  h->set_local_steps(task.local_steps());
  *h->mutable_layout() = layout;
  bool ok = writer->Write(msg);
  const auto total = static_cast<int64_t>(delta.size() * sizeof(float));
  const char* bytes = reinterpret_cast<const char*>(delta.data());
  for (int64_t off = 0; ok && off < total; off += chunk_bytes) {
    const int64_t n = std::min(chunk_bytes, total - off);
    pb::UpdateChunk m;
    pb::TensorChunk* ch = m.mutable_chunk();
    ch->set_offset(off);
    ch->set_total_bytes(total);
    ch->set_data(bytes + off, static_cast<size_t>(n));
    ok = writer->Write(m);
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  const double dt = seconds_since(t0);
  if (!s.ok() || !reply.accepted()) {
    ++st.rejected;
    return st.error("PushUpdate: " + (s.ok() ? reply.reason() : s.error_message()));
  }
  st.push_s.push_back(dt);
  st.bytes_up += total;
  ++st.accepted;
  ++c.accepted;
  --c.remaining;
  if (!c.accepted_tasks.insert(task.task_id()).second) ++st.duplicates;
}

struct DeployBenchSpec {
  std::string strategy;  // fedbuff | fedavg
  int64_t params = 0;
  int64_t clients = 0;
  int64_t updates_per_client = 1;
  int64_t threads = 1;
  int64_t buffer_size = 10;
  int64_t max_concurrent_pushes = 0;
  int64_t chunk_bytes = 1 << 20;
  double timeout_s = 110;
};

struct DeployBenchResult {
  double wall_s = 0;  // from all clients registered to the last client finished
  std::vector<double> push_s;
  ThreadStats totals;
  int64_t clients_with_wrong_count = 0;
  double rss_sample_peak_bytes = 0;  // the parent's 5 ms samples of the server's VmRSS
  double rss_sample_peak_at_s = 0;
  Json server;   // child's RESULT
  Json summary;  // child's summary.json
};

Result<DeployBenchResult> run_deploy_bench(const DeployBenchSpec& spec) {
  char tmpl[] = "/tmp/cohort-bench-deploy-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Status::internal("mkdtemp failed");
  const std::string dir = tmpl;
  const std::string tokens_path = dir + "/tokens.txt";
  std::vector<std::string> tokens;
  {
    std::ofstream t(tokens_path);
    t << "# cohort bench: token client_id\n";
    for (int64_t i = 0; i < spec.clients; ++i) {
      tokens.push_back("bench-" + std::to_string(i) + "-" + std::to_string(getpid()));
      t << tokens.back() << " " << i << "\n";
    }
    if (!t) return Status::internal("cannot write " + tokens_path);
  }
  const int64_t total_updates = spec.clients * spec.updates_per_client;
  const int64_t rounds =
      spec.strategy == "fedbuff" ? total_updates / spec.buffer_size : spec.updates_per_client;
  std::vector<std::string> args = {
      "--strategy", spec.strategy,
      "--params", std::to_string(spec.params),
      "--clients", std::to_string(spec.clients),
      "--buffer-size", std::to_string(spec.buffer_size),
      "--max-rounds", std::to_string(rounds),
      "--max-concurrent-pushes", std::to_string(spec.max_concurrent_pushes),
      "--chunk-bytes", std::to_string(spec.chunk_bytes),
      "--max-wall", std::to_string(spec.timeout_s + 5),
      "--tokens", tokens_path,
      "--out", dir + "/server"};
  Child child;
  COHORT_RETURN_IF_ERROR(start_child(args, dir + "/server.stderr", &child));
  const std::string target = "127.0.0.1:" + std::to_string(child.port);

  std::vector<BenchClient> clients(static_cast<size_t>(spec.clients));
  for (int64_t i = 0; i < spec.clients; ++i) {
    grpc::ChannelArguments ch_args;
    // One connection per client, as separate client machines would have.
    ch_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    ch_args.SetMaxReceiveMessageSize(64 << 20);
    ch_args.SetMaxSendMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), ch_args);
    clients[i].id = i;
    clients[i].token = tokens[i];
    clients[i].stub = pb::Fleet::NewStub(channel);
    clients[i].remaining = spec.updates_per_client;
  }
  std::vector<float> delta(static_cast<size_t>(spec.params), 1e-6f);

  const int64_t nthreads = std::clamp<int64_t>(spec.threads, 1, spec.clients);
  std::vector<ThreadStats> stats(static_cast<size_t>(nthreads));
  std::latch registered(nthreads + 1);
  std::atomic<bool> give_up{false};
  const auto deadline = Clock::now() + std::chrono::duration<double>(spec.timeout_s);
  const auto epoch = Clock::now();
  // Samples the server's RSS, to say in which phase (downloads or pushes) its peak falls.
  std::atomic<bool> sampling{true};
  double peak_sample = 0, peak_sample_at = 0;
  std::thread sampler([&] {
    const std::string path = "/proc/" + std::to_string(child.pid) + "/status";
    while (sampling) {
      std::ifstream f(path);
      std::string line;
      while (std::getline(f, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
          const double b = static_cast<double>(std::atoll(line.c_str() + 6)) * 1024;
          if (b > peak_sample) {
            peak_sample = b;
            peak_sample_at = seconds_since(epoch);
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::vector<std::thread> threads;
  for (int64_t t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] {
      ThreadStats& st = stats[static_cast<size_t>(t)];
      std::vector<BenchClient*> mine;
      for (int64_t i = t; i < spec.clients; i += nthreads) mine.push_back(&clients[i]);
      pb::Layout layout;
      for (BenchClient* c : mine) {
        grpc::ClientContext ctx;
        add_auth(&ctx, *c, 30);
        pb::RegisterRequest req;
        req.set_num_examples(1);
        pb::RegisterReply reply;
        grpc::Status s = c->stub->Register(&ctx, req, &reply);
        if (!s.ok()) {
          st.error("Register: " + s.error_message());
          c->remaining = 0;
          give_up = true;
          continue;
        }
        layout = reply.layout();
      }
      registered.arrive_and_wait();
      bool busy = true;
      while (busy && !give_up) {
        busy = false;
        for (BenchClient* c : mine) {
          if (c->remaining <= 0) continue;
          if (Clock::now() > deadline) {
            st.error("timeout: client " + std::to_string(c->id) + " has " +
                     std::to_string(c->remaining) + " updates left");
            give_up = true;
            break;
          }
          busy = true;
          client_step(*c, layout, delta, spec.chunk_bytes, epoch, st);
          if (st.errors > 100) give_up = true;
        }
      }
    });
  }
  registered.arrive_and_wait();
  const auto t0 = Clock::now();
  for (auto& th : threads) th.join();
  DeployBenchResult r;
  r.wall_s = seconds_since(t0);
  // Close the connections so the server's done grace is not spent on them.
  clients.clear();
  sampling = false;
  sampler.join();
  r.rss_sample_peak_bytes = peak_sample;
  r.rss_sample_peak_at_s = peak_sample_at;

  Result<Json> server = finish_child(&child, 30);
  if (!server.ok()) return server.error();
  r.server = std::move(*server);
  {
    std::ifstream f(dir + "/server/summary.json");
    if (f) {
      try {
        r.summary = Json::parse(f);
      } catch (const std::exception&) {
      }
    }
  }
  for (ThreadStats& st : stats) {
    r.push_s.insert(r.push_s.end(), st.push_s.begin(), st.push_s.end());
    r.totals.accepted += st.accepted;
    r.totals.rejected += st.rejected;
    r.totals.errors += st.errors;
    r.totals.waits += st.waits;
    r.totals.done_early += st.done_early;
    r.totals.duplicates += st.duplicates;
    r.totals.bytes_up += st.bytes_up;
    r.totals.bytes_down += st.bytes_down;
    if (r.totals.first_error.empty()) r.totals.first_error = st.first_error;
    r.totals.last_download_end = std::max(r.totals.last_download_end, st.last_download_end);
    if (st.first_push_start >= 0 &&
        (r.totals.first_push_start < 0 || st.first_push_start < r.totals.first_push_start)) {
      r.totals.first_push_start = st.first_push_start;
    }
  }
  std::sort(r.push_s.begin(), r.push_s.end());
  if (r.totals.errors == 0) {
    // Scratch files; kept (and named in the error) when something went wrong.
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  } else {
    r.totals.first_error += " (server log: " + dir + "/server.stderr)";
  }
  return r;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<size_t>(std::clamp(
      std::ceil(p * static_cast<double>(sorted.size())) - 1, 0.0,
      static_cast<double>(sorted.size() - 1)));
  return sorted[i];
}

int64_t json_int(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<int64_t>() : -1;
}

// ---- load -----------------------------------------------------------------------------------

struct LoadArgs {
  int64_t clients = 500;
  double update_mb = 1.0;
  int64_t updates_per_client = 2;
  int64_t threads = 50;
  int64_t buffer_size = 10;
  double timeout_s = 110;
  bool json = false;
};

Status run_load(const LoadArgs& a) {
  if (a.clients < 1 || a.updates_per_client < 1 || a.update_mb <= 0 || a.buffer_size < 1) {
    return Status::invalid_argument("bench load: --clients, --updates-per-client, --update-mb "
                                    "and --buffer-size must be positive");
  }
  DeployBenchSpec spec;
  spec.strategy = "fedbuff";
  spec.params = static_cast<int64_t>(a.update_mb * 1e6 / 4);
  spec.clients = a.clients;
  spec.updates_per_client = a.updates_per_client;
  spec.threads = a.threads;
  spec.buffer_size = a.buffer_size;
  spec.timeout_s = a.timeout_s;
  if ((a.clients * a.updates_per_client) % a.buffer_size != 0) {
    return Status::invalid_argument("bench load: clients x updates-per-client (" +
                                    std::to_string(a.clients * a.updates_per_client) +
                                    ") must be a multiple of --buffer-size " +
                                    std::to_string(a.buffer_size));
  }
  COHORT_ASSIGN_OR_RETURN(DeployBenchResult r, run_deploy_bench(spec));
  const int64_t expected = a.clients * a.updates_per_client;
  const int64_t server_updates = json_int(r.summary, "updates");
  const int64_t server_rejected = json_int(r.summary, "rejected");
  const int64_t server_lost = json_int(r.summary, "lost");
  const bool exact = server_updates == expected && r.totals.accepted == expected &&
                     r.totals.duplicates == 0 && server_rejected == 0 && server_lost == 0 &&
                     r.totals.errors == 0;
  const int64_t model_bytes = spec.params * 4;
  Json j = {{"benchmark", "load"},
            {"strategy", "fedbuff"},
            {"buffer_size", a.buffer_size},
            {"clients", a.clients},
            {"client_threads", std::min(a.threads, a.clients)},
            {"updates_per_client", a.updates_per_client},
            {"update_bytes", model_bytes},
            {"expected_updates", expected},
            {"client_accepted", r.totals.accepted},
            {"client_rejected", r.totals.rejected},
            {"client_errors", r.totals.errors},
            {"duplicate_tasks", r.totals.duplicates},
            {"server_updates", server_updates},
            {"server_rejected", server_rejected},
            {"server_lost", server_lost},
            {"server_rounds", json_int(r.summary, "rounds")},
            {"exact", exact},
            {"wall_s", r.wall_s},
            {"updates_per_s", static_cast<double>(r.totals.accepted) / r.wall_s},
            {"uplink_mb_per_s", static_cast<double>(r.totals.bytes_up) / 1e6 / r.wall_s},
            {"downlink_mb_per_s", static_cast<double>(r.totals.bytes_down) / 1e6 / r.wall_s},
            {"push_p50_ms", percentile(r.push_s, 0.5) * 1e3},
            {"push_p99_ms", percentile(r.push_s, 0.99) * 1e3},
            {"push_max_ms", r.push_s.empty() ? 0.0 : r.push_s.back() * 1e3},
            {"server_peak_rss_bytes", json_int(r.server, "peak_rss_bytes")},
            {"server_rss_before_model_bytes", json_int(r.server, "rss_before_model_bytes")},
            {"server_rss_ready_bytes", json_int(r.server, "rss_ready_bytes")},
            {"first_error", r.totals.first_error}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  if (!exact) {
    return Status::internal("bench load: updates not exact (expected " + std::to_string(expected) +
                            ", server " + std::to_string(server_updates) + ", clients " +
                            std::to_string(r.totals.accepted) + "): " + r.totals.first_error);
  }
  return Status();
}

// ---- large-model ------------------------------------------------------------------------------

struct LargeArgs {
  int64_t params = 25000000;
  int64_t clients = 10;
  int64_t max_concurrent_pushes = 1;
  int64_t chunk_bytes = 1 << 20;
  double timeout_s = 110;
  bool json = false;
};

Status run_large(const LargeArgs& a) {
  if (a.clients < 1 || a.params < 1) {
    return Status::invalid_argument("bench large-model: --params and --clients must be positive");
  }
  DeployBenchSpec spec;
  spec.strategy = "fedavg";
  spec.params = a.params;
  spec.clients = a.clients;
  spec.updates_per_client = 1;
  spec.threads = a.clients;
  spec.max_concurrent_pushes = a.max_concurrent_pushes;
  spec.chunk_bytes = a.chunk_bytes;
  spec.timeout_s = a.timeout_s;
  COHORT_ASSIGN_OR_RETURN(DeployBenchResult r, run_deploy_bench(spec));
  const int64_t model_bytes = a.params * 4;
  const int64_t peak = json_int(r.server, "peak_rss_bytes");
  const int64_t before = json_int(r.server, "rss_before_model_bytes");
  const double over = static_cast<double>(peak) / static_cast<double>(model_bytes);
  const double incr = static_cast<double>(peak - before) / static_cast<double>(model_bytes);
  const bool ok = r.totals.accepted == a.clients && json_int(r.summary, "updates") == a.clients &&
                  json_int(r.summary, "rounds") == 1;
  Json j = {{"benchmark", "large-model"},
            {"strategy", "fedavg"},
            {"params", a.params},
            {"model_bytes", model_bytes},
            {"clients", a.clients},
            {"max_concurrent_pushes", a.max_concurrent_pushes},
            {"chunk_bytes", a.chunk_bytes},
            {"client_accepted", r.totals.accepted},
            {"server_updates", json_int(r.summary, "updates")},
            {"server_rounds", json_int(r.summary, "rounds")},
            {"round_wall_s", r.wall_s},
            {"server_aggregate_s", r.server.value("last_commit_seconds", -1.0)},
            {"server_on_update_total_s", r.server.value("update_seconds", -1.0)},
            {"push_p50_ms", percentile(r.push_s, 0.5) * 1e3},
            {"push_max_ms", r.push_s.empty() ? 0.0 : r.push_s.back() * 1e3},
            {"server_peak_rss_bytes", peak},
            {"server_rss_before_model_bytes", before},
            {"server_rss_ready_bytes", json_int(r.server, "rss_ready_bytes")},
            {"peak_rss_over_model", over},
            {"rss_sampled_peak_bytes", r.rss_sample_peak_bytes},
            {"rss_sampled_peak_at_s", r.rss_sample_peak_at_s},
            {"first_push_start_s", r.totals.first_push_start},
            {"last_download_end_s", r.totals.last_download_end},
            {"peak_rss_increment_over_model", incr},
            {"goal_increment_under_4x_model", incr < 4.0},
            {"ok", ok},
            {"first_error", r.totals.first_error}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  if (!ok) {
    return Status::internal("bench large-model: the round did not complete with every update: " +
                            r.totals.first_error);
  }
  return Status();
}

}  // namespace

void add_bench_deploy_commands(CLI::App* bench) {
  auto la = std::make_shared<LoadArgs>();
  CLI::App* l = bench->add_subcommand(
      "load", "Many gRPC clients pushing updates to a FedBuff server on loopback");
  l->add_option("--clients", la->clients, "Registered clients (one connection each)")
      ->capture_default_str();
  l->add_option("--update-mb", la->update_mb, "Update size in MB (float32)")->capture_default_str();
  l->add_option("--updates-per-client", la->updates_per_client, "Updates each client pushes")
      ->capture_default_str();
  l->add_option("--threads", la->threads, "Client threads (clients are spread over them)")
      ->capture_default_str();
  l->add_option("--buffer-size", la->buffer_size, "FedBuff buffer size")->capture_default_str();
  l->add_option("--timeout", la->timeout_s, "Give up after this many seconds")
      ->capture_default_str();
  l->add_flag("--json", la->json, "Print one JSON line");
  l->callback([la] { run_guarded("bench load", [&] { return run_load(*la); }); });

  auto ga = std::make_shared<LargeArgs>();
  CLI::App* g = bench->add_subcommand(
      "large-model", "One FedAvg round of large updates over gRPC on loopback");
  g->add_option("--params", ga->params, "Floats per model")->capture_default_str();
  g->add_option("--clients", ga->clients, "Clients (each pushes one update)")
      ->capture_default_str();
  g->add_option("--max-concurrent-pushes", ga->max_concurrent_pushes,
                "Server: uploads assembled at once (0 = unlimited)")
      ->capture_default_str();
  g->add_option("--chunk-bytes", ga->chunk_bytes, "Stream chunk size")->capture_default_str();
  g->add_option("--timeout", ga->timeout_s, "Give up after this many seconds")
      ->capture_default_str();
  g->add_flag("--json", ga->json, "Print one JSON line");
  g->callback([ga] { run_guarded("bench large-model", [&] { return run_large(*ga); }); });

  auto sa = std::make_shared<ServerChildArgs>();
  CLI::App* s = bench->add_subcommand("deploy-server", "Server child of bench load/large-model");
  s->group("");  // hidden
  s->add_option("--strategy", sa->strategy);
  s->add_option("--params", sa->params);
  s->add_option("--clients", sa->clients);
  s->add_option("--buffer-size", sa->buffer_size);
  s->add_option("--max-rounds", sa->max_rounds);
  s->add_option("--max-concurrent-pushes", sa->max_concurrent_pushes);
  s->add_option("--chunk-bytes", sa->chunk_bytes);
  s->add_option("--max-wall", sa->max_wall_s);
  s->add_option("--tokens", sa->tokens)->required();
  s->add_option("--out", sa->out);
  s->callback([sa] { run_guarded("bench deploy-server", [&] { return run_server_child(*sa); }); });
}

}  // namespace cohort::cli
