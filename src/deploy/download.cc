// Fleet.Download (proto/cohort/v1/fleet.proto): the server streams a task's model (or server
// state, or downlink payload) to a client in TensorChunk messages.
//
// A callback method on raw byte buffers rather than a synchronous one: a synchronous handler
// copies every chunk twice (into the message, then into gRPC's serialized buffer) for every
// client, 2 GB of copying for ten clients of a 100 MB model. Here each chunk is a gRPC buffer
// whose data slice points into the model itself (wire::chunk_buffer), held alive by the
// slice; what is sent is byte for byte a TensorChunk, so clients are unchanged.
//
// The reactor's callbacks run on gRPC's threads one at a time; the checks before the first
// write are those of the other handlers (token, call rate, stream slot, current task).
#include <memory>
#include <string>
#include <vector>

#include "deploy/fleet_service.h"
#include "deploy/server_loop.h"
#include "deploy/wire.h"

namespace cohort::deploy {

namespace pb = ::cohort::v1;

class FleetService::DownloadReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  DownloadReactor(FleetService& service, grpc::CallbackServerContext* ctx,
                  const grpc::ByteBuffer* request)
      : service_(service), ctx_(ctx) {
    Status s = start(request);
    if (!s.ok()) {
      finish(wire::to_grpc(s));
      return;
    }
    next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      stop();
      return;
    }
    watch_->progress(chunks_[at_].data.size);
    ++at_;
    next();
  }

  void OnDone() override { delete this; }

 private:
  Status start(const grpc::ByteBuffer* request) {
    grpc::ByteBuffer bytes(*request);  // shares the slices: parsing consumes the buffer
    if (!grpc::SerializationTraits<pb::DownloadRequest>::Deserialize(&bytes, &req_).ok()) {
      return Status::invalid_argument("malformed DownloadRequest");
    }
    Result<ClientId> c = service_.caller(ctx_);
    if (!c.ok()) return c.error();
    client_ = *c;
    Result<std::unique_ptr<ClientLimits::Slot>> slot =
        service_.client_limits_.open_stream(client_, "Download");
    if (!slot.ok()) return slot.error();
    slot_ = std::move(*slot);
    Result<DownloadPlan> plan = service_.plan_download(client_, req_);
    if (!plan.ok()) return plan.error();
    watch_ = service_.watchdog_.watch(ctx_, "Download");
    wire::for_each_chunk_view(
        plan->parts, service_.opts_.chunk_bytes,
        [&](const wire::ChunkView& v) {
          chunks_.push_back(v);
          return true;
        },
        plan->crc);
    for (const wire::ByteRange& p : plan->parts) bytes_ += p.size;
    keep_ = std::move(plan->keep);
    return Status();
  }

  // Writes the next chunk, or ends the call after the last.
  void next() {
    if (at_ == chunks_.size()) {
      service_.download_sent(client_, req_, bytes_);
      finish(grpc::Status::OK);
      return;
    }
    buffer_ = wire::chunk_buffer(chunks_[at_], keep_);
    StartWrite(&buffer_);
  }

  // A write failed: the watchdog cancelled a stalled stream, or the client went away.
  void stop() {
    const std::string why = watch_->cancelled_reason();
    if (!why.empty()) {
      log_line("client " + std::to_string(client_) + ": " + why);
      finish(wire::to_grpc(Status::deadline_exceeded(why)));
      return;
    }
    finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
  }

  // Ends the call. The client's stream slot is free before the client can learn the call
  // ended (as when a synchronous handler returns): OnDone runs later, and a client that
  // downloads again at once must not find its previous Download still counted.
  void finish(const grpc::Status& status) {
    watch_.reset();
    slot_.reset();
    Finish(status);
  }

  FleetService& service_;
  grpc::CallbackServerContext* ctx_;
  pb::DownloadRequest req_;
  ClientId client_ = 0;
  std::unique_ptr<ClientLimits::Slot> slot_;
  std::unique_ptr<StreamWatchdog::Stream> watch_;
  std::vector<wire::ChunkView> chunks_;
  std::shared_ptr<const void> keep_;  // what chunks_ point into
  size_t at_ = 0;
  int64_t bytes_ = 0;
  grpc::ByteBuffer buffer_;  // the chunk being written
};

grpc::ServerWriteReactor<grpc::ByteBuffer>* FleetService::Download(grpc::CallbackServerContext* ctx,
                                                                   const grpc::ByteBuffer* req) {
  return new DownloadReactor(*this, ctx, req);
}

}  // namespace cohort::deploy
