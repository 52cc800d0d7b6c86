// The simulator's per-task and per-client bookkeeping (internal to cohort_sim).
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/parallel.h"
#include "cohort/core/rng.h"
#include "cohort/core/status.h"
#include "cohort/runtime/downlink.h"
#include "cohort/runtime/runtime.h"
#include "cohort/sim/simulator.h"
#include "cohort/trainer/streaming.h"
#include "cohort/trainer/trainer.h"

namespace cohort::sim {

// kTaskLost: a dropped-out task's timeout; kOffline / kOnline: a client's availability changes;
// kTrained: a task's training ended and its (compressed) upload starts, which lasts as long as
// the encoded payload needs (only with uplink compression: otherwise sizes are known at
// dispatch and kTaskDone is scheduled then).
enum class EventKind { kTaskDone, kTimer, kTaskLost, kOffline, kOnline, kTrained };

struct Event {
  double time;
  uint64_t seq;
  EventKind kind;
  int64_t id;  // task number, timer id, or client id (kOffline, kOnline)
  bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
};

// What a training job hands back: the trainer's result and, with uplink compression, the
// update as the server decodes it (params then hold start - end, decoded), the payload's size
// and the client's new error-feedback residual.
struct Trained {
  TrainResult result;
  bool delta_ready = false;
  int64_t payload_bytes = 0;
  std::vector<float> residual;
  // The client's optimizer state after the task (tasks with "keep_optimizer_state").
  std::optional<ArrayRecord> optimizer_state;
  // The model a Streaming DiLoCo worker keeps, after the task (streaming tasks only).
  std::optional<KeptModel> kept_model;
};

// A task's simulated side: its transfer sizes, the model the client starts from (the global
// model, or its downlink-decoded form) and its training job.
struct InFlight {
  int64_t bytes_up = 0;
  int64_t state_bytes = 0;
  // When the loop needs the result (virtual time of its kTrained or kTaskDone event).
  double due = 0.0;
  // Whether its training was handed to the pool (or another process) yet.
  bool started = false;
  std::shared_ptr<const ArrayRecord> start_model;
  // The training job's result: a slot for the pool, a future for another process.
  std::shared_ptr<ResultSlot<Result<Trained>>> slot;
  std::future<Result<Trained>> result;
  // Set at kTrained: the job's result, collected when the upload started.
  std::optional<Result<Trained>> ready;
  // Set when the task is lost, so that its training, if not started yet, is skipped.
  std::shared_ptr<std::atomic<bool>> abandoned = std::make_shared<std::atomic<bool>>(false);
};

// What a client keeps across its tasks. Allocated at the first task that needs any of it, so
// that a client that never takes part, or takes part under a strategy with no client state,
// costs none of it.
struct SimClientKept {
  // The client's own state across its tasks (SCAFFOLD: c_i); empty until its first task that
  // carries a server_state, so clients that never took part cost no model-sized memory.
  ArrayRecord client_state;
  // Error feedback of the uplink chain: what the client's payloads have not carried yet
  // (empty until its first compressed upload). Advances when an upload reaches the server.
  std::vector<float> ef_residual;
  // The optimizer state the client keeps between its tasks (DiLoCo's inner AdamW moments);
  // empty until its first task that asks to keep it.
  ArrayRecord optimizer_state;
  // A Streaming DiLoCo worker's own model (trainer/streaming.h); empty until its first such task.
  KeptModel kept_model;
  // Under delta downlink (runtime/downlink.h): the clients' model version it holds, if any.
  std::optional<runtime::DownlinkDeltas::Held> downlink_held;
};

// What the simulator plays on the client's side, beyond the runtime core's client table: 32
// bytes, created when the client first takes part (a LazyTable in the simulator; a client
// that never does has none: docs/design/scale.md).
struct SimClientState {
  double offline_since = 0.0;
  // Virtual time at which the client's last task finished training (its upload started): a
  // streaming task's overlapped steps run from then on.
  double trained_at = 0.0;
  std::unique_ptr<SimClientKept> kept_state;  // null until needed
  bool online = true;
  // Whether the client has downloaded the model before (its first download is the one-time
  // distribution, left out of the synchronisation peak).
  bool downloaded = false;

  // What the client keeps, allocated on first use.
  SimClientKept& kept() {
    if (!kept_state) kept_state = std::make_unique<SimClientKept>();
    return *kept_state;
  }
  // What the client keeps, or nothing (all empty) when it has kept nothing yet.
  const SimClientKept& kept_or_empty() const {
    static const SimClientKept kEmpty;
    return kept_state ? *kept_state : kEmpty;
  }
};

// What a Streaming DiLoCo task (trainer/streaming.h) moves and overlaps in the simulator.
struct StreamingPlan {
  bool fragments = false;  // false: not a streaming task (the rest is unset)
  int64_t bytes_down = 0;  // the fragment merged (float32), or the whole model on a restart
  int64_t bytes_up = 0;    // the fragment synchronised (float32; with a codec, its payload)
  // Steps that ran while the previous round communicated (also for other tasks: the task
  // config's overlap_steps).
  int64_t overlap = 0;
};
// InvalidArgument naming the client for bad stream_* keys, and for a streaming task under
// secure aggregation (`secagg`) or a downlink codec (`downlink`), which it does not compose with.
Result<StreamingPlan> streaming_plan(const Task& task, const KeptModel& kept, bool secagg,
                                     bool downlink);

// A task of one model of several (task key "model", core/model_parts.h): the bytes that model
// takes as float32, which is what travels each way; nullopt for any other task.
// InvalidArgument for a model index beyond the models, and under compression or secure
// aggregation, which encode the whole vector.
Result<std::optional<int64_t>> model_part_bytes(const Task& task, bool compressed, bool secagg);

// Cores claimed by the simulations running in this process, each its training threads plus
// its loop. A loop spins for results (ResultSlot::take), and an idle training thread for its
// next task (ThreadPool::IdleSpin), only while the claims fit the machine: `cohort compare`
// running two one-thread simulations on two cores must not spin on both.
class CoreClaim {
 public:
  CoreClaim() = default;
  CoreClaim(const CoreClaim&) = delete;
  CoreClaim& operator=(const CoreClaim&) = delete;
  ~CoreClaim() { claimed() -= n_; }
  void claim(int64_t cores) {
    claimed() += cores - n_;
    n_ = cores;
  }
  // Whether every simulation's claim fits in `cores`.
  static bool fits(int64_t cores) { return claimed().load(std::memory_order_relaxed) <= cores; }
  // Whether it fits in this machine's cores.
  static bool fits_here() {
    static const int64_t cores = std::thread::hardware_concurrency();  // a file read: once
    return fits(cores);
  }

 private:
  static std::atomic<int64_t>& claimed() {
    static std::atomic<int64_t> total{0};
    return total;
  }
  int64_t n_ = 0;
};

// The runtime core's options for a simulation of `o` (sim_options.cc).
runtime::RuntimeOptions core_options(const SimOptions& o);

}  // namespace cohort::sim
