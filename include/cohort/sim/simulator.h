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
// of the rule named by the task's config (cohort/client/control_variates.h; SCAFFOLD): it
// keeps a per-client state (c_i), zero-initialised with the model's layout at the client's
// first such task (only clients that took part hold one), hands the trainer its gradient
// correction, sends Update::state_delta and stores the new state once the strategy accepts
// the update (a task the strategy sends that client while handling the update starts training
// after this decision, from the state it leaves). The server_state is counted in the bytes
// sent down and the state_delta in the bytes sent up (and so in the transfer times).
//
// Metrics. Emits "start", "eval" (initial model, every `eval_every` commits, and the final
// model), "round" (from RoundStrategy), "rejected", "lost" (one per lost task), "clients"
// (per-client statistics, once, just before the summary) and "summary" events to the
// MetricsHub (docs/formats.md). Staleness of an update = global version when it arrives -
// the version its task started from.
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
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cohort/client/trainer.h"
#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/sim/device_model.h"
#include "cohort/strategy/strategy.h"

namespace cohort::sim {

struct SimOptions {
  // Stop after this many commits (global model versions); 0 = no limit.
  int64_t max_commits = 0;
  // Stop when the virtual clock passes this; 0 = no limit. At least one limit must be set.
  double max_virtual_time_s = 0.0;
  // Evaluate on the test set every this many commits (also at version 0 and at the end).
  int64_t eval_every = 1;
  // Also evaluate at every multiple of this many virtual seconds (0 = off). Gives curves of
  // strategies with very different commit rates the same time points; with it, eval_every may
  // be 0 (no per-commit evaluation).
  double eval_interval_s = 0.0;
  // time_to_target in the summary: first virtual time the test accuracy reached this (0 = off).
  double target_accuracy = 0.0;
  // Training threads (clients trained in parallel); 0 = all cores.
  size_t threads = 0;
  uint64_t seed = 0;
  TrainConfig training;
  // Optional external stop flag (e.g. set by a SIGINT handler): checked before every event;
  // when set, the run ends early and still returns its summary.
  const std::atomic<bool>* stop_flag = nullptr;
  // Jitter, dropouts and availability of the clients (device_model.h); default: none.
  ClientDynamics dynamics;
  Status validate() const;
};

struct SimClient {
  Shard shard;
  // The client's held-out examples for federated evaluation (may be empty).
  Shard holdout;
  DeviceProfile device;
};

// Federated evaluation over clients' held-out splits.
struct FederatedEval {
  double accuracy = 0.0;          // example-weighted mean over clients
  double loss = 0.0;              // example-weighted mean over clients
  double worst10_accuracy = 0.0;  // mean accuracy of the worst 10% of clients (at least one)
};
// Summarises per-client results (clients with no examples are skipped). Ties in the worst-10%
// selection do not matter: only accuracies are averaged.
FederatedEval federated_summary(std::span<const EvalResult> per_client);

// What one client did over a run (the "clients" event and DIR/client_stats.json).
struct ClientStats {
  ClientId id = 0;
  int64_t tasks = 0;             // tasks dispatched to it
  int64_t steps = 0;             // local steps of its updates that arrived
  int64_t updates_accepted = 0;  // arrived and accepted by the strategy
  int64_t rejected = 0;          // arrived and rejected
  int64_t lost = 0;              // dropped out or lost when it went offline
  int64_t offline_periods = 0;   // times it went offline
  double offline_s = 0.0;        // virtual seconds spent offline (up to the end of the run)
  // Staleness over its updates that arrived (accepted or rejected); 0 when none arrived.
  double mean_staleness = 0.0;
  int64_t max_staleness = 0;
  Json to_json() const;
};

struct SimSummary {
  std::string strategy;
  uint64_t seed = 0;
  double final_accuracy = 0.0;
  double final_loss = 0.0;
  double best_accuracy = 0.0;
  double virtual_time_s = 0.0;
  double wall_time_s = 0.0;
  int64_t rounds = 0;    // commits (global model versions after the initial one)
  int64_t updates = 0;   // updates accepted by the strategy
  int64_t rejected = 0;  // updates the strategy rejected
  int64_t lost = 0;      // tasks that never returned (lost_dropout + lost_offline)
  int64_t lost_dropout = 0;
  int64_t lost_offline = 0;
  int64_t offline_periods = 0;  // times a client went offline, over all clients
  // The run ended because no work was left (see "End of a run"), not at a limit or a stop.
  bool stalled = false;
  int64_t bytes_up = 0;
  int64_t bytes_down = 0;
  std::string model_hash;
  std::optional<double> time_to_target;  // virtual seconds; nullopt if never reached
  // Last federated evaluation (clients' held-out splits); nullopt when no client holds out data.
  std::optional<double> final_fed_accuracy;
  std::optional<double> final_fed_worst10_accuracy;
  // One entry per client, by id. Not part of to_json() (see client_stats_json()).
  std::vector<ClientStats> client_stats;
  Json to_json() const;
  // The client_stats as a JSON array (DIR/client_stats.json).
  Json client_stats_json() const;
};

class Simulator {
 public:
  // `clients[i]` is client id i. `test` is the server-side evaluation set. `metrics` may be
  // null. Fails in run() (not here) on invalid options.
  Simulator(SimOptions options, TrainerFactory factory, std::vector<SimClient> clients,
            Shard test, MetricsHub* metrics);
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
  std::vector<SimClient> clients_;
  Shard test_;
  MetricsHub* metrics_;
  std::shared_ptr<const ArrayRecord> final_model_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace cohort::sim
