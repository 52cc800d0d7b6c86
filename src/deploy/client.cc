#include "cohort/deploy/client.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "cohort/codec/codec.h"
#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/rng.h"
#include "cohort/runtime/checkpoint.h"
#include "cohort/runtime/privacy.h"
#include "cohort/strategy/strategy.h"
#include "cohort/trainer/control_variates.h"
#include "deploy/client_downlink.h"
#include "deploy/client_faults.h"
#include "deploy/client_secagg.h"
#include "deploy/client_state.h"
#include "deploy/relay_tasks.h"
#include "deploy/wire.h"

namespace cohort::deploy {

namespace pb = ::cohort::v1;

namespace {

using SteadyClock = std::chrono::steady_clock;
using wire::from_grpc;

constexpr char kClientVersion[] = "cohort-cpp/0.1.0";

double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

}  // namespace

struct Client::Impl {
  ClientOptions opt;
  std::unique_ptr<Trainer> trainer;
  Shard shard;
  std::shared_ptr<const ArrayLayout> layout;
  std::string ca_pem;
  Rng rng;

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Fleet::Stub> stub;

  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stopping{false};

  ClientStats stats;
  bool registered_once = false;
  // Set by a heartbeat reply: the run ended (the session then ends like on a DONE pull).
  std::atomic<bool> run_over{false};
  // The trainer's cancel flag: set for the task in progress when the run ended, the server
  // gave up on the task (a heartbeat said so) or stop() was called; its result would be
  // thrown away.
  std::atomic<bool> stop_training{false};
  int64_t chunk_bytes = 1 << 20;
  double heartbeat_s = 1.0;
  // What the client keeps across tasks and reconnects (client_state.h): SCAFFOLD's c_i (kept
  // once the server accepted the update), the uplink's error-feedback residual (advances when
  // an upload reaches the server, accepted or not, like the simulator's) and the optimizer
  // state of tasks with "keep_optimizer_state" (advances with every task trained).
  ClientKeptState kept;
  HeldModel held;  // delta downlink: the model as last downloaded
  bool state_loaded = false;
  // Chains named by the server's tasks, parsed once.
  std::map<std::string, std::shared_ptr<const codec::Chain>> chains;

  // The chain a task names ("" = none: null). InvalidArgument for a chain this build does
  // not know (a newer server).
  Result<std::shared_ptr<const codec::Chain>> chain_of(const std::string& spec) {
    if (spec.empty()) return std::shared_ptr<const codec::Chain>();
    auto it = chains.find(spec);
    if (it != chains.end()) return it->second;
    Result<std::shared_ptr<const codec::Chain>> c = codec::Chain::parse(spec);
    if (!c.ok()) return c.error().with_context("the server's codec");
    chains[spec] = *c;
    return *c;
  }
  bool fault_pending = false;

  void log(const std::string& line) const {
    if (opt.log) opt.log(line);
  }

  bool stop_requested() const {
    return stopping.load() || (opt.stop_flag != nullptr && opt.stop_flag->load());
  }

  // Sleeps up to `s` seconds; false when stopped meanwhile.
  bool sleep_for(double s) {
    const auto until = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                std::chrono::duration<double>(s));
    std::unique_lock<std::mutex> lk(mu);
    while (!stop_requested()) {
      // Short slices so an external stop_flag (set from a signal handler) is noticed.
      const auto slice = std::min(until, SteadyClock::now() + std::chrono::milliseconds(100));
      cv.wait_until(lk, slice);
      if (SteadyClock::now() >= until) return !stop_requested();
    }
    return false;
  }

  void prepare(grpc::ClientContext* ctx, double timeout_s) const {
    wire::prepare_context(ctx, opt.token, timeout_s);
  }

  void connect() {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (opt.insecure) {
      creds = grpc::InsecureChannelCredentials();
    } else {
      grpc::SslCredentialsOptions so;
      so.pem_root_certs = ca_pem;
      creds = grpc::SslCredentials(so);
    }
    grpc::ChannelArguments args;
    if (!opt.ssl_target_name.empty()) args.SetSslTargetNameOverride(opt.ssl_target_name);
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // gRPC's own reconnect backoff goes up to two minutes; ours decides when to retry, so a
    // fresh channel per session with short internal backoff keeps it from adding delay.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel = grpc::CreateCustomChannel(opt.server, creds, args);
    stub = pb::Fleet::NewStub(channel);
  }

