// RunSummary and ClientStats: what a run did, the same fields for a simulation and a
// deployment (DIR/summary.json, DIR/client_stats.json and the "summary" / "clients" metrics
// events; docs/formats.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cohort/core/eval_result.h"
#include "cohort/core/metrics.h"
#include "cohort/core/types.h"

namespace cohort {

// What one client did over a run.
struct ClientStats {
  ClientId id = 0;
  int64_t tasks = 0;             // tasks dispatched to it
  int64_t steps = 0;             // local steps of its updates that arrived
  int64_t updates_accepted = 0;  // arrived and accepted by the strategy
  int64_t rejected = 0;          // arrived and rejected (by admission or the strategy)
  int64_t clipped = 0;           // accepted after admission clipped their norm
  int64_t downweighted = 0;      // accepted with their examples scaled down for their norm
  int64_t lost = 0;              // never came back (dropout, offline, timeout, ...)
  int64_t offline_periods = 0;   // times it went offline (simulated availability)
  double offline_s = 0.0;        // seconds spent offline (up to the end of the run)
  // Staleness over its updates that arrived (accepted or rejected); 0 when none arrived.
  double mean_staleness = 0.0;
  int64_t max_staleness = 0;
  // Whether any figure is non-zero (the client took part).
  bool active() const;
  Json to_json() const;
  // Appends to_json()'s object as compact text without building it (a million clients'
  // statistics stream in bounded memory); parses back equal to to_json().
  void append_json(std::string& out) const;
  // The inverse of to_json (checkpoints); throws nlohmann::json exceptions on bad input.
  static ClientStats from_json(const Json& j);
};

// One model's figures over a run that trains several at once (`models:`).
struct ModelSummary {
  std::string name;
  double target_accuracy = 0.0;  // 0 = none
  double final_accuracy = 0.0;
  double final_loss = 0.0;
  double best_accuracy = 0.0;
  std::optional<double> time_to_target;  // first time its accuracy reached its target
};

struct RunSummary {
  std::string strategy;
  uint64_t seed = 0;
  double final_accuracy = 0.0;
  double final_loss = 0.0;
  double best_accuracy = 0.0;
  double virtual_time_s = 0.0;  // the host's clock at the end (virtual, or wall in deployment)
  double wall_time_s = 0.0;
  // The simulator: wall seconds of its event loop alone, i.e. wall_time_s without registering
  // the population, the first and the last evaluation (bench population's overhead). Like
  // every wall time it differs between identical runs, so it stays out of to_json().
  double loop_wall_s = 0.0;
  int64_t rounds = 0;    // commits (global model versions after the initial one)
  int64_t updates = 0;   // updates accepted by the strategy
  int64_t rejected = 0;  // updates rejected (by admission or by the strategy)
  int64_t clipped = 0;       // accepted updates whose norm admission clipped
  int64_t downweighted = 0;  // accepted updates admission down-weighted for their norm
  int64_t refused_commits = 0;  // commits refused because the model would not be finite
  int64_t lost = 0;      // tasks that never returned, for any reason
  int64_t lost_dropout = 0;
  int64_t lost_offline = 0;
  int64_t offline_periods = 0;  // times a client went offline, over all clients
  // The run ended because no work was left, not at a limit or a stop.
  bool stalled = false;
  // Why the run ended: "rounds", "max_time", "stalled", "stopped", "failed", ...
  std::string stop_reason;
  int64_t bytes_up = 0;
  int64_t bytes_down = 0;
  // Bytes moved (up and down) in the busiest second of the run's clock; 0 = not measured.
  double peak_bytes_per_s = 0.0;
  // The same without each client's first download of the model (bandwidth.h): the busiest
  // second of the method's own synchronisation.
  double peak_sync_bytes_per_s = 0.0;
  std::string model_hash;
  // Host seconds; nullopt if never reached. With several models: when the last of the models
  // with a target reached it.
  std::optional<double> time_to_target;
  // Several models at once: each model's figures, in the order of `models:`; empty otherwise.
  std::vector<ModelSummary> models;
  // Records an evaluation's per-model figures at time `t` (targets by model name, else
  // `target`) and marks result.parts[i].reached_target. Returns whether every model with a
  // target has reached it (false when none has a target).
  bool record_models(EvalResult& result, double t, double target,
                     const std::map<std::string, double>& targets);
  // Last federated evaluation (clients' held-out splits); nullopt when no client holds out data.
  std::optional<double> final_fed_accuracy;
  std::optional<double> final_fed_worst10_accuracy;
  // Robust aggregation (robust: section): the rule, and each client's trust score at the end
  // (clients that were in at least one aggregation group). Empty when off.
  std::string robust_rule;
  std::map<ClientId, double> trust;
  // Contribution estimates: the method ("loo", "shapley"; empty = off) and per-client sums of
  // the per-group values.
  std::string contribution_method;
  std::map<ClientId, double> contribution;
  // Simulated attackers (attack: section), ascending; empty without an attack.
  std::vector<ClientId> attackers;
  // Differential privacy (privacy.dp): the (epsilon, delta) guarantee the run spent, the
  // noise multiplier and the clip norm at the end. nullopt / 0 when off.
  std::optional<double> epsilon;
  double delta = 0.0;
  double noise_multiplier = 0.0;
  double clip_norm = 0.0;
  // Secure aggregation (privacy.secagg): groups summed by the protocol and those it failed.
  int64_t secagg_groups = 0;
  int64_t secagg_failed = 0;
  // One entry per client that took part (any figure non-zero: it got a task, went offline,
  // ...), ascending by id; the other clients' figures are all zero and only counted, in
  // idle_clients, so that a run over a million clients that sampled a few thousand reports a
  // few thousand. Not part of to_json() (see client_stats_json()).
  std::vector<ClientStats> client_stats;
  int64_t idle_clients = 0;
  Json to_json() const;
  // The client_stats as a JSON array.
  Json client_stats_json() const;
  // The same array appended as compact text (the "clients" event), and streamed to `path`
  // one client per line (DIR/client_stats.json), neither built as a Json value.
  void append_client_stats(std::string& out) const;
  Status write_client_stats(const std::string& path) const;
};

}  // namespace cohort
