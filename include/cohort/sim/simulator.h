// Simulator: runs a Strategy over simulated heterogeneous clients on a virtual clock.
//
// Time. A discrete-event engine advances a virtual clock through a queue of timestamped
// events, ordered by (time, sequence number) so ties break deterministically. A task of Q
// local steps for client c, dispatched at time t with a model of B bytes, arrives at
//     t + 2 * latency_c + B / down_c + Q / speed_c + B_up / up_c
// where B_up is the update's byte count. Nothing sleeps: an hour of virtual time costs only
// the real training it contains.
//
// Training. Real local training (a Trainer from the factory, one per pool thread, LibTorch
// set to one intra-op thread) starts on a thread pool as soon as a task is dispatched, so
// clients train in parallel; results are handed to the strategy in virtual-time order. Each
// task's randomness is seeded by (run seed, client, task number), so a run with a given seed
// produces the same final model hash whatever the thread count.
//
// Heterogeneity and availability (SimOptions::dynamics, device_model.h). A task's compute
// time Q / speed_c is multiplied by its jitter factor. A client with availability alternates
// online and offline periods (all clients start online): an offline client is not idle; if it
// goes offline with a task in flight, the task is lost at that moment (on_task_lost, reason
// "offline"; its result is discarded); when it comes back online the strategy gets
// on_client_idle. A task that drops out (probability `dropout`, decided at dispatch; it is
// never trained) is reported lost at dispatch time + task_timeout_factor x its expected,
// jitter-free duration (reason "dropout"), and its client becomes idle right after that
// report (on_client_idle). Lost tasks count their download but no upload.
//
// Client state. For a task carrying Task::server_state the simulator plays the client's part
// of the rule named by the task's config (cohort/trainer/control_variates.h; SCAFFOLD): it
// keeps a per-client state (c_i), zero-initialised with the model's layout at the client's
// first such task (only clients that took part hold one), hands the trainer its gradient
// correction, sends Update::state_delta and stores the new state once the strategy accepts
// the update (a task the strategy sends that client while handling the update starts training
// after this decision, from the state it leaves). The server_state is counted in the bytes
// sent down and the state_delta in the bytes sent up (and so in the transfer times).
//
// Runtime core. The client table, task bookkeeping, update admission, counters, metric events,
// evaluation cadence and budgets are the runtime core's (runtime/runtime.h), shared with the
// deployment server; this file adds the virtual clock, the device models and the pool of
// trainers. Metrics: "start", "eval" (initial model, every `eval_every` commits, every
// `eval_interval_s` virtual seconds and the final model), "round" (from RoundStrategy),
// "rejected", "lost" (one per lost task), "clients" and "summary" (docs/formats.md).
//
// End of a run: a limit (max_commits, max_virtual_time_s), the stop flag, or no work left:
// the event queue is empty, or (with availability, whose periods never end) 100 x
// num_clients availability changes since the last dispatch each found nothing in flight and
// no timer pending. Running out of work sets SimSummary::stalled.
//
// Thread safety: run() is called from one thread; stop() may be called from any thread
// (e.g. a SIGINT handler's flag poller), after which run() returns at the next event.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cohort/attack/attack.h"
#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/runtime/admission.h"
#include "cohort/runtime/compression.h"
#include "cohort/runtime/evaluation.h"
#include "cohort/runtime/privacy.h"
#include "cohort/runtime/robustness.h"
#include "cohort/runtime/run_config.h"
#include "cohort/runtime/summary.h"
#include "cohort/sim/device_model.h"
#include "cohort/sim/remote_training.h"
#include "cohort/strategy/strategy.h"
#include "cohort/trainer/trainer.h"

namespace cohort::sim {

struct SimOptions {
  // Budget (rounds, max_virtual_time_s: at least one must be set), evaluation cadence
  // (eval_every commits, eval_interval_s virtual seconds), target_accuracy, seed and training
  // threads (0 = all cores): the YAML run: section as it is. Defaults for API users: no
  // commit limit and seed 0 (the YAML loader's defaults are 50 rounds and seed 1).
  RunConfig run{.rounds = 0, .seed = 0};
  // Several models at once (trainer/multi_trainer.h): each model's target accuracy by name
  // (absent: run.target_accuracy); time_to_target is when the last one reached its own.
  std::map<std::string, double> model_targets;
  TrainConfig training;
  // A model file to start from (model.init, runtime/model_file.h); empty = the trainer's
  // seeded initialisation.
  std::string init_model;
  // Optional external stop flag (e.g. set by a SIGINT handler): checked before every event;
  // when set, the run ends early and still returns its summary.
  const std::atomic<bool>* stop_flag = nullptr;
  // Jitter, dropouts and availability of the clients (device_model.h); default: none.
  ClientDynamics dynamics;
  // Bounds every update passes before the strategy (runtime/admission.h).
  AdmissionOptions admission;
  // Uplink and downlink codec chains (runtime/compression.h); none by default.
  runtime::CompressionOptions compression;
  // Robust aggregation (the robust: section; nullopt = off) and contribution estimates, on a
  // seeded sample of contribution.validation_examples examples of the test set
  // (runtime/robustness.h).
  std::optional<RobustOptions> robust;
  runtime::ContributionSettings contribution;
  int64_t contribution_validation_examples = 1000;
  // Simulated Byzantine clients (attack/attack.h, sim/adversary.h); kind "none" by default.
  attack::AttackOptions attack;
  // Differential privacy and secure aggregation (runtime/privacy.h); off by default.
  runtime::PrivacyOptions privacy;
  // Where tasks train when not on the simulator's own pool (remote_training.h; e.g. MPI
  // ranks); null = the pool. Evaluation stays on the pool.
  std::shared_ptr<RemoteTraining> remote_training;
  // InvalidArgument naming the key: run, its budget, dynamics and training.
  Status validate() const;
};

struct SimClient {
  Shard shard;
  // The client's held-out examples for federated evaluation (may be empty).
  Shard holdout;
  DeviceProfile device;
};

// The simulator's summary is the runtime core's (runtime/summary.h); the names stay for
// readability of simulator code and tests.
using SimSummary = RunSummary;

class Simulator {
 public:
  // `clients[i]` is client id i. `test` is the server-side evaluation set. `metrics` may be
  // null. Fails in run() (not here) on invalid options.
  Simulator(SimOptions options, TrainerFactory factory, std::vector<SimClient> clients, Shard test,
            MetricsHub* metrics);
  // The same over a population shared with the caller (not copied: a scenario of a million
  // clients run by several strategies in turn holds it once).
  Simulator(SimOptions options, TrainerFactory factory,
            std::shared_ptr<const std::vector<SimClient>> clients, Shard test, MetricsHub* metrics);
  ~Simulator();

  // Runs `strategy` from freshly initialised parameters (init_params(seed)) until a limit is
  // reached or no work is left. Returns the summary (also emitted as a "summary" event).
  // Errors: InvalidArgument for bad options (including dynamics) or empty clients, or for a
  // task whose client-state rule is unknown or inconsistent (control_variates.h); the first
  // training failure (Internal) aborts the run.
  Result<SimSummary> run(Strategy& strategy);
  // The final global model of the last run().
  std::shared_ptr<const ArrayRecord> final_model() const { return final_model_; }
  void stop() { stop_requested_.store(true); }

 private:
  class Impl;
  SimOptions options_;
  TrainerFactory factory_;
  std::shared_ptr<const std::vector<SimClient>> clients_;
  Shard test_;
  MetricsHub* metrics_;
  std::shared_ptr<const ArrayRecord> final_model_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace cohort::sim
