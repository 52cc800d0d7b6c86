// One simulated task's work on a training thread: train the client's model, then do what the
// client would before uploading (form the delta, rewrite it if the client is an attacker,
// clip and noise it under client-side DP, encode it through the uplink chain). Everything it
// reads of the client was copied when the task started (a lost task leaves the client's state
// as it was); the context is shared by every job of a simulation and read-only while it runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/privacy/dp.h"
#include "cohort/runtime/compression.h"
#include "cohort/strategy/strategy.h"
#include "cohort/trainer/streaming.h"
#include "cohort/trainer/trainer.h"
#include "sim/adversary.h"
#include "sim/sim_state.h"

namespace cohort::sim {

struct TrainingJob {
  std::shared_ptr<const ArrayRecord> model;  // the model the client starts from
  ClientId client = 0;
  int64_t steps = 0;
  ConfigRecord config;  // the task's
  uint64_t seed = 0;
  // The gradient correction of the client's state (SCAFFOLD), null without one; freed when
  // training ends (the job lives until its result is delivered).
  std::shared_ptr<const ArrayRecord> grad_correction;
  std::shared_ptr<std::atomic<bool>> cancel;     // the simulation stops
  std::shared_ptr<std::atomic<bool>> abandoned;  // the task was lost
  std::vector<float> residual;                   // uplink error feedback (a copy)
  uint64_t uplink_seed = 0;
  const Shard* shard = nullptr;  // what it trains on (an attacker's may be relabelled)
  bool attack_delta = false;     // the attacker rewrites its delta
  bool client_dp = false;        // the client clips (and noises) its own delta
  std::optional<ArrayRecord> optimizer_state;  // kept across the client's tasks (a copy)
  std::optional<TaskStreaming> stream;         // a Streaming DiLoCo task
  std::optional<KeptModel> kept;               // its worker's own model (a copy)
};

struct TrainingJobContext {
  const TrainConfig& training;
  const runtime::Compression& compression;
  const Adversary& adversary;
  const privacy::NoiseSeed& dp_client_seed;
};

// Runs `job` on `trainer` (the calling worker's). Cancelled when the simulation stops or the
// task was lost before it started.
Result<Trained> run_training_job(TrainingJob& job, Trainer& trainer, const TrainingJobContext& ctx);

}  // namespace cohort::sim
