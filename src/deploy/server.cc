// Server lifecycle: options, tokens, TLS credentials, metrics outputs, checkpoint resume, the
// runtime core's start, and the gRPC server around the loop (server_loop.h) and the handlers
// (fleet_service.h).
#include "cohort/deploy/server.h"

#include <bit>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "cohort/core/format.h"
#include "cohort/core/validate.h"
#include "cohort/runtime/checkpoint.h"
#include "deploy/fleet_service.h"
#include "deploy/server_loop.h"
#include "deploy/sessions.h"

namespace cohort::deploy {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian float32; big-endian hosts need byte swapping");

namespace {

Result<std::string> read_text(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(what + " " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::shared_ptr<grpc::ServerCredentials>> credentials(const ServerOptions& o) {
  if (o.insecure) return grpc::InsecureServerCredentials();
  COHORT_ASSIGN_OR_RETURN(std::string cert, read_text(o.tls_cert_file, "certificate"));
  COHORT_ASSIGN_OR_RETURN(std::string key, read_text(o.tls_key_file, "key"));
  grpc::SslServerCredentialsOptions so;
  so.pem_key_cert_pairs.push_back({key, cert});
  return grpc::SslServerCredentials(so);
}

}  // namespace

Status ServerOptions::validate() const {
  COHORT_RETURN_IF_ERROR(DeployConfig::validate());
  COHORT_RETURN_IF_ERROR(admission.validate());
  COHORT_RETURN_IF_ERROR(compression.validate());
  COHORT_RETURN_IF_ERROR(privacy.validate());
  if (privacy.secagg.enabled) {
    // Only a uniform quantizer (it becomes the fixed point) or none composes with masking.
    COHORT_RETURN_IF_ERROR(runtime::secagg_input_bits(compression).status());
  }
  COHORT_RETURN_IF_ERROR(check_field("run.rounds", max_rounds, Range::at_least(0)));
  if (max_rounds == 0 && max_wall_s == 0) {
    return Status::invalid_argument(
        "deploy: no budget: set run.rounds or deploy.max_wall_s (--max-wall-s) > 0");
  }
  return check_field("run.eval_every", eval_every, Range::at_least(0));
}

struct Server::Impl {
  Impl(ServerOptions o, std::unique_ptr<Strategy> s, ArrayRecord init)
      : opts(std::move(o)), strategy(std::move(s)), initial(std::move(init)) {}

  ServerOptions opts;
  std::unique_ptr<Strategy> strategy;
  ArrayRecord initial;
  MetricsHub hub;
  TokenTable tokens;
  std::unique_ptr<ServerLoop> loop;
  std::unique_ptr<FleetService> service;
  std::unique_ptr<grpc::Server> server;
  bool started = false;
  std::mutex shutdown_mu;
  bool shut = false;

  Result<int> start() {
    if (started) return Status::failed_precondition("Server::start: already started");
    started = true;
    if (!strategy) return Status::invalid_argument("Server: no strategy");
    if (initial.empty() || initial.numel() == 0) {
      return Status::invalid_argument("Server: the initial model is empty");
    }
    COHORT_RETURN_IF_ERROR(opts.validate());
    runtime::fold_uplink_into_secagg(opts.compression, opts.privacy);  // intK: the fixed point
    COHORT_ASSIGN_OR_RETURN(tokens, TokenTable::load(opts.tokens_file));
    COHORT_RETURN_IF_ERROR(strategy->check_population(tokens.client_ids().size())
                               .with_context("strategy (the tokens file names " +
                                             std::to_string(tokens.client_ids().size()) +
                                             " clients)"));
    COHORT_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds, credentials(opts));
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
      std::vector<std::string> skipped;
      COHORT_ASSIGN_OR_RETURN(ckpt, read_checkpoint(opts.checkpoint_dir, &skipped));
      for (const std::string& s : skipped) log_line("skipped a corrupt checkpoint: " + s);
    }

    std::shared_ptr<const ArrayLayout> layout = initial.layout();
    if (opts.max_upload_bytes > 0 && opts.max_upload_bytes < layout->num_bytes()) {
      return Status::invalid_argument(strformat(
          "deploy.max_upload_bytes: %lld bytes cannot hold one update of this model (%lld bytes)",
          static_cast<long long>(opts.max_upload_bytes),
          static_cast<long long>(layout->num_bytes())));
    }
    loop = std::make_unique<ServerLoop>(opts, *strategy, &hub);
    {
      std::lock_guard<std::mutex> lk(loop->mu);
      // Every client the tokens file names is known from the start (not idle until it polls).
      for (ClientId id : tokens.client_ids()) loop->core.add_client(id, 0);
      Json fields = {{"mode", "deploy"}, {"max_wall_s", opts.max_wall_s}};
      for (auto& [k, v] : opts.start_fields.items()) fields[k] = v;
      COHORT_RETURN_IF_ERROR(
          loop->core.start(std::move(initial), std::move(fields), std::move(ckpt)));
      if (loop->core.resumed_from() >= 0) {
        log_line("resumed from " + opts.checkpoint_dir + " at version " +
                 std::to_string(loop->core.resumed_from()));
      }
      loop->snapshot();
      loop->mark_durable_start();
    }
    service = std::make_unique<FleetService>(opts, tokens, *loop, layout);

    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort(opts.listen_address, creds, &port);
    b.RegisterService(service.get());
    const int max_msg = static_cast<int>(
        std::min<int64_t>(std::numeric_limits<int>::max(),
                          std::max<int64_t>(4 << 20, 2 * opts.chunk_bytes + (1 << 20))));
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
    loop->start_thread();
    return port;
  }

