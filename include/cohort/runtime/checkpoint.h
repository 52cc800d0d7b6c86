// Checkpoints: one file, written atomically (temp file, fsync, rename, fsync of the
// directory). Format: docs/checkpoint_format.md. Written by the runtime core (runtime.h) for either
// host.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/strategy/strategy.h"

namespace cohort {

struct CheckpointClient {
  ClientId id = 0;
  int64_t num_examples = 0;
  int64_t tasks_done = 0;
};

struct Checkpoint {
  std::string strategy;      // Strategy::name()
  ModelVersion version = 0;  // global version at save time
  int64_t epoch = 0;         // how many times the server (re)started before this save
  std::vector<CheckpointClient> clients;
  std::vector<uint64_t> rng_state;
  Json counters = Json::object();  // updates, rejected, lost, bytes (metrics continuity)
  StrategyState state;             // the strategy's save_state()
};

// The file name inside a checkpoint directory.
inline constexpr const char* kCheckpointFile = "checkpoint.cohort";

// Writes `dir`/checkpoint.cohort atomically, creating `dir` if needed. Internal on I/O
// errors naming the path.
Status write_checkpoint(const std::string& dir, const Checkpoint& ckpt);

// Reads `dir`/checkpoint.cohort. NotFound when absent; DataLoss naming what is wrong for a
// corrupt or truncated file (bad magic, manifest, sizes, or a hash mismatch).
Result<Checkpoint> read_checkpoint(const std::string& dir);

}  // namespace cohort
