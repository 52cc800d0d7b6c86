// The Fleet service's RPC handlers (proto/cohort/v1/fleet.proto): authenticate the caller,
// validate and assemble streams, and turn calls into runtime-core operations, posting strategy
// events to the loop. Internal to cohort_deploy.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>

#include <string>
#include <vector>

#include "cohort/runtime/compression.h"
#include "cohort/runtime/downlink.h"
#include "cohort/v1/fleet.grpc.pb.h"
#include "deploy/wire.h"
#include "deploy/limits.h"
#include "deploy/server_loop.h"
#include "deploy/sessions.h"

namespace cohort::deploy {

// Download is a callback method on raw byte buffers (deploy/download.cc): its chunks point into
// the model instead of copying it twice per client; the other methods are synchronous.
class FleetService final : public v1::Fleet::WithRawCallbackMethod_Download<v1::Fleet::Service> {
 public:
  FleetService(const ServerOptions& options, const TokenTable& tokens, ServerLoop& loop,
               std::shared_ptr<const ArrayLayout> layout);

  grpc::Status Register(grpc::ServerContext* ctx, const v1::RegisterRequest* req,
                        v1::RegisterReply* reply) override;
  grpc::Status PullTask(grpc::ServerContext* ctx, const v1::PullTaskRequest* req,
                        v1::PullTaskReply* reply) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Download(grpc::CallbackServerContext* ctx,
                                                       const grpc::ByteBuffer* req) override;
  grpc::Status PushUpdate(grpc::ServerContext* ctx, grpc::ServerReader<v1::UpdateChunk>* reader,
                          v1::PushReply* reply) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatReply* reply) override;
  grpc::Status ReportEval(grpc::ServerContext* ctx, const v1::EvalReport* req,
                          v1::EvalAck* reply) override;
  grpc::Status SecAgg(grpc::ServerContext* ctx, const v1::SecAggRequest* req,
                      v1::SecAggReply* reply) override;

 private:
  // The authenticated caller, within its call rate (ResourceExhausted beyond it).
  Result<ClientId> caller(grpc::ServerContextBase* ctx);
  // What a Download of client `c` sends: the byte ranges, their stream CRC, and what owns the
  // memory they point into. FailedPrecondition when `req` does not name the client's current
  // task (or, under delta downlink, its planned download), InvalidArgument for an unknown
  // `what`. loop_.mu and downlink_mu_ not held.
  struct DownloadPlan {
    std::vector<wire::ByteRange> parts;
    wire::StreamCrc crc;
    std::shared_ptr<const void> keep;
  };
  Result<DownloadPlan> plan_download(ClientId c, const v1::DownloadRequest& req);
  // A download was sent whole: its bytes are counted, a delta downlink's plan is spent.
  void download_sent(ClientId c, const v1::DownloadRequest& req, int64_t bytes);
  class DownloadReactor;
  // An update that never reached the strategy: counted and logged; the task it answered is
  // lost (the strategy hears of it on the loop). mu not held.
  void reject_push(ClientId c, int64_t task_id, const Status& why);
  // Waits for a push slot (max_concurrent_pushes); false when the client went away.
  bool acquire_push_slot(grpc::ServerContext* ctx, StreamWatchdog::Stream* watch);
  void release_push_slot();
  // The strategy's view of an update a client withheld for secure aggregation.
  Update withheld_update(ClientId c, const v1::UpdateHeader& h) const;

  const ServerOptions& opts_;
  const TokenTable& tokens_;
  ServerLoop& loop_;
  std::shared_ptr<const ArrayLayout> layout_;
  v1::Layout layout_pb_;
  std::mutex push_mu_;
  std::condition_variable push_cv_;
  int64_t pushes_active_ = 0;
  StreamWatchdog watchdog_;
  ClientLimits client_limits_;
  UploadBudget uploads_;
  // The newest version each client reported an evaluation for (under loop_.mu): one report per
  // client and version reaches the metrics.
  std::map<ClientId, ModelVersion> last_eval_;
  // Compression (docs/compression.md): the run's chains, the model's segments, the largest
  // payload an update may declare, and the downlink payloads of recent versions.
  runtime::Compression compression_;
  std::vector<int64_t> offsets_;
  int64_t max_update_payload_ = 0;
  // Whether the strategy folds streamed deltas: uploads are then spooled, not held decoded.
  bool streamed_ = false;
  std::mutex downlink_mu_;
  std::map<ModelVersion, std::shared_ptr<const std::string>> downlink_cache_;
  // The stream CRC-32 of raw model `version` (computed on first use). downlink_mu_ not held.
  std::map<ModelVersion, uint32_t> model_crc_;
  uint32_t model_crc(ModelVersion version, const wire::ByteRange& bytes);
  // The downlink payload of `version` (encoded on first use). downlink_mu_ not held.
  Result<std::shared_ptr<const std::string>> downlink_payload(
      ModelVersion version, const std::shared_ptr<const ArrayRecord>& model);
  // Delta downlink (runtime/downlink.h): the model as clients hold it and, per client, what
  // its task's MODEL download sends (task id and plan: decided at PullTask, sent by Download).
  // downlink_mu_.
  std::unique_ptr<runtime::DownlinkDeltas> downlink_deltas_;
  std::map<ClientId, std::pair<int64_t, runtime::DownlinkDeltas::Start>> downlink_starts_;
  // Plans client `c`'s download of `model` (version `version`, task `task_id`) for what its
  // request says it holds, and names the plan in `reply`. downlink_mu_ not held.
  Status plan_downlink(ClientId c, int64_t task_id, ModelVersion version,
                       const std::shared_ptr<const ArrayRecord>& model,
                       const v1::PullTaskRequest& req, v1::PullTaskReply* reply);
};

}  // namespace cohort::deploy