  Status do_register() {
    grpc::ClientContext ctx;
    prepare(&ctx, opt.rpc_timeout_s);
    pb::RegisterRequest req;
    const int64_t examples = opt.examples_to_register ? opt.examples_to_register() : shard.size();
    req.set_num_examples(examples);
    req.set_speed_hint(opt.speed_hint);
    req.set_client_version(kClientVersion);
    pb::RegisterReply rep;
    grpc::Status st = stub->Register(&ctx, req, &rep);
    if (!st.ok()) {
      if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
        return Status::unauthenticated(
            "server " + opt.server + " rejected this client's token (Register: " +
            wire::code_name(st.error_code()) + ": " + st.error_message() + ")");
      }
      return from_grpc(st, "Register with " + opt.server);
    }
    COHORT_RETURN_IF_ERROR(wire::check_layout(rep.layout(), *layout));
    if (registered_once) stats.reconnects += 1;
    registered_once = true;
    stats.client_id = rep.client_id();
    chunk_bytes = opt.chunk_bytes > 0 ? opt.chunk_bytes
                                      : (rep.chunk_bytes() > 0 ? rep.chunk_bytes() : 1 << 20);
    heartbeat_s = opt.heartbeat_interval_s > 0
                      ? opt.heartbeat_interval_s
                      : (rep.heartbeat_interval_s() > 0 ? rep.heartbeat_interval_s() : 1.0);
    log(strformat("registered with %s as client %lld (%lld examples, model %lld parameters)",
                  opt.server.c_str(), static_cast<long long>(stats.client_id),
                  static_cast<long long>(examples), static_cast<long long>(layout->numel())));
    return Status::ok_status();
  }

  // ---- the client's state across tasks (ClientOptions::state_dir; client_state.h) -------
  Status load_state() {
    state_loaded = true;
    if (opt.state_dir.empty()) return Status::ok_status();
    Result<ClientKeptState> s = load_client_state(opt.state_dir, stats.client_id, layout);
    if (!s.ok()) {
      if (s.error().code() == StatusCode::kInvalidArgument) return s.error();
      if (s.error().code() != StatusCode::kNotFound) log(s.error().message() + ", starting afresh");
      return Status::ok_status();
    }
    kept = std::move(*s);
    log("restored client state from " + opt.state_dir + " (" + kept.describe() + ")");
    return Status::ok_status();
  }

  Status save_state() const {
    return save_client_state(opt.state_dir, stats.client_id, layout, kept);
  }

  // One record streamed by Download (a codec payload of `chain` when set, decoded frame by
  // frame as it arrives), or with `bytes` the stream's bytes as they are (at most `max`).
  // DataLoss for a malformed stream.
  Result<ArrayRecord> download(int64_t task_id, pb::DownloadRequest::What what,
                               std::shared_ptr<const codec::Chain> chain = nullptr,
                               std::string* bytes = nullptr, int64_t max = 0) {
    const char* what_name = what == pb::DownloadRequest::MODEL ? "MODEL" : "SERVER_STATE";
    const std::string where =
        strformat("Download %s of task %lld", what_name, static_cast<long long>(task_id));
    grpc::ClientContext ctx;
    prepare(&ctx, opt.stream_timeout_s);
    pb::DownloadRequest req;
    req.set_task_id(task_id);
    req.set_what(what);
    std::unique_ptr<grpc::ClientReader<pb::TensorChunk>> reader = stub->Download(&ctx, req);
    ArrayRecord rec = bytes ? ArrayRecord() : ArrayRecord(layout);
    std::optional<codec::StreamDecoder> decoder;
    std::optional<wire::ChunkAssembler> assembler;
    if (bytes) {
      assembler.emplace(where, max, [&](std::string_view b) {
        bytes->append(b);
        return Status::ok_status();
      });
      assembler->skip_stream_crc();  // payloads check themselves
    } else if (chain) {
      decoder.emplace(chain, codec::segment_offsets(*layout), where);
      assembler.emplace(where, chain->max_payload_bytes(codec::segment_offsets(*layout)),
                        [&](std::string_view b) {
                          return decoder->feed(b, [&](int64_t first, std::span<const float> v) {
                            std::copy(v.begin(), v.end(), rec.data() + first);
                            return Status::ok_status();
                          });
                        });
      assembler->skip_stream_crc();  // the payload checks itself
    } else {
      assembler.emplace(where, std::vector<wire::ChunkAssembler::Buffer>{
                                   {reinterpret_cast<char*>(rec.data()), rec.num_bytes(), {}}});
    }
    Status error;
    pb::TensorChunk ch;
    while (reader->Read(&ch)) {
      if (!error.ok()) continue;  // draining after a cancel
      error = assembler->add(ch);
      if (!error.ok()) ctx.TryCancel();
    }
    grpc::Status st = reader->Finish();
    if (!error.ok()) return Status::data_loss(error.message());
    if (!st.ok()) return from_grpc(st, where);
    if (Status s = assembler->finish(); !s.ok()) return Status::data_loss(s.message());
    if (decoder) {
      if (Status s = decoder->finish(); !s.ok()) return Status::data_loss(s.message());
    }
    return rec;
  }

  // Streams header + [delta | state_delta]. Returns the RPC's Status (converted) and fills
  // `reply`.
  Status push(const pb::UpdateHeader& header, std::vector<wire::ByteRange> parts,
              pb::PushReply* reply) {
    // A codec payload alone checks itself; a raw delta or a state delta gets the stream CRC.
    const wire::StreamCrc crc = !header.codec().empty() && !header.has_state_delta()
                                    ? wire::StreamCrc::omit()
                                    : wire::StreamCrc{};
    grpc::ClientContext ctx;
    prepare(&ctx, opt.stream_timeout_s);
    std::unique_ptr<grpc::ClientWriter<pb::UpdateChunk>> writer = stub->PushUpdate(&ctx, reply);
    pb::UpdateChunk msg;
    *msg.mutable_header() = header;
    pb::UpdateChunk c;
    const auto emit = [&](pb::TensorChunk& ch) {
      c.mutable_chunk()->Swap(&ch);  // no copy of the chunk's data
      return writer->Write(c);
    };
    bool ok = writer->Write(msg) && wire::for_each_chunk(parts, chunk_bytes, emit, crc);
    // A failed Write means the server already closed the stream (e.g. it rejected the
    // header); Finish returns its status.
    if (ok) writer->WritesDone();
    grpc::Status st = writer->Finish();
    return from_grpc(
        st, strformat("PushUpdate of task %lld", static_cast<long long>(header.task_id())));
  }

  // Heartbeats while `done` is false; sets `unwanted` when the server gave up on the task.
  void heartbeat_loop(int64_t task_id, const std::atomic<bool>* done, std::atomic<bool>* unwanted,
                      std::mutex* m, std::condition_variable* c) {
    std::unique_lock<std::mutex> lk(*m);
    const auto period = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(heartbeat_s));
    while (!c->wait_for(lk, period, [&] {
      return done->load();
    })) {
      lk.unlock();
      grpc::ClientContext ctx;
      prepare(&ctx, std::min(opt.rpc_timeout_s, std::max(1.0, 2 * heartbeat_s)));
      pb::HeartbeatRequest req;
      req.set_task_id(task_id);
      pb::HeartbeatReply rep;
      grpc::Status st = stub->Heartbeat(&ctx, req, &rep);
      if (st.ok() && !rep.task_still_wanted()) unwanted->store(true);
      if (st.ok() && rep.run_over()) run_over.store(true);
      if (unwanted->load() || run_over.load() || stop_requested()) stop_training.store(true);
      // A failed heartbeat is not acted on here: the push after training finds out whether
      // the connection is really gone.
      lk.lock();
    }
  }

  // The task's model: whole (through the model chain), or under delta downlink the changes
  // to the model this client kept (client_downlink.h).
  Result<ArrayRecord> download_model(const pb::PullTaskReply& t,
                                     std::shared_ptr<const codec::Chain> chain) {
    std::string payloads;
    int64_t total = 0;
    for (int64_t b : t.model_delta_bytes()) total += std::max<int64_t>(0, b);
    if (!t.has_model_delta_from()) {
      COHORT_ASSIGN_OR_RETURN(ArrayRecord whole,
                              download(t.task_id(), pb::DownloadRequest::MODEL, chain));
      return held.receive(t, payloads, std::move(whole));
    }
    if (total > 0) {
      COHORT_RETURN_IF_ERROR(
          download(t.task_id(), pb::DownloadRequest::MODEL, nullptr, &payloads, total).status());
    }
    return held.receive(t, payloads, ArrayRecord());
  }

  // Downloads, trains and pushes one task. Returns non-OK only for what ends the session
  // (Unavailable: reconnect) or the run (anything else).
  Status run_task(const pb::PullTaskReply& t) {
    stats.tasks += 1;
    const int64_t task_id = t.task_id();
    auto abandon = [&](const Status& why) -> Status {
      stats.abandoned += 1;
      log(strformat("task %lld abandoned: %s", static_cast<long long>(task_id),
                    why.to_string().c_str()));
      return Status::ok_status();
    };

    // A failed download ends the session when the connection or the token is the problem,
    // else only this task.
    auto download_failed = [&](const Status& why) -> Status {
      if (why.code() == StatusCode::kUnavailable || why.code() == StatusCode::kUnauthenticated) {
        stats.abandoned += 1;
        return why;
      }
      return abandon(why);
    };
    Result<std::shared_ptr<const codec::Chain>> model_chain = chain_of(t.model_codec());
    if (!model_chain.ok()) return model_chain.error();
    Result<std::shared_ptr<const codec::Chain>> update_chain = chain_of(t.update_codec());
    if (!update_chain.ok()) return update_chain.error();
    Result<ArrayRecord> model = download_model(t, *model_chain);
    if (!model.ok()) return download_failed(model.error());
    Task task;
    task.client = stats.client_id;
    task.version = t.version();
    task.local_steps = t.local_steps() > 0 ? t.local_steps() : opt.training.steps_for(shard.size());
    task.config = wire::from_pb(t.config());
    task.model = std::make_shared<const ArrayRecord>(std::move(*model));
    if (opt.relay) {
      COHORT_RETURN_IF_ERROR(relay_refusal(t, task.config));
      set_task_local_steps_default(task.config, t.local_steps_default());
    }
    if (t.has_server_state()) {
      Result<ArrayRecord> state = download(task_id, pb::DownloadRequest::SERVER_STATE);
      if (!state.ok()) return download_failed(state.error());
      task.server_state = std::make_shared<const ArrayRecord>(std::move(*state));
    }

    Result<ArrayRecord> correction = client_state_correction(task, kept.client_state);
    if (!correction.ok()) {
      return correction.error().with_context(
          strformat("task %lld", static_cast<long long>(task_id)));
    }
    const uint64_t seed = Rng::mix_seed(opt.seed, "task", static_cast<uint64_t>(stats.client_id),
                                        static_cast<uint64_t>(task_id));

    log(strformat("task %lld: version %lld, training %lld steps", static_cast<long long>(task_id),
                  static_cast<long long>(t.version()), static_cast<long long>(task.local_steps)));
    std::atomic<bool> done{false};
    std::atomic<bool> unwanted{false};
    stop_training.store(run_over.load() || stop_requested());
    std::mutex hb_mu;
    std::condition_variable hb_cv;
    std::thread hb([&] {
      heartbeat_loop(task_id, &done, &unwanted, &hb_mu, &hb_cv);
    });
    Result<TrainResult> trained = Status::internal("not trained");
    COHORT_ASSIGN_OR_RETURN(const bool keep_opt, task_keep_optimizer_state(task.config));
    ArrayRecord next_opt = keep_opt ? kept.optimizer_state.clone() : ArrayRecord();
    trainer->set_optimizer_state(keep_opt ? &next_opt : nullptr);
    // Streaming DiLoCo: the worker trains its own model and returns one fragment's delta.
    COHORT_ASSIGN_OR_RETURN(const std::optional<TaskStreaming> stream,
                            task_streaming(task.config));
    KeptModel next_kept = stream ? kept.kept_model.clone() : KeptModel();
    try {
      trained = stream ? train_streaming(*trainer, task, *stream, shard, opt.training, seed,
                                         next_kept)
                       : trainer->train(*task.model, shard, task.local_steps, opt.training,
                                        task.config, seed,
                                        correction->empty() ? nullptr : &*correction);
    } catch (const std::exception& e) {
      trained = Status::internal(std::string("training threw: ") + e.what());
    }
    trainer->set_optimizer_state(nullptr);
    if (keep_opt && trained.ok()) kept.optimizer_state = std::move(next_opt);
    if (stream && trained.ok()) kept.kept_model = std::move(next_kept);
    {
      std::lock_guard<std::mutex> lk(hb_mu);
      done.store(true);
    }
    hb_cv.notify_all();
    hb.join();
    if (run_over.load()) {  // training was cancelled, or finished after the run ended
      stats.abandoned += 1;
      log(strformat("task %lld: the run ended while it trained; not pushing",
                    static_cast<long long>(task_id)));
      return Status::ok_status();
    }
    // Training stopped because the server gave up on the task, or could not be done now
    // (Aborted: an aggregator's clients returned nothing): abandon it and pull the next.
    if (!trained.ok() && (unwanted.load() || trained.error().code() == StatusCode::kAborted)) {
      return abandon(trained.error());
    }
    if (!trained.ok()) {
      return trained.error().with_context(
          strformat("training task %lld", static_cast<long long>(task_id)));
    }
    TrainResult& tr = *trained;
    COHORT_RETURN_IF_ERROR(task.model->check_same_layout(tr.params, "trainer output"));
    // delta = start - end, in place in the result buffer.
    if (!stream) ops::sub(task.model->flat(), tr.params.flat(), tr.params.flat());
    ArrayRecord& delta = tr.params;
    if (opt.attack.kind != "none" && opt.attack.kind != "label_flip") {
      COHORT_ASSIGN_OR_RETURN(attack::Kind kind, attack::parse_kind(opt.attack.kind));
      COHORT_RETURN_IF_ERROR(attack::apply_local(
          opt.attack, kind, delta.flat(),
          Rng::mix_seed(opt.seed, "attack", static_cast<uint64_t>(task_id))));
    }
    // Client-side DP: clip (and noise) before the update leaves; the noise key is this
    // process's own, drawn from the operating system.
    static const privacy::NoiseSeed dp_seed = privacy::random_seed();
    COHORT_RETURN_IF_ERROR(runtime::privatize_update(delta.flat(), task.config, dp_seed,
                                                     static_cast<uint64_t>(task_id), &tr.metrics)
                               .with_context("client-side differential privacy"));
    COHORT_ASSIGN_OR_RETURN(ClientStateUpdate su,
                            update_client_state(task, kept.client_state, delta, tr.steps, opt.training));
    if (unwanted.load()) {
      return abandon(Status::deadline_exceeded("the server gave up on it while it trained"));
    }

    pb::UpdateHeader h;
    h.set_task_id(task_id);
    h.set_base_version(t.version());
    h.set_num_examples(tr.num_examples > 0 ? tr.num_examples : shard.size());
    h.set_local_steps(tr.steps);
    for (const auto& [k, v] : tr.metrics) (*h.mutable_metrics())[k] = v;
    wire::to_pb(*layout, h.mutable_layout());
    h.set_has_state_delta(!su.state_delta.empty());
    if (t.secagg()) return aggregate_securely(t, h, delta, tr.metrics);
    std::vector<wire::ByteRange> parts = {wire::bytes_of(delta)};
    // Compression: the delta travels as a payload of the task's update chain.
    std::string payload;
    std::vector<float> next_residual;
    const std::shared_ptr<const codec::Chain>& up = *update_chain;
    if (up) {
      if (opt.fault == InjectedFault::kNaN && fault_pending) {
        delta.flat()[0] = std::numeric_limits<float>::quiet_NaN();  // refused by the encoder
        fault_pending = false;
      }
      next_residual = kept.ef_residual;
      Result<std::string> enc =
          up->encode(delta.flat(), codec::segment_offsets(*layout), t.codec_seed(),
                     up->error_feedback() ? &next_residual : nullptr);
      if (!enc.ok()) {
        return enc.error().with_context(strformat("encoding task %lld's update",
                                                  static_cast<long long>(task_id)));
      }
      payload = std::move(*enc);
      h.set_codec(up->spec());
      h.set_delta_bytes(static_cast<int64_t>(payload.size()));
      parts[0] = {payload.data(), static_cast<int64_t>(payload.size())};
    }
    if (!su.state_delta.empty()) parts.push_back(wire::bytes_of(su.state_delta));
    if (fault_pending && !up) {
      fault_pending = false;
      if (const char* name = inject_fault(opt.fault, *layout, delta.flat(), &h, &parts[0])) {
        log(strformat("task %lld: injecting fault '%s' (test only)",
                      static_cast<long long>(task_id), name));
      }
    }

    pb::PushReply reply;
    Status pushed = push(h, std::move(parts), &reply);
    const auto train_loss = tr.metrics.count("train_loss") ? tr.metrics.at("train_loss") : NAN;
    // The upload reached the server (it answered): what it carried is no longer owed.
    const bool reached = pushed.ok() || (pushed.code() != StatusCode::kUnavailable &&
                                         pushed.code() != StatusCode::kUnauthenticated);
    if (up && up->error_feedback() && reached) kept.ef_residual = std::move(next_residual);
    if (reached && pushed.ok() && reply.accepted() && !su.next_state.empty()) {
      kept.client_state = std::move(su.next_state);
    }
    if (reached) {
      if (Status st = save_state(); !st.ok()) log("could not save the client state: " + st.to_string());
    }
    if (pushed.ok() && reply.accepted()) {
      stats.accepted += 1;
      log(strformat("task %lld: version %lld, %lld steps, train_loss %.4f, accepted",
                    static_cast<long long>(task_id), static_cast<long long>(t.version()),
                    static_cast<long long>(tr.steps), train_loss));
      return Status::ok_status();
    }
    if (pushed.code() == StatusCode::kUnavailable) {
      stats.abandoned += 1;
      return pushed;
    }
    if (pushed.code() == StatusCode::kUnauthenticated) return pushed;
    stats.rejected += 1;
    const std::string reason = pushed.ok() ? reply.reason() : pushed.to_string();
    log(strformat("task %lld: version %lld, update rejected by the server: %s",
                  static_cast<long long>(task_id), static_cast<long long>(t.version()),
                  reason.c_str()));
    return Status::ok_status();
  }

  // The task asked for secure aggregation: the update stays here, only masked words leave.
  Status aggregate_securely(const pb::PullTaskReply& t, const pb::UpdateHeader& h,
                            const ArrayRecord& delta, const MetricRecord& metrics) {
    SecAggParticipant sp;
    sp.id = stats.client_id;
    sp.task_id = t.task_id();
    sp.update.assign(delta.flat().begin(), delta.flat().end());
    auto bit = metrics.find(runtime::kDpUnclippedMetric);
    sp.unclipped = bit == metrics.end() || bit->second >= 0.5;
    Result<SecAggOutcome> o = push_withheld(
        *stub, [&](grpc::ClientContext* c) { prepare(c, opt.rpc_timeout_s); }, h, std::move(sp),
        [&] { return stop_requested(); });
    if (!o.ok()) {
      stats.abandoned += 1;
      return o.error();
    }
    (o->included ? stats.accepted : stats.rejected) += 1;
    log(strformat("task %lld: version %lld, secure aggregation: %s", static_cast<long long>(t.task_id()),
                  static_cast<long long>(t.version()),
                  o->included ? "in the released sum" : ("not aggregated: " + o->reason).c_str()));
    return Status::ok_status();
  }

  void log_run_over() {
    log(strformat("server says the run is over: %lld tasks, %lld accepted, %lld rejected",
                  static_cast<long long>(stats.tasks), static_cast<long long>(stats.accepted),
                  static_cast<long long>(stats.rejected)));
  }

  // Register, then pull tasks until DONE (OK) or an error.
  Status session() {
    connect();
    COHORT_RETURN_IF_ERROR(do_register());
    if (!state_loaded) COHORT_RETURN_IF_ERROR(load_state());
    while (true) {
      if (stop_requested()) return Status::cancelled("client stopped");
      grpc::ClientContext ctx;
      prepare(&ctx, opt.rpc_timeout_s);
      pb::PullTaskReply rep;
      pb::PullTaskRequest req;
      held.describe(&req);
      grpc::Status st = stub->PullTask(&ctx, req, &rep);
      if (!st.ok()) return from_grpc(st, "PullTask");
      switch (rep.kind()) {
        case pb::PullTaskReply::DONE:
          log_run_over();
          return Status::ok_status();
        case pb::PullTaskReply::TRAIN:
          COHORT_RETURN_IF_ERROR(run_task(rep));
          if (run_over.load()) {
            log_run_over();
            return Status::ok_status();
          }
          break;
        case pb::PullTaskReply::WAIT:
        default:
          stats.waits += 1;
          if (!sleep_for(std::clamp(rep.retry_after_s(), 0.01, 60.0))) {
            return Status::cancelled("client stopped");
          }
          break;
      }
    }
  }

  Result<ClientStats> run() {
    int attempt = 0;
    // Start of the current run of failed attempts: a session that registered starts a new
    // one (so a long training task before a failed push does not count as time offline).
    std::optional<SteadyClock::time_point> down_since;
    while (true) {
      const int64_t reconnects_before = stats.reconnects;
      const bool was_registered = registered_once;
      Status s = session();
      if (s.ok()) return stats;
      // A server over one of its limits (call rate, streams, upload memory) answers
      // RESOURCE_EXHAUSTED: back off like after a lost connection, then try again.
      const bool busy = s.code() == StatusCode::kResourceExhausted;
      if (s.code() != StatusCode::kUnavailable && !busy) return s;
      const bool registered =
          stats.reconnects != reconnects_before || registered_once != was_registered;
      if (registered || !down_since) {
        down_since = SteadyClock::now();
        attempt = 0;
      }
      const double disconnected = seconds_since(*down_since);
      if (opt.max_disconnected_s > 0 && disconnected > opt.max_disconnected_s) {
        return Status::unavailable(strformat("cannot reach server %s for %.0f s (limit %.0f s): %s",
                                             opt.server.c_str(), disconnected,
                                             opt.max_disconnected_s, s.message().c_str()));
      }
      const double base =
          std::min(opt.backoff_max_s, opt.backoff_initial_s * std::pow(2.0, std::min(attempt, 30)));
      const double delay = base * rng.uniform(1.0 - opt.backoff_jitter, 1.0);
      ++attempt;
      log(strformat("%s (%s); reconnecting in %.2f s", busy ? "server busy" : "connection lost",
                    s.message().c_str(), delay));
      if (!sleep_for(delay)) return Status::cancelled("client stopped");
    }
  }
};

