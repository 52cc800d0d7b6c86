#include "deploy/fleet_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/runtime/admission.h"
#include "deploy/crash_points.h"
#include "deploy/spool.h"
#include "deploy/wire.h"

namespace cohort::deploy {

namespace pb = ::cohort::v1;
using wire::to_grpc;

namespace {

// max_upload_bytes, or its default: 8x the model, at least 256 MiB.
int64_t upload_budget(const ServerOptions& o, const ArrayLayout& layout) {
  if (o.max_upload_bytes > 0) return o.max_upload_bytes;
  return std::max<int64_t>(int64_t{256} << 20, 8 * layout.num_bytes());
}

}  // namespace

FleetService::FleetService(const ServerOptions& options, const TokenTable& tokens, ServerLoop& loop,
                           std::shared_ptr<const ArrayLayout> layout)
    : opts_(options),
      tokens_(tokens),
      loop_(loop),
      layout_(std::move(layout)),
      watchdog_(options),
      client_limits_(options),
      uploads_(upload_budget(options, *layout_)) {
  wire::to_pb(*layout_, &layout_pb_);
  // Validated with the server's options; an invalid setting cannot reach here.
  if (Result<runtime::Compression> c = runtime::Compression::create(options.compression); c.ok()) {
    compression_ = *c;
  }
  offsets_ = codec::segment_offsets(*layout_);
  if (compression_.uplink) max_update_payload_ = compression_.uplink->max_payload_bytes(offsets_);
  streamed_ = loop_.core.strategy().accepts_streamed_delta();
  if (compression_.downlink_delta) {
    downlink_deltas_ = std::make_unique<runtime::DownlinkDeltas>(
        compression_.downlink, compression_.downlink_history, opts_.seed);
  }
}

uint32_t FleetService::model_crc(ModelVersion version, const wire::ByteRange& bytes) {
  std::lock_guard<std::mutex> lk(downlink_mu_);
  auto it = model_crc_.find(version);
  if (it != model_crc_.end()) return it->second;
  const uint32_t crc = wire::crc32_of({&bytes, 1});
  model_crc_[version] = crc;
  while (model_crc_.size() > 3) model_crc_.erase(model_crc_.begin());
  return crc;
}

Result<std::shared_ptr<const std::string>> FleetService::downlink_payload(
    ModelVersion version, const std::shared_ptr<const ArrayRecord>& model) {
  // Encoded once per version; concurrent downloads of a new version wait for the first.
  std::lock_guard<std::mutex> lk(downlink_mu_);
  auto it = downlink_cache_.find(version);
  if (it != downlink_cache_.end()) return it->second;
  COHORT_ASSIGN_OR_RETURN(
      runtime::DownlinkModel m,
      runtime::encode_model(*compression_.downlink, *model,
                            runtime::downlink_seed(opts_.seed, version), /*decode=*/false));
  downlink_cache_[version] = m.payload;
  while (downlink_cache_.size() > 3) downlink_cache_.erase(downlink_cache_.begin());
  return m.payload;
}

Status FleetService::plan_downlink(ClientId c, int64_t task_id, ModelVersion version,
                                   const std::shared_ptr<const ArrayRecord>& model,
                                   const pb::PullTaskRequest& req, pb::PullTaskReply* reply) {
  std::optional<runtime::DownlinkDeltas::Held> held;
  if (req.has_held_version()) held = runtime::DownlinkDeltas::Held{req.held_version(), req.held_hash()};
  std::lock_guard<std::mutex> lk(downlink_mu_);
  Result<runtime::DownlinkDeltas::Start> start = downlink_deltas_->start(version, model, held);
  if (!start.ok()) return start.error().with_context("delta downlink of version " + std::to_string(version));
  reply->set_model_delta(start->holds.has_value());
  reply->set_model_hash(start->holds ? start->holds->hash : start->model->hash());
  if (start->plan.full) {
    reply->clear_model_codec();  // the whole model, raw
  } else {
    reply->set_model_delta_from(held->version);
    for (const auto& p : start->plan.payloads) reply->add_model_delta_bytes(static_cast<int64_t>(p->size()));
  }
  downlink_starts_[c] = {task_id, *std::move(start)};
  return Status();
}

Result<ClientId> FleetService::caller(grpc::ServerContextBase* ctx) {
  COHORT_ASSIGN_OR_RETURN(ClientId c, tokens_.authenticate(*ctx));
  Status rate = client_limits_.admit_call(c);
  if (!rate.ok()) {
    log_line(rate.message());
    return rate;
  }
  return c;
}

grpc::Status FleetService::Register(grpc::ServerContext* ctx, const pb::RegisterRequest* req,
                                    pb::RegisterReply* reply) {
  Result<ClientId> c = caller(ctx);
  if (!c.ok()) return to_grpc(c.error());
  if (req->num_examples() < 0) {
    return to_grpc(Status::invalid_argument("num_examples must be >= 0, got " +
                                            std::to_string(req->num_examples())));
  }
  std::lock_guard<std::mutex> lk(loop_.mu);
  loop_.touch(*c);
  loop_.core.add_client(*c, req->num_examples());
  // A client registering again restarted: its task is gone with it.
  if (const runtime::TaskRecord* t = loop_.core.task_of(*c)) {
    const ClientId id = *c;
    std::optional<ModelVersion> v = loop_.core.take_lost(t->id, "reconnected");
    if (v)
      loop_.post([this, id, version = *v] {
        loop_.core.notify_lost(id, version);
      });
  }
  loop_.core.set_available(*c, false);
  reply->set_client_id(*c);
  *reply->mutable_layout() = layout_pb_;
  reply->set_chunk_bytes(opts_.chunk_bytes);
  reply->set_heartbeat_interval_s(opts_.heartbeat_s());
  return grpc::Status::OK;
}

grpc::Status FleetService::PullTask(grpc::ServerContext* ctx, const pb::PullTaskRequest* req,
                                    pb::PullTaskReply* reply) {
  Result<ClientId> auth = caller(ctx);
  if (!auth.ok()) return to_grpc(auth.error());
  const ClientId c = *auth;
  std::unique_lock<std::mutex> lk(loop_.mu);
  runtime::Runtime& core = loop_.core;
  loop_.touch(c);
  if (!core.has_client(c)) core.add_client(c, 0);
  if (core.task_of(c) == nullptr && !loop_.done && !core.available(c)) {
    core.set_available(c, true);
    loop_.post([this, c] {
      loop_.core.offer(c);
    });
  }
  // A task is handed out once its model version is on disk (never reissued after a crash).
  auto ready = [&]() -> const runtime::TaskRecord* {
    const runtime::TaskRecord* t = core.task_of(c);
    return t != nullptr && loop_.version_durable(t->task.version) ? t : nullptr;
  };
  loop_.task_cv.wait_for(lk, std::chrono::duration<double>(opts_.pull_wait_s), [&] {
    return ready() != nullptr || loop_.done || loop_.stop || ctx->IsCancelled();
  });
  const runtime::TaskRecord* t = ready();
  if (loop_.done || loop_.stop) {
    reply->set_kind(pb::PullTaskReply::DONE);
    loop_.told_done(c);
  } else if (t != nullptr) {
    reply->set_kind(pb::PullTaskReply::TRAIN);
    reply->set_task_id(t->id);
    reply->set_version(t->task.version);
    reply->set_local_steps(t->task.local_steps);
    reply->set_local_steps_default(t->task.local_steps == core.default_local_steps(c));
    wire::to_pb(t->task.config, reply->mutable_config());
    if (opts_.task_timeout_s > 0) {
      reply->set_deadline_s(std::max(0.0, t->dispatched_at + opts_.task_timeout_s - loop_.now()));
    }
    reply->set_has_server_state(t->task.server_state != nullptr);
    reply->set_secagg(loop_.secagg != nullptr);
    if (compression_.downlink) reply->set_model_codec(compression_.downlink->spec());
    if (compression_.uplink) {
      reply->set_update_codec(compression_.uplink->spec());
      reply->set_codec_seed(runtime::uplink_seed(opts_.seed, c, t->id));
    }
  } else {
    reply->set_kind(pb::PullTaskReply::WAIT);
    reply->set_retry_after_s(0.2);
  }
  loop_.touch(c);
  if (reply->kind() == pb::PullTaskReply::TRAIN && downlink_deltas_) {
    const std::shared_ptr<const ArrayRecord> model = t->task.model;
    lk.unlock();  // encoding a new version's delta takes a while: not under the loop's lock
    Status s = plan_downlink(c, reply->task_id(), reply->version(), model, *req, reply);
    if (!s.ok()) return to_grpc(s);
  }
  return grpc::Status::OK;
}

Result<FleetService::DownloadPlan> FleetService::plan_download(ClientId c,
                                                               const pb::DownloadRequest& req) {
  struct Held {  // what the plan's ranges point into
    std::shared_ptr<const ArrayRecord> rec;
    std::shared_ptr<const std::string> payload;
    runtime::DownlinkDeltas::Start planned;  // delta downlink: what PullTask planned
  };
  auto held = std::make_shared<Held>();
  ModelVersion version = 0;
  {
    std::lock_guard<std::mutex> lk(loop_.mu);
    loop_.touch(c);
    const runtime::TaskRecord* t = loop_.core.task_of(c);
    if (t == nullptr || t->id != req.task_id()) {
      return Status::failed_precondition("task " + std::to_string(req.task_id()) +
                                         " is not client " + std::to_string(c) +
                                         "'s current task (stale or unknown); pull a new task");
    }
    if (req.what() == pb::DownloadRequest::MODEL) {
      held->rec = t->task.model;
      version = t->task.version;
    } else if (req.what() == pb::DownloadRequest::SERVER_STATE) {
      held->rec = t->task.server_state;
      if (!held->rec) return Status::failed_precondition("task has no server state");
    } else {
      return Status::invalid_argument("DownloadRequest.what must be MODEL or SERVER_STATE");
    }
  }
  DownloadPlan plan;
  wire::ByteRange part = wire::bytes_of(*held->rec);
  const runtime::DownlinkDeltas::Start& planned = held->planned;
  if (req.what() == pb::DownloadRequest::MODEL && downlink_deltas_) {
    std::lock_guard<std::mutex> lk(downlink_mu_);
    auto it = downlink_starts_.find(c);
    if (it == downlink_starts_.end() || it->second.first != req.task_id()) {
      return Status::failed_precondition("task " + std::to_string(req.task_id()) +
                                         ": no download planned; pull the task again");
    }
    held->planned = it->second.second;
    if (planned.plan.full) part = wire::bytes_of(*planned.model);
    for (const auto& p : planned.plan.payloads) {
      plan.parts.push_back({p->data(), static_cast<int64_t>(p->size())});
    }
    plan.crc = wire::StreamCrc::omit();  // payloads check themselves, the whole model its hash
  } else if (req.what() == pb::DownloadRequest::MODEL && compression_.downlink) {
    Result<std::shared_ptr<const std::string>> p = downlink_payload(version, held->rec);
    if (!p.ok()) return p.error().with_context("encoding model version " + std::to_string(version));
    held->payload = *p;
    part = {held->payload->data(), static_cast<int64_t>(held->payload->size())};
    plan.crc = wire::StreamCrc::omit();  // the payload checks itself
  } else if (req.what() == pb::DownloadRequest::MODEL) {
    plan.crc =
        wire::StreamCrc::given(model_crc(version, part));  // once per version, not per client
  }
  // Under delta downlink a client that already holds the model is sent nothing.
  const bool nothing = planned.model != nullptr && !planned.plan.full && plan.parts.empty();
  if (plan.parts.empty() && !nothing) plan.parts.push_back(part);
  plan.keep = std::move(held);
  return plan;
}

void FleetService::download_sent(ClientId c, const pb::DownloadRequest& req, int64_t bytes) {
  if (downlink_deltas_ && req.what() == pb::DownloadRequest::MODEL) {
    std::lock_guard<std::mutex> lk(downlink_mu_);
    auto it = downlink_starts_.find(c);
    if (it != downlink_starts_.end() && it->second.first == req.task_id())
      downlink_starts_.erase(it);
  }
  std::lock_guard<std::mutex> lk(loop_.mu);
  loop_.core.add_bytes_down(bytes);
}

void FleetService::reject_push(ClientId c, int64_t task_id, const Status& why) {
  log_line("rejected update from client " + std::to_string(c) + ": " + why.to_string());
  std::lock_guard<std::mutex> lk(loop_.mu);
  loop_.core.count_rejected(c, why);
  if (task_id == 0) return;
  std::optional<ModelVersion> v = loop_.core.take_lost(task_id, "rejected");
  if (v)
    loop_.post([this, c, version = *v] {
      loop_.core.notify_lost(c, version);
    });
}

bool FleetService::acquire_push_slot(grpc::ServerContext* ctx, StreamWatchdog::Stream* watch) {
  std::unique_lock<std::mutex> lk(push_mu_);
  while (pushes_active_ >= opts_.max_concurrent_pushes && !ctx->IsCancelled()) {
    push_cv_.wait_for(lk, std::chrono::milliseconds(100));
    watch->excuse();  // queued behind other uploads: not the client's stall
  }
  if (ctx->IsCancelled()) return false;
  ++pushes_active_;
  return true;
}

void FleetService::release_push_slot() {
  std::lock_guard<std::mutex> lk(push_mu_);
  --pushes_active_;
  push_cv_.notify_one();
}

grpc::Status FleetService::PushUpdate(grpc::ServerContext* ctx,
                                      grpc::ServerReader<pb::UpdateChunk>* reader,
                                      pb::PushReply* reply) {
  Result<ClientId> auth = caller(ctx);
  if (!auth.ok()) return to_grpc(auth.error());
  const ClientId c = *auth;
  int64_t task_id = 0;
  auto reject = [&](const Status& s) {
    reject_push(c, task_id, s);
    reply->set_accepted(false);
    reply->set_reason(s.to_string());
    return to_grpc(s);
  };
  Result<std::unique_ptr<ClientLimits::Slot>> stream_slot =
      client_limits_.open_stream(c, "PushUpdate");
  if (!stream_slot.ok()) return reject(stream_slot.error());
  std::unique_ptr<StreamWatchdog::Stream> watch = watchdog_.watch(ctx, "PushUpdate");
  // A stream the watchdog cancelled ends like a truncated one: report why instead.
  auto stalled = [&](const Status& s) {
    const std::string why = watch->cancelled_reason();
    return why.empty() ? s : Status::deadline_exceeded(why);
  };
  pb::UpdateChunk msg;
  if (!reader->Read(&msg)) {
    return reject(stalled(
        Status::invalid_argument("empty update stream: the first message must be an UpdateHeader")));
  }
  if (!msg.has_header()) {
    return reject(
        Status::invalid_argument("the first message of an update stream must be an UpdateHeader"));
  }
  const pb::UpdateHeader h = msg.header();
  Task task;
  Status task_status;
  AdmissionContext admission_ctx;
  {
    std::lock_guard<std::mutex> lk(loop_.mu);
    loop_.touch(c);
    admission_ctx = loop_.core.admission_context(c);
    const runtime::TaskRecord* t = loop_.core.task_of(c);
    if (loop_.done) {
      task_status = Status::failed_precondition("the run is over");
    } else if (t == nullptr || t->id != h.task_id()) {
      task_status = Status::failed_precondition("update for task " + std::to_string(h.task_id()) +
                                                ", which is not client " + std::to_string(c) +
                                                "'s current task (stale or unknown)");
    } else {
      task_id = t->id;
      task = t->task;  // shares the model and server state
    }
  }
  if (!task_status.ok()) return reject(task_status);
  if (h.base_version() != task.version) {
    return reject(Status::failed_precondition(
        "update base_version " + std::to_string(h.base_version()) + " but task " +
        std::to_string(task_id) + " was for version " + std::to_string(task.version)));
  }
  if (std::optional<wire::LayoutDifference> d = wire::layout_difference(h.layout(), *layout_)) {
    using Kind = wire::LayoutDifference::Kind;
    std::string what;
    if (d->kind == Kind::kName) {
      what = "array " + std::to_string(d->index) + " is \"" +
             printable(h.layout().arrays(d->index).name(), 100) + "\", the model's is \"" +
             layout_->specs()[static_cast<size_t>(d->index)].name + "\"";
    } else if (d->kind == Kind::kShape) {
      const ArraySpec& want = layout_->specs()[static_cast<size_t>(d->index)];
      what = "array \"" + want.name + "\" has shape " +
             wire::shape_string(h.layout().arrays(d->index).shape()) + ", the model's is " +
             shape_string(want.shape);
    } else {
      what =
          std::to_string(d->got_count) + " arrays, the model has " +
          std::to_string(d->expected_count) +
          (d->got_count < d->expected_count ? " (first missing: \"" + d->expected + "\")"
                                            : " (first extra: \"" + printable(d->got, 100) + "\")");
    }
    return reject(Status::invalid_argument("update layout: " + what));
  }
  const bool state_expected = task.server_state != nullptr;
  if (h.has_state_delta() != state_expected) {
    return reject(Status::invalid_argument(
        std::string("has_state_delta is ") + (h.has_state_delta() ? "true" : "false") +
        " but the task " + (state_expected ? "carries" : "carries no") + " server state"));
  }
  // Under secure aggregation no update travels in the clear: the header alone, then SecAgg.
  if (h.secagg() != (loop_.secagg != nullptr)) {
    return reject(Status::invalid_argument(
        h.secagg() ? std::string("secagg is set but this run does not use secure aggregation")
                   : std::string("this run uses secure aggregation (privacy.secagg): push the "
                                 "update's header alone with secagg set, then take part in the "
                                 "SecAgg rounds; the server takes no update in the clear")));
  }
  if (h.secagg()) {
    if (!h.codec().empty() || h.delta_bytes() != 0) {
      return reject(Status::invalid_argument(
          "a withheld update (secagg) carries no delta: codec must be empty and delta_bytes 0"));
    }
    if (reader->Read(&msg)) {
      return reject(Status::invalid_argument(
          "a withheld update (secagg) is its header alone; the stream has more messages"));
    }
    Update u = withheld_update(c, h);
    AdmissionOutcome outcome;
    if (Status s = loop_.core.admission().admit(u, task, admission_ctx, &outcome); !s.ok()) {
      return reject(s);
    }
    Status held;
    {
      std::lock_guard<std::mutex> lk(loop_.mu);
      held = loop_.secagg->withheld(c, task_id);
      if (held.ok()) {
        auto shared_u = std::make_shared<Update>(std::move(u));
        // Not waited for: the strategy may close the group with this update, and the round
        // then needs this client's SecAgg calls (which tell it the update's fate).
        loop_.post([this, c, task_id, shared_u, outcome] {
          Status r = loop_.core.receive(task_id, std::move(*shared_u), 0, outcome);
          if (!r.ok()) {
            log_line("rejected update from client " + std::to_string(c) + ": " + r.to_string());
            loop_.secagg->refused(c, r.to_string());
          }
        });
      }
    }
    if (!held.ok()) return reject(held);
    reply->set_accepted(true);
    reply->set_reason("held by the client for secure aggregation; SecAgg tells its outcome");
    return grpc::Status::OK;
  }
  // The delta's encoding must be the run's uplink chain (docs/compression.md).
  const std::shared_ptr<const codec::Chain>& chain = compression_.uplink;
  const std::string want_codec = chain ? chain->spec() : std::string();
  if (h.codec() != want_codec) {
    auto name = [](const std::string& c) {
      return c.empty() ? std::string("none (raw float32)") : "'" + printable(c, 100) + "'";
    };
    return reject(Status::invalid_argument("update encoded with " + name(h.codec()) +
                                           ", the server expects " + name(want_codec) +
                                           " (compression.uplink)"));
  }
  int64_t delta_bytes = layout_->num_bytes();
  if (chain) {
    if (h.delta_bytes() <= 0) {
      return reject(Status::invalid_argument("delta_bytes must be > 0 for an encoded update, got " +
                                             std::to_string(h.delta_bytes())));
    }
    if (h.delta_bytes() > max_update_payload_) {
      return reject(Status::resource_exhausted(
          "delta_bytes " + std::to_string(h.delta_bytes()) + " exceeds the largest " +
          chain->spec() + " payload of this model (" + std::to_string(max_update_payload_) + ")"));
    }
    delta_bytes = h.delta_bytes();
  } else if (h.delta_bytes() != 0 && h.delta_bytes() != delta_bytes) {
    return reject(Status::invalid_argument("delta_bytes " + std::to_string(h.delta_bytes()) +
                                           " but a raw float32 delta of this model is " +
                                           std::to_string(delta_bytes)));
  }
  // Streamed: the delta is spooled as received and folded by the strategy once accepted, so
  // memory holds one frame per upload, not one model. Otherwise it is decoded into memory.
  const bool streamed = streamed_ && !state_expected;
  // The buffers are allocated, and the upload budget reserved, at the first chunk: a stream
  // that sends a header and then nothing costs no model-sized memory.
  Update u;
  u.client = c;
  u.base_version = h.base_version();
  const int64_t state_bytes = state_expected ? task.server_state->num_bytes() : 0;
  const int64_t expected = delta_bytes + state_bytes;
  // What the upload holds in memory: the spool's in-memory part, or the decoded buffers (plus,
  // uncounted, one frame of at most 256 KiB while it decodes).
  const int64_t held = streamed ? (delta_bytes <= opts_.spool_memory_bytes ? delta_bytes : 0)
                                : layout_->num_bytes() + state_bytes;
  std::optional<wire::ChunkAssembler> assembler;
  std::unique_ptr<Spool> spool;
  std::unique_ptr<DeltaDecoder> decoder;
  FrameStats stats;
  struct SlotGuard {
    FleetService* self;
    bool held;
    ~SlotGuard() {
      if (held) self->release_push_slot();
    }
  } slot{this, false};
  struct Reservation {
    UploadBudget* budget;
    int64_t bytes = 0;
    ~Reservation() {
      if (bytes > 0) budget->release(bytes);
    }
  } reservation{&uploads_};
  for (int64_t index = 1; reader->Read(&msg); ++index) {
    watch->progress(static_cast<int64_t>(msg.ByteSizeLong()));
    if (!msg.has_chunk()) {
      return reject(Status::invalid_argument("message " + std::to_string(index) +
                                             " of the update stream is not a TensorChunk "
                                             "(only the first message may be a header)"));
    }
    if (msg.chunk().data().empty() && expected > 0) {
      return reject(Status::invalid_argument("message " + std::to_string(index) +
                                             " of the update stream is an empty chunk"));
    }
    if (!assembler) {
      // A push slot (max_concurrent_pushes) is held from the allocation of the buffer until
      // the strategy is done with it; waiting for one is the server's doing, not a stall.
      if (opts_.max_concurrent_pushes > 0) {
        if (!acquire_push_slot(ctx, watch.get())) {
          return reject(stalled(Status::cancelled("client went away while waiting for a push slot")));
        }
        slot.held = true;
      }
      if (Status s = uploads_.reserve(held); !s.ok()) return reject(s);
      reservation.bytes = held;
      std::vector<wire::ChunkAssembler::Buffer> buffers;
      if (streamed || chain) decoder = std::make_unique<DeltaDecoder>(chain, layout_, "update");
      if (streamed) {
        spool = std::make_unique<Spool>(opts_.resolved_spool_dir(), opts_.spool_memory_bytes,
                                        delta_bytes);
        buffers.push_back({nullptr, delta_bytes, [&](std::string_view b) -> Status {
                             COHORT_RETURN_IF_ERROR(spool->append(b));
                             return decoder->feed(b, [&](int64_t, std::span<const float> v) {
                               stats.add(v);
                               return Status();
                             });
                           }});
      } else {
        u.delta = ArrayRecord(layout_);
        if (chain) {
          buffers.push_back({nullptr, delta_bytes, [&](std::string_view b) {
                               return decoder->feed(b, [&](int64_t first, std::span<const float> v) {
                                 std::copy(v.begin(), v.end(), u.delta.data() + first);
                                 return Status();
                               });
                             }});
        } else {
          buffers.push_back({reinterpret_cast<char*>(u.delta.data()), u.delta.num_bytes(), {}});
        }
      }
      if (state_expected) {
        u.state_delta = ArrayRecord(task.server_state->layout());
        buffers.push_back(
            {reinterpret_cast<char*>(u.state_delta.data()), u.state_delta.num_bytes(), {}});
      }
      assembler.emplace("update stream", std::move(buffers));
      // A codec payload checks itself frame by frame; a raw state delta behind it would not.
      if (chain && !state_expected) assembler->skip_stream_crc();
    }
    if (Status s = assembler->add(msg.chunk()); !s.ok()) return reject(s);
  }
  if (!assembler) {
    return reject(stalled(Status::data_loss("update stream truncated: received 0 of " +
                                            std::to_string(expected) + " bytes")));
  }
  if (Status s = assembler->finish(); !s.ok()) return reject(stalled(s));
  if (decoder) {
    if (Status s = decoder->finish(); !s.ok()) return reject(s);
  }
  if (streamed) {
    u.delta_source = std::make_shared<SpooledDelta>(chain, layout_, std::move(spool), stats);
  }
  watch.reset();  // the stream is complete: what follows is the server's work, not a stall
  u.num_examples = h.num_examples();
  u.local_steps = h.local_steps();
  for (const auto& [k, v] : h.metrics()) u.metrics[k] = v;
  // Admission runs here, on the handler thread, in parallel with other uploads.
  AdmissionOutcome outcome;
  if (Status s = loop_.core.admission().admit(u, task, admission_ctx, &outcome); !s.ok()) {
    return reject(s);
  }
  const int64_t bytes = assembler->expected();
  auto shared_u = std::make_shared<Update>(std::move(u));
  crash_point("received");
  auto seq = std::make_shared<int64_t>(0);
  Status s = loop_.post_and_wait([this, task_id, shared_u, bytes, outcome, seq]() -> Status {
    Status r = loop_.core.receive(task_id, std::move(*shared_u), bytes, outcome);
    *seq = loop_.core.accepted_seq();
    if (r.ok()) crash_point("folded");
    return r;
  });
  if (!s.ok()) {
    log_line("rejected update from client " + std::to_string(c) + ": " + s.to_string());
    reply->set_accepted(false);
    reply->set_reason(s.to_string());
    return to_grpc(s);
  }
  if (loop_.durable()) {
    // Acknowledged only once a crash can no longer lose it.
    std::unique_lock<std::mutex> lk(loop_.mu);
    if (!loop_.wait_durable(lk, *seq)) {
      return to_grpc(Status::unavailable(
          "the server stopped before the update was on disk; it may be lost: push it again "
          "for a new task"));
    }
  }
  crash_point("acked");
  reply->set_accepted(true);
  reply->set_durable(loop_.durable());
  return grpc::Status::OK;
}

Update FleetService::withheld_update(ClientId c, const pb::UpdateHeader& h) const {
  Update u;
  u.client = c;
  u.base_version = h.base_version();
  u.num_examples = h.num_examples();
  u.local_steps = h.local_steps();
  for (const auto& [k, v] : h.metrics()) u.metrics[k] = v;
  // A placeholder of zeros: the privacy stage takes the weight and metrics, the values come
  // from the round.
  if (streamed_) {
    u.delta_source = std::make_shared<WithheldDelta>(layout_->numel());
  } else {
    u.delta = ArrayRecord(layout_);
    ops::fill(u.delta.flat(), 0.0f);
  }
  return u;
}

grpc::Status FleetService::SecAgg(grpc::ServerContext* ctx, const pb::SecAggRequest* req,
                                  pb::SecAggReply* reply) {
  Result<ClientId> c = caller(ctx);
  if (!c.ok()) return to_grpc(c.error());
  if (!loop_.secagg) {
    return to_grpc(Status::failed_precondition("this run does not use secure aggregation"));
  }
  std::unique_lock<std::mutex> lk(loop_.mu);
  loop_.touch(*c);
  Status s = loop_.secagg->handle(*c, req->task_id(), req->message(), lk, reply);
  loop_.touch(*c);
  if (!s.ok()) return to_grpc(s);
  loop_.core.add_bytes_up(static_cast<int64_t>(req->message().size()));
  loop_.core.add_bytes_down(static_cast<int64_t>(reply->message().size()));
  return grpc::Status::OK;
}

grpc::Status FleetService::Heartbeat(grpc::ServerContext* ctx, const pb::HeartbeatRequest* req,
                                     pb::HeartbeatReply* reply) {
  Result<ClientId> c = caller(ctx);
  if (!c.ok()) return to_grpc(c.error());
  std::lock_guard<std::mutex> lk(loop_.mu);
  loop_.touch(*c);
  const runtime::TaskRecord* t = loop_.core.task_of(*c);
  reply->set_task_still_wanted(!loop_.done && req->task_id() != 0 && t != nullptr &&
                               t->id == req->task_id());
  // A client training when the run ended learns it here, not only at its next pull.
  const bool over = loop_.done || loop_.stop;
  reply->set_run_over(over);
  if (over) loop_.told_done(*c);
  return grpc::Status::OK;
}

grpc::Status FleetService::ReportEval(grpc::ServerContext* ctx, const pb::EvalReport* req,
                                      pb::EvalAck*) {
  Result<ClientId> c = caller(ctx);
  if (!c.ok()) return to_grpc(c.error());
  const bool sane = std::isfinite(req->loss()) && req->loss() >= 0 &&
                    std::isfinite(req->accuracy()) && req->accuracy() >= 0 &&
                    req->accuracy() <= 1 && req->num_examples() >= 0 && req->version() >= 0;
  if (!sane) {
    return to_grpc(Status::invalid_argument(
        "EvalReport: loss must be finite and >= 0, accuracy in [0, 1], num_examples and version "
        ">= 0"));
  }
  std::lock_guard<std::mutex> lk(loop_.mu);
  loop_.touch(*c);
  if (req->version() > loop_.core.strategy().version()) {
    return to_grpc(Status::invalid_argument("EvalReport: version " +
                                            std::to_string(req->version()) + " does not exist yet"));
  }
  auto last = last_eval_.find(*c);
  if (last != last_eval_.end() && req->version() <= last->second) {
    return to_grpc(Status::already_exists(
        "EvalReport: client " + std::to_string(*c) + " already reported version " +
        std::to_string(last->second) + "; one report per version, newer versions only"));
  }
  last_eval_[*c] = req->version();
  loop_.core.emit({{"event", "client_eval"},
                   {"client", *c},
                   {"version", req->version()},
                   {"loss", req->loss()},
                   {"accuracy", req->accuracy()},
                   {"num_examples", req->num_examples()}});
  return grpc::Status::OK;
}

}  // namespace cohort::deploy