  Status wait() {
    if (loop) {
      std::unique_lock<std::mutex> lk(loop->mu);
      loop->task_cv.wait(lk, [&] {
        return loop->loop_exited || !server;
      });
    }
    shutdown();
    if (!loop) return Status::failed_precondition("Server::wait: not started");
    std::lock_guard<std::mutex> lk(loop->mu);
    const std::optional<Status>& f = loop->core.failure();
    return f ? *f : Status();
  }

  void shutdown() {
    std::lock_guard<std::mutex> g(shutdown_mu);
    if (shut) return;
    shut = true;
    if (loop) loop->stop_and_join();
    if (server) {
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      server->Wait();
    }
    hub.flush();
  }
};

Server::Server(ServerOptions options, std::unique_ptr<Strategy> strategy, ArrayRecord initial)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(strategy), std::move(initial))) {}

Server::~Server() { shutdown(); }

Result<int> Server::start() { return impl_->start(); }
Status Server::wait() { return impl_->wait(); }

void Server::request_stop(const std::string& reason) {
  if (!impl_->loop) return;
  std::lock_guard<std::mutex> lk(impl_->loop->mu);
  impl_->loop->core.stop(reason);
}
void Server::shutdown() { impl_->shutdown(); }

Status Server::post(std::function<void()> fn) {
  if (!impl_->loop) return Status::unavailable("server: not started");
  std::lock_guard<std::mutex> lk(impl_->loop->mu);
  if (impl_->loop->loop_exited || impl_->loop->stop || impl_->loop->done) {
    return Status::unavailable("server: the run is over");
  }
  impl_->loop->post(std::move(fn));
  return Status();
}

bool Server::finished() const {
  if (!impl_->loop) return false;
  std::lock_guard<std::mutex> lk(impl_->loop->mu);
  return impl_->loop->loop_exited;
}

Server::Registered Server::registered() const {
  Registered r;
  if (!impl_->loop) return r;
  std::lock_guard<std::mutex> lk(impl_->loop->mu);
  for (ClientId id : impl_->loop->core.client_ids()) {
    const int64_t n = impl_->loop->core.client_info(id).num_examples;
    if (n > 0) {
      r.clients += 1;
      r.examples += n;
    }
  }
  return r;
}

ModelVersion Server::version() const {
  if (!impl_->loop) return 0;
  std::lock_guard<std::mutex> lk(impl_->loop->mu);
  return impl_->loop->version_snapshot;
}

std::shared_ptr<const ArrayRecord> Server::global_model() const {
  if (!impl_->loop) return nullptr;
  std::lock_guard<std::mutex> lk(impl_->loop->mu);
  return impl_->loop->model_snapshot;
}

std::vector<std::tuple<ClientId, int, std::vector<uint8_t>>> Server::secagg_transcript() const {
  std::vector<std::tuple<ClientId, int, std::vector<uint8_t>>> out;
  if (!impl_->loop || !impl_->loop->secagg) return out;
  std::lock_guard<std::mutex> lk(impl_->loop->mu);
  for (const secagg::TranscriptEntry& e : impl_->loop->secagg->last_transcript()) {
    out.emplace_back(e.client, static_cast<int>(e.stage), e.bytes);
  }
  return out;
}

}  // namespace cohort::deploy
