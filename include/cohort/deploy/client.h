// Client: Cohort's gRPC deployment client (`cohort join`), the other end of the Fleet service
// of proto/cohort/v1/fleet.proto. It wraps any Trainer and a local data shard:
//
//   Register -> PullTask -> TRAIN: Download the model (and the server state when the task
//                                  has one), train `local_steps` steps, push
//                                  delta = start - end as a chunked stream (header first),
//                                  heartbeating from a side thread while training;
//                           WAIT:  sleep retry_after_s, pull again;
//                           DONE:  return.
//
// Tasks with server state (SCAFFOLD) follow the client-state rule of
// cohort/trainer/control_variates.h: the client keeps its c_i across tasks and stores the new
// one only when the server accepts the update.
//
// Failures: a lost connection (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, ABORTED; e.g. the
// server restarting with --resume) makes the client reconnect with capped, jittered
// exponential backoff and register again; an update the server rejects (INVALID_ARGUMENT,
// FAILED_PRECONDITION, DATA_LOSS, RESOURCE_EXHAUSTED, or accepted = false) is logged and
// counted and the client pulls its next task; a rejected token (UNAUTHENTICATED /
// PERMISSION_DENIED) ends run() at once, without retrying.
//
// This header includes no gRPC or protobuf header.
//
// Thread safety: run() is called once, from one thread; stop() may be called from any thread
// (not from a signal handler: set an atomic there and call stop() from a watcher, or pass
// ClientOptions::stop_flag).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cohort/attack/attack.h"
#include "cohort/core/status.h"
#include "cohort/data/dataset.h"
#include "cohort/trainer/trainer.h"

namespace cohort::deploy {

// Deliberately broken updates, for tests of the server's validation only (`cohort join
// --inject-fault`). The fault is applied to the client's first update only; later updates
// are correct.
enum class InjectedFault {
  kNone,
  kWrongShape,  // the first array's first dimension is one smaller (header layout and payload)
  kNaN,         // the first element of the delta is NaN
};

struct ClientOptions {
  // "HOST:PORT" of the server.
  std::string server;
  // Bearer token sent with every RPC ("authorization: Bearer <token>").
  std::string token;
  // TLS: PEM file of the CA that signed the server's certificate. Empty requires `insecure`.
  std::string ca_file;
  bool insecure = false;
  // Name checked against the server certificate instead of the host of `server` (e.g.
  // "localhost" when connecting to 127.0.0.1 with a certificate issued for localhost).
  std::string ssl_target_name;
  // Reconnect backoff: the k-th consecutive failed attempt waits
  // min(backoff_max_s, backoff_initial_s * 2^k) * uniform(1 - backoff_jitter, 1).
  double backoff_initial_s = 0.2;
  double backoff_max_s = 5.0;
  double backoff_jitter = 0.5;
  // Give up (Unavailable) after this long without reaching the server (0 = never).
  double max_disconnected_s = 300.0;
  // Heartbeat period while training; 0 = the server's RegisterReply.heartbeat_interval_s.
  double heartbeat_interval_s = 0.0;
  // Deadline of unary RPCs (PullTask long-polls stay well below it); streams get
  // `stream_timeout_s`.
  double rpc_timeout_s = 30.0;
  double stream_timeout_s = 600.0;
  // Upload chunk size; 0 = the server's RegisterReply.chunk_bytes.
  int64_t chunk_bytes = 0;
  // Seeds backoff jitter and the per-task training seeds.
  uint64_t seed = 1;
  // Local optimiser settings (the YAML training section); the task config overrides lr.
  TrainConfig training;
  // Reported in RegisterRequest.speed_hint (local steps per second, 0 = unknown).
  double speed_hint = 0.0;
  // Test only (see InjectedFault).
  InjectedFault fault = InjectedFault::kNone;
  // Progress lines ("task 3: version 2, 20 steps, train_loss 0.41, accepted"); null = silent.
  std::function<void(const std::string&)> log;
  // When set and true, run() returns Cancelled at its next check (e.g. set from SIGINT).
  const std::atomic<bool>* stop_flag = nullptr;
  // Where the client keeps the state it carries across tasks (SCAFFOLD's c_i, the uplink
  // chain's error-feedback residual), written atomically after every upload that reached the
  // server and read back at start, so a restarted client continues where it stopped
  // (docs/compression.md). Empty = in memory only. A file of another client or model is an
  // error naming it; a corrupt one is reported and replaced.
  std::string state_dir;
  // A Byzantine client for robustness tests and demos (`cohort join --attack`): a per-update
  // attack (attack/attack.h: sign_flip, scaling, gaussian, free_rider) applied to every delta
  // before it is encoded and sent. Kind "none" = honest. Label flipping is done by the caller
  // on the client's data.
  attack::AttackOptions attack;
  // The upstream side of an aggregator (`cohort serve --upstream`, deploy/relay.h): its trainer
  // is the tier below. Tasks it cannot forward (server state, secure aggregation, client-side
  // DP, Streaming DiLoCo) end run() with InvalidArgument naming them; a task whose step count
  // is the upstream's default says so to the trainer (task config "local_steps_default").
  bool relay = false;
  // The examples to register, asked at every registration (null: the shard's size). An
  // aggregator registers its tier's examples, which grow as its clients join.
  std::function<int64_t()> examples_to_register;
};

struct ClientStats {
  ClientId client_id = -1;  // as assigned by the server from the token
  int64_t tasks = 0;        // TRAIN tasks received
  int64_t accepted = 0;     // updates the server accepted
  int64_t rejected = 0;     // updates the server rejected
  int64_t abandoned = 0;    // tasks dropped (server gave up on them, or connection lost)
  int64_t reconnects = 0;   // successful registrations after the first
  int64_t waits = 0;        // WAIT answers
};

class Client {
 public:
  // Validates the options (InvalidArgument naming the option: empty server, neither ca_file
  // nor insecure, both, bad backoff values), reads the CA file (NotFound naming it) and
  // computes the trainer's layout with trainer->init_params(seed) (errors from the trainer).
  // `shard` must not be empty (InvalidArgument).
  static Result<std::unique_ptr<Client>> create(ClientOptions options,
                                                std::unique_ptr<Trainer> trainer, Shard shard);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs until the server answers DONE (OK), the token is rejected (Unauthenticated, naming
  // the server), the server's layout differs from the trainer's (FailedPrecondition naming
  // the first differing array), the server stays unreachable for max_disconnected_s
  // (Unavailable), training fails (the trainer's error), or stop() (Cancelled).
  Result<ClientStats> run();
  // Makes run() return Cancelled soon (interrupts backoff and WAIT sleeps).
  void stop();

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses "wrong-shape" | "nan" | "none" (InvalidArgument listing the known values).
Result<InjectedFault> parse_injected_fault(const std::string& name);

// Lets glibc keep large freed blocks for reuse (mmap threshold 32 MB, trim threshold 1 GB)
// instead of handing them back to the kernel at once: gRPC allocates a receive buffer of up
// to 4 MB per socket read, so a client downloading a model otherwise writes into fresh pages
// on every read (page faults were ~10% of a client's CPU while downloading 100 MB models, and
// the download phase of `cohort bench large-model` ~10% shorter with this). It changes the
// whole process's allocator, so the library never calls it: `cohort join` does at start, as
// do the deployment benchmarks' clients; an embedding program decides for itself.
void keep_freed_memory_for_reuse();

}  // namespace cohort::deploy
