// DeployConfig: how `cohort serve` runs a deployment: the YAML `deploy:` section, which the
// serve command's flags override (README, docs/config.md). Separate from the simulation's
// settings: the wall-clock budget here is real seconds, the simulator's run.max_virtual_time_s
// is virtual ones. No gRPC here: the config loader and tools read it without the transport.
#pragma once

#include <cstdint>
#include <string>

#include "cohort/core/status.h"

namespace cohort {

struct DeployConfig {
  // "HOST:PORT" to listen on; port 0 picks a free port.
  std::string listen_address = "127.0.0.1:0";
  // Tokens file: lines "TOKEN CLIENT_ID", '#' starts a comment, blank lines ignored.
  std::string tokens_file;
  // TLS: PEM files of the server certificate and its key. Both empty requires `insecure`.
  std::string tls_cert_file;
  std::string tls_key_file;
  bool insecure = false;
  // Wall-clock budget in seconds (0 = none); the run also ends after run.rounds commits. At
  // least one of the two must be set.
  double max_wall_s = 0.0;
  // Checkpoints: directory (empty = none), how many of the latest to keep, and whether to
  // continue from the newest readable one. With a directory, every update is acknowledged as
  // accepted only once a checkpoint holding it is on disk, and no client gets a model version
  // before it is (docs/checkpoint_format.md).
  std::string checkpoint_dir;
  int64_t keep_checkpoints = 3;
  bool resume = false;
  // A client silent (no RPC at all) for this long is no longer idle and its task, if any, is
  // lost. Clients are told to heartbeat every heartbeat_interval_s (0 = client_timeout_s / 5,
  // at least 0.1 s).
  double client_timeout_s = 10.0;
  double heartbeat_interval_s = 0.0;
  // A task not pushed within this many seconds of dispatch is lost (0 = only the liveness
  // timeout applies). Sent to clients as PullTaskReply.deadline_s.
  double task_timeout_s = 0.0;
  // At most this many update streams are assembled at once (each holds a model-sized buffer
  // until the strategy folded it in); 0 = no limit.
  int64_t max_concurrent_pushes = 0;
  // Preferred chunk size of streams, in bytes.
  int64_t chunk_bytes = 1 << 20;
  // Long poll: PullTask waits up to this long for a task before answering WAIT.
  double pull_wait_s = 0.5;
  // How long to keep answering DONE after the run ends, so connected clients learn it.
  double done_grace_s = 2.0;
  // Evaluate the global model on the server's test split (the config's data: section).
  bool server_eval = true;

  // Limits that keep one client from breaking the federation (docs/threat_model.md). A stream
  // (Download, PushUpdate) is cancelled when no message moved for stream_idle_timeout_s, when
  // it has run longer than stream_max_s (0 = no limit), or when, past stream_grace_s, it moved
  // fewer than stream_min_bytes_per_s on average (0 = no floor).
  double stream_idle_timeout_s = 30.0;
  double stream_max_s = 0.0;
  double stream_min_bytes_per_s = 16384.0;
  double stream_grace_s = 10.0;
  // Streams one client may have open at once (0 = no limit); calls per second per client, with
  // bursts of twice that (0 = no limit).
  int64_t max_streams_per_client = 2;
  double max_calls_per_s = 200.0;
  // Bytes of uploads being assembled at once; a push beyond it is refused with
  // RESOURCE_EXHAUSTED. 0 = 8x the model size, at least 256 MiB.
  int64_t max_upload_bytes = 0;
  // Where uploads wait for the strategy when it folds them streamed (FedAvg family, FedBuff,
  // FedAsync: docs/compression.md): up to spool_memory_bytes of one upload in memory, beyond
  // that in an unlinked temporary file in spool_dir (empty: checkpoint_dir if set, else
  // $TMPDIR or /tmp). Point it at a disk, not a RAM file system, to keep memory flat.
  std::string spool_dir;
  int64_t spool_memory_bytes = int64_t{16} << 20;
  // spool_dir, or its default.
  std::string resolved_spool_dir() const;

  // The heartbeat period clients are told (heartbeat_interval_s, or its default).
  double heartbeat_s() const;
  // InvalidArgument naming the key ("deploy.client_timeout_s: must be > 0, got 0") or the
  // conflict (TLS files together with insecure, resume without a checkpoint directory).
  Status validate() const;
};

}  // namespace cohort