Result<std::unique_ptr<Client>> Client::create(ClientOptions options,
                                               std::unique_ptr<Trainer> trainer, Shard shard) {
  if (options.server.empty()) return Status::invalid_argument("client: --server is empty");
  if (options.insecure && !options.ca_file.empty()) {
    return Status::invalid_argument("client: give either a CA file (--ca) or --insecure, not both");
  }
  if (!options.insecure && options.ca_file.empty()) {
    return Status::invalid_argument(
        "client: TLS needs the CA certificate that signed the server's (--ca CA.pem); pass "
        "--insecure explicitly to connect without TLS");
  }
  if (!(options.backoff_initial_s > 0) || !(options.backoff_max_s >= options.backoff_initial_s)) {
    return Status::invalid_argument(
        strformat("client: backoff must satisfy 0 < initial <= max, got initial %g s, max %g s",
                  options.backoff_initial_s, options.backoff_max_s));
  }
  if (!(options.backoff_jitter >= 0 && options.backoff_jitter < 1)) {
    return Status::invalid_argument(
        strformat("client: backoff_jitter must be in [0, 1), got %g", options.backoff_jitter));
  }
  if (!(options.rpc_timeout_s > 0) || !(options.stream_timeout_s > 0)) {
    return Status::invalid_argument("client: rpc_timeout_s and stream_timeout_s must be > 0");
  }
  if (trainer == nullptr) return Status::invalid_argument("client: no trainer");
  if (shard.data == nullptr || shard.size() == 0) {
    return Status::invalid_argument("client: the local data shard is empty");
  }
  COHORT_RETURN_IF_ERROR(options.training.validate());
  auto impl = std::make_unique<Impl>();
  if (!options.insecure) {
    std::ifstream in(options.ca_file, std::ios::binary);
    if (!in) return Status::not_found("client: cannot read CA file '" + options.ca_file + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    impl->ca_pem = ss.str();
    if (impl->ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return Status::invalid_argument("client: CA file '" + options.ca_file +
                                      "' holds no PEM certificate");
    }
  }
  COHORT_ASSIGN_OR_RETURN(ArrayRecord init, trainer->init_params(options.seed));
  impl->layout = init.layout();
  impl->rng = Rng::derive(options.seed, "client-backoff");
  impl->fault_pending = options.fault != InjectedFault::kNone;
  impl->opt = std::move(options);
  impl->trainer = std::move(trainer);
  impl->trainer->set_cancel_flag(&impl->stop_training);
  impl->shard = std::move(shard);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<ClientStats> Client::run() { return impl_->run(); }

void Client::stop() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping.store(true);
    impl_->stop_training.store(true);
  }
  impl_->cv.notify_all();
}

}  // namespace cohort::deploy
