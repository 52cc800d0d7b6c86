// The parent's side of the deployment benchmarks (bench/deploy_load.cc describes them): starts
// the server child (`cohort bench deploy-server`, bench/deploy_server.cc) and runs lightweight
// clients with the generated sync stub, one channel (one TCP connection) per client, few
// threads each serving several clients: Register, then { PullTask -> Download -> PushUpdate }
// with a constructed delta, no training. Everything binds 127.0.0.1 with an OS-chosen port.
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <latch>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "bench_util.h"
#include "cohort/codec/codec.h"
#include "cohort/core/metrics.h"
#include "cohort/deploy/client.h"
#include "deploy/wire.h"
#include "deploy_bench.h"

namespace cohort::bench {

namespace pb = wire::pb;

// ---- process handling ----------------------------------------------------------------------

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

namespace {

// ---- clients -------------------------------------------------------------------------------

struct BenchClient {
  int64_t id = 0;
  std::string token;
  std::unique_ptr<pb::Fleet::Stub> stub;
  int64_t remaining = 0;
  int64_t accepted = 0;
  std::set<int64_t> accepted_tasks;
};

// One PullTask -> Download -> PushUpdate cycle for client `c`.
// `payload`: the delta encoded with the run's uplink chain (empty: raw float32).
void client_step(BenchClient& c, const pb::Layout& layout, const std::vector<float>& delta,
                 const std::string& payload, int64_t chunk_bytes, Clock::time_point epoch,
                 ThreadStats& st) {
  pb::PullTaskReply task;
  {
    grpc::ClientContext ctx;
    wire::prepare_context(&ctx, c.token, 10);
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
    wire::prepare_context(&ctx, c.token, 300);
    pb::DownloadRequest req;
    req.set_task_id(task.task_id());
    req.set_what(pb::DownloadRequest::MODEL);
    auto reader = c.stub->Download(&ctx, req);
    pb::TensorChunk chunk;
    st.payload.clear();
    while (reader->Read(&chunk)) {
      st.bytes_down += static_cast<int64_t>(chunk.data().size());
      if (!task.model_codec().empty()) st.payload += chunk.data();
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return st.error("Download: " + s.error_message());
    if (!task.model_codec().empty()) {
      // What a real client does with the payload: decode it into its model.
      Result<std::shared_ptr<const codec::Chain>> chain = codec::Chain::parse(task.model_codec());
      if (!chain.ok()) return st.error("model_codec: " + chain.error().message());
      st.decoded.resize(delta.size());
      Result<std::shared_ptr<const ArrayLayout>> dl = dense_layout(static_cast<int64_t>(delta.size()));
      if (!dl.ok()) return st.error(dl.error().message());
      Status d = (*chain)->decode(st.payload, codec::segment_offsets(**dl), st.decoded);
      if (!d.ok()) return st.error("decoding the model: " + d.message());
    }
    st.last_download_end = std::max(st.last_download_end, seconds_since(epoch));
  }
  const auto t0 = Clock::now();
  if (st.first_push_start < 0) st.first_push_start = seconds_since(epoch);
  grpc::ClientContext ctx;
  wire::prepare_context(&ctx, c.token, 300);
  pb::PushReply reply;
  auto writer = c.stub->PushUpdate(&ctx, &reply);
  pb::UpdateChunk msg;
  pb::UpdateHeader* h = msg.mutable_header();
  h->set_task_id(task.task_id());
  h->set_base_version(task.version());
  h->set_num_examples(1);
  h->set_local_steps(task.local_steps());
  *h->mutable_layout() = layout;
  auto total = static_cast<int64_t>(delta.size() * sizeof(float));
  const char* bytes = reinterpret_cast<const char*>(delta.data());
  if (!task.update_codec().empty()) {
    h->set_codec(task.update_codec());
    total = static_cast<int64_t>(payload.size());
    h->set_delta_bytes(total);
    bytes = payload.data();
  }
  if (writer->Write(msg)) {
    const wire::ByteRange parts[] = {{bytes, total}};
    pb::UpdateChunk m;
    // As the real client (deploy/client.cc): the chunk's data swapped in, not copied, and no
    // stream CRC over a codec payload (its frames carry their own).
    wire::for_each_chunk(
        parts, chunk_bytes,
        [&](pb::TensorChunk& ch) {
          m.mutable_chunk()->Swap(&ch);
          return writer->Write(m);
        },
        task.update_codec().empty() ? wire::StreamCrc{} : wire::StreamCrc::omit());
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

}  // namespace

Result<DeployBenchResult> run_deploy_bench(const DeployBenchSpec& spec) {
  deploy::keep_freed_memory_for_reuse();  // as cohort join does (the server child does not)
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
  std::vector<std::string> args = {"--strategy",
                                   spec.strategy,
                                   "--params",
                                   std::to_string(spec.params),
                                   "--clients",
                                   std::to_string(spec.clients),
                                   "--buffer-size",
                                   std::to_string(spec.buffer_size),
                                   "--max-rounds",
                                   std::to_string(rounds),
                                   "--max-concurrent-pushes",
                                   std::to_string(spec.max_concurrent_pushes),
                                   "--chunk-bytes",
                                   std::to_string(spec.chunk_bytes),
                                   "--max-wall",
                                   std::to_string(spec.timeout_s + 5),
                                   "--tokens",
                                   tokens_path,
                                   "--out",
                                   dir + "/server",
                                   "--uplink",
                                   spec.uplink,
                                   "--downlink",
                                   spec.downlink,
                                   "--spool-dir",
                                   dir};
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
  // Encoded once: every client pushes the same update (the server does not check the seed).
  std::string payload;
  if (spec.uplink != "none") {
    COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const codec::Chain> chain, codec::Chain::parse(spec.uplink));
    COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const ArrayLayout> dl, dense_layout(spec.params));
    COHORT_ASSIGN_OR_RETURN(payload, chain->encode(delta, codec::segment_offsets(*dl), 1));
  }

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
        wire::prepare_context(&ctx, c->token, 30);
        // The server is listening, but a first connect can still fail transiently (seen once
        // in ~40 runs): wait for the channel rather than fail the benchmark.
        ctx.set_wait_for_ready(true);
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
          client_step(*c, layout, delta, payload, spec.chunk_bytes, epoch, st);
          if (st.errors > 100) give_up = true;
        }
      }
    });
  }
  registered.arrive_and_wait();
  const auto t0 = Clock::now();
  // The clients' phase times are taken from `epoch`, before they registered; reported from t0,
  // the start of the measured round, like wall_s.
  const double registered_at = std::chrono::duration<double>(t0 - epoch).count();
  const double server_cpu0 = process_cpu_seconds(child.pid), clients_cpu0 = self_cpu_seconds();
  for (auto& th : threads) th.join();
  DeployBenchResult r;
  r.wall_s = seconds_since(t0);
  const double server_cpu1 = process_cpu_seconds(child.pid);
  r.clients_cpu_s = self_cpu_seconds() - clients_cpu0;
  if (server_cpu0 >= 0 && server_cpu1 >= 0) r.server_cpu_s = server_cpu1 - server_cpu0;
  // Close the connections so the server's done grace is not spent on them.
  clients.clear();
  sampling = false;
  sampler.join();
  r.rss_sample_peak_bytes = peak_sample;
  r.rss_sample_peak_at_s = peak_sample_at - registered_at;

  Result<Json> server = finish_child(&child, 30);
  if (!server.ok()) {
    // Say what the clients saw too: a server that never finished usually means they gave up.
    for (const ThreadStats& st : stats) {
      if (!st.first_error.empty()) {
        return Status(server.error().code(),
                      server.error().message() + "; the clients' first error: " + st.first_error);
      }
    }
    return server.error();
  }
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
  if (r.totals.first_push_start >= 0) r.totals.first_push_start -= registered_at;
  if (r.totals.last_download_end > 0) r.totals.last_download_end -= registered_at;
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

}  // namespace cohort::bench
