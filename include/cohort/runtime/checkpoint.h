// Checkpoints: one file per save, written atomically (temp file, fsync, rename, fsync of the
// directory), the last `keep` of them kept. Format: docs/checkpoint_format.md. Written by the
// runtime core (runtime.h) for either host.
//
// Thread safety: free functions without shared state; one writer per directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/strategy/strategy.h"

namespace cohort {

struct Checkpoint {
  std::string strategy;      // Strategy::name()
  ModelVersion version = 0;  // global version at save time
  int64_t epoch = 0;         // how many times the server (re)started before this save
  std::vector<uint64_t> rng_state;
  // The runtime core's own state: clients and their statistics, tasks in flight, timers,
  // counters, the clock, the admission window (runtime.cc writes and reads it).
  Json runtime = Json::object();
  StrategyState state;  // the strategy's save_state()
};

// The newest checkpoint's file name inside a checkpoint directory; older ones are
// checkpoint.cohort.1 (the previous), .2, ...
inline constexpr const char* kCheckpointFile = "checkpoint.cohort";
// The format this build writes and reads.
inline constexpr int64_t kCheckpointFormatVersion = 2;

// Writes `dir`/checkpoint.cohort atomically, creating `dir` if needed, after shifting the
// existing ones to .1, .2, ... so that `keep` (>= 1) files remain. Internal on I/O errors
// naming the path.
Status write_checkpoint(const std::string& dir, const Checkpoint& ckpt, int64_t keep = 1);

// Writes one checkpoint file at `path` atomically (temporary file, fsync, rename, fsync of the
// directory), without rotation; the directory must exist. Internal on I/O errors naming the
// path. (The model file, runtime/model_file.h, is written this way.)
Status write_checkpoint_file(const std::string& path, const Checkpoint& ckpt);

// Reads one checkpoint file. NotFound when absent; DataLoss naming the file and what is wrong
// for anything else: bad magic, a manifest length beyond the file, a manifest that is not
// the JSON object expected or fails its checksum, another format_version, an array that does
// not fit, or values that fail their hash.
Result<Checkpoint> read_checkpoint_file(const std::string& path);

// Reads the newest readable checkpoint of `dir`: checkpoint.cohort, else (when it is corrupt)
// the previous ones in order. NotFound when there is none; the first file's error when none
// is readable. `skipped` (optional) receives one line per corrupt file passed over.
Result<Checkpoint> read_checkpoint(const std::string& dir,
                                   std::vector<std::string>* skipped = nullptr);

}  // namespace cohort
