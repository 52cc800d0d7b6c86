// Server: Cohort's gRPC deployment server (`cohort serve`), the Fleet service of
// proto/cohort/v1/fleet.proto hosting one Strategy on a steady clock.
//
// The server is a host of the runtime core (runtime/runtime.h) like the simulator: ONE loop
// thread owns the strategy and receives events (client idle, update arrived, task lost, timer
// fired) that gRPC handler threads post to it; the client table, task bookkeeping, admission,
// counters, evaluation and checkpoints are the core's. Inside: server.cc (lifecycle),
// server_loop.cc (the loop, liveness, the clock), fleet_service.cc (the RPC handlers),
// sessions.cc (tokens, who is calling), wire.cc (protocol conversions). Clients pull tasks
// (PullTask → TRAIN / WAIT / DONE), download the model as a chunked stream, and push their update
// as a chunked stream that is validated (layout, sizes, chunk order, finite values, task and
// version) before the strategy sees it. Every RPC carries "authorization: Bearer <token>"; tokens
// map to client ids through the tokens file and unknown tokens are rejected with UNAUTHENTICATED
// before any payload is read. The wire format and the mapping of errors to gRPC codes are in
// docs/wire_format.md; the checkpoint directory format in docs/checkpoint_format.md.
//
// This header includes no gRPC or protobuf header: the implementation is private to
// cohort_deploy.
//
// Thread safety: start(), wait() and shutdown() may be called from different threads;
// shutdown() is idempotent. A Server runs once: start() after shutdown() fails.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/deploy/deploy_config.h"
#include "cohort/runtime/admission.h"
#include "cohort/runtime/compression.h"
#include "cohort/runtime/privacy.h"
#include "cohort/runtime/robustness.h"
#include "cohort/strategy/strategy.h"
#include "cohort/trainer/trainer.h"

namespace cohort::deploy {

// Evaluates a global model on the server's test set (optional). Called on the loop thread.
using ServerEvalFn = std::function<Result<EvalResult>(const ArrayRecord& model)>;

// The deployment settings (DeployConfig, the deploy file and serve's flags) plus what the run
// itself brings: its commit budget, outputs, seed, training config and evaluation.
struct ServerOptions : DeployConfig {
  // Budget: stop after `max_rounds` commits (run.rounds; 0 = no limit) or max_wall_s
  // seconds; at least one must be set. Clients are then told DONE.
  int64_t max_rounds = 0;
  // Output directory for metrics.jsonl and summary.json (empty = none); created if missing.
  std::string out_dir;
  // Extra sinks (tests); events also go to out_dir/metrics.jsonl when set.
  std::vector<std::shared_ptr<MetricsSink>> sinks;
  // Seed of the strategy's random stream (run.seed); a simulation with the same seed samples
  // the same clients.
  uint64_t seed = 1;
  // Local steps for a client's task when the strategy uses the default.
  TrainConfig training;
  // Evaluate the global model after commits (every `eval_every` commits; 0 = never) and at the
  // end; null = no server-side evaluation.
  ServerEvalFn evaluate;
  int64_t eval_every = 1;
  double target_accuracy = 0.0;
  // Several models (`models:`): each model's own target by label (runtime.h).
  std::map<std::string, double> model_targets;
  // Bounds every update passes before the strategy (the YAML admission: section).
  AdmissionOptions admission;
  // Codec chains of the run (the YAML compression: section): updates up, models down.
  runtime::CompressionOptions compression;
  // Robust aggregation and contribution estimates (robust:, contribution:), as in the
  // simulator; contributions use the server's evaluation (deploy.server_eval).
  std::optional<RobustOptions> robust;
  runtime::ContributionSettings contribution;
  // Differential privacy (privacy.dp); the server's noise comes from the operating system's
  // randomness.
  runtime::PrivacyOptions privacy;
  // Secure aggregation: keep every protocol message of the last round in memory
  // (Server::secagg_transcript; audits and tests).
  bool keep_secagg_transcript = false;
  // Extra fields for the "start" metrics event (config echo).
  Json start_fields = Json::object();
  // DeployConfig::validate plus the budget.
  Status validate() const;
};

class Server {
 public:
  // `strategy` is not started yet; `initial` is the version-0 global model (its layout is
  // the wire layout). Errors surface from start().
  Server(ServerOptions options, std::unique_ptr<Strategy> strategy, ArrayRecord initial);
  ~Server();  // shuts down and joins
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads tokens (NotFound / InvalidArgument naming the file and line), TLS files, the
  // checkpoint when resuming (NotFound / DataLoss / Unimplemented when the strategy cannot
  // restore; InvalidArgument for a checkpoint of another strategy), starts the strategy and
  // the gRPC server. Returns the bound port. InvalidArgument for bad options (no budget,
  // neither TLS files nor `insecure`); Unimplemented when checkpoint_dir is set for a
  // strategy without checkpoint support; Unavailable when the address cannot be bound.
  Result<int> start();
  // Blocks until the run's budget is reached (and the DONE grace period has passed) or
  // shutdown() is called. Returns the strategy's failure, if any.
  Status wait();
  // Ends the run gracefully: the strategy stops, clients polling for work are told DONE for
  // done_grace_s, then wait() returns (cohort serve on the first SIGTERM / SIGINT).
  void request_stop(const std::string& reason = "stopped");
  // Stops serving now; pending RPCs are cancelled. Idempotent.
  void shutdown();

  // Runs `fn` on the loop thread as an event of its own, after the events queued before it:
  // there it may call the strategy, like any event. How a component beside the Fleet service
  // feeds the strategy (the relay of `cohort serve --upstream` gets its jobs this way).
  // Unavailable when the server is not running (not started, stopping, or its loop ended).
  Status post(std::function<void()> fn);
  // Whether the loop has ended (the run is over or the server shut down).
  bool finished() const;
  // The clients that registered so far and the examples they registered (thread-safe).
  struct Registered {
    int64_t clients = 0;
    int64_t examples = 0;
  };
  Registered registered() const;

  // Current global version (thread-safe; for tests and progress).
  ModelVersion version() const;
  // A copy of the current global model (thread-safe).
  std::shared_ptr<const ArrayRecord> global_model() const;
  // Secure aggregation (keep_secagg_transcript): every message the server side received in
  // the last round, as (client, stage, bytes). Empty otherwise.
  std::vector<std::tuple<ClientId, int, std::vector<uint8_t>>> secagg_transcript() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Parses a tokens file's text into token -> client id. InvalidArgument naming `path` and the
// line for a malformed line, a negative id or a duplicate token.
Result<std::map<std::string, ClientId>> parse_tokens(const std::string& text,
                                                     const std::string& path);

}  // namespace cohort::deploy
