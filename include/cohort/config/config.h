// SimulationConfig: the YAML file `cohort simulate`, `compare`, `serve` and `join` read, as a
// struct of the option structs that own their rules (DataConfig, PopulationOptions,
// ModelConfig, TrainConfig, RunConfig: each has a validate()). A deployment's own settings
// (DeployConfig) come from a file of their own (load_deploy_config). The loader reads
// types, calls those validate()s and tells where a bad value came from: the file and key, the
// value as written, and the --set override that set it.
//
// Reference (every key optional unless marked; defaults shown; docs/config.md has the
// full table and README a summary):
//
//   data:
//     dataset: fashion-mnist        # fashion-mnist | synthetic
//     path: /usr/share/datasets/fashion-mnist
//     train_limit: 0                # > 0: keep only the first N training examples
//     test_limit: 0                 # > 0: keep only the first N test examples
//     partition: dirichlet          # iid | dirichlet | shards
//     alpha: 0.5                    # dirichlet concentration
//     shards_per_client: 2          # shards
//     min_size: 10                  # dirichlet: min examples per client
//     size_skew: 0.0                # iid: client size skew
//     holdout_fraction: 0.0         # share of each client's data held out for federated eval
//     synthetic: {num_examples: 2000, test_examples: 1000, dim: 20, classes: 4,
//                 separation: 3.0, noise: 1.0}
//   clients:
//     count: 20
//     speed:      {distribution: constant, mean: 100}   # local steps / virtual second
//     up_mbps:    {distribution: constant, mean: 20}
//     down_mbps:  {distribution: constant, mean: 100}
//     latency_ms: {distribution: constant, mean: 20}
//     # a distribution: distribution (constant|normal|exponential|uniform|lognormal),
//     # mean, std, low, high, sigma, min, max  (see sim/device_model.h)
//     trace: null                   # CSV client,steps_per_s,up_mbps,down_mbps,latency_ms;
//                                   #   replaces the four distributions; with a trace, an
//                                   #   omitted count (or 0) = the trace's row count
//     jitter: 0.0                   # per-task compute-time factor max(0.05, N(1, jitter))
//     dropout: 0.0                  # probability in [0, 1) that a task never returns
//     task_timeout_factor: 3.0      # a dropout is noticed after this x expected duration
//     availability: {mean_online_s: 0, mean_offline_s: 60, distribution: exponential}
//                                   # on/off periods; mean_online_s 0 = always online
//   model:
//     name: mlp                     # logreg | mlp | cnn
//     hidden: [200, 200]            # mlp
//   training:
//     optimizer: sgd
//     lr: 0.05
//     momentum: 0.0
//     weight_decay: 0.0
//     batch_size: 32
//     local_epochs: 1.0
//     local_steps: 0                # > 0 overrides local_epochs
//   strategy:
//     name: fedavg                  # required; every other key is a strategy parameter,
//     fraction: 0.5                 #   validated by the strategy registry
//     min_clients: 2
//   strategies:                     # `cohort compare` only; not together with `strategy:`
//     - {name: fedavg, fraction: 0.5}
//     - {name: fedprox, label: prox-0.1, mu: 0.1}   # label: output directory and legend
//                                                   #   name (default: name; must be unique)
//   run:
//     rounds: 50                    # stop after N commits (0 = no limit)
//     max_virtual_time_s: 0         # stop at this virtual time (0 = no limit)
//     eval_every: 1                 # evaluate every N commits (0 = only by interval)
//     eval_interval_s: 0            # also every N virtual seconds (0 = off)
//     target_accuracy: 0.0          # for time_to_target (0 = off)
//     seed: 1
//     threads: 0                    # training threads; 0 = all cores
//   admission:                      # bounds on arriving updates (runtime/admission.h)
//     max_examples_factor: 1.0      # claimed examples <= this x what the client registered
//     max_examples: 0               # absolute cap (0 = none)
//     norm_policy: reject           # off | reject | clip | downweight
//     norm_factor: 10.0             # norm bound = this x median of recent accepted norms
//     norm_window: 50, norm_warmup: 5, max_norm: 0
//     max_steps_factor: 1.0, max_metrics: 32, max_metric_key_bytes: 64
//   compression:                    # codec chains (runtime/compression.h, docs/compression.md)
//     uplink: none                  # e.g. "topk:0.01 -> int8 -> zstd" or [topk:0.01, int8, zstd]
//     downlink: none                # the model going down, e.g. fp16 (no sparsifiers)
//   robust:                         # robust aggregation (docs/robustness.md); absent = off
//     rule: trimmed_mean            # mean|krum|multi_krum|median|trimmed_mean|
//                                   #   geometric_median|centered_clipping|norm_clip|flag
//     f: 1, m: 0, beta: 0.1, tau: 10, iterations: 1, max_iterations: 100, tolerance: 1e-6,
//     nu: 1e-6, max_norm: 0, flag_r: 1, flag_lambda: 0, flag_iterations: 1
//     bucketing: 0                  # s > 1: average random buckets of s updates first
//     client_momentum: 0            # beta in [0, 1): the rule sees per-client momenta
//     trust_rate: 0.25, trust_threshold: 0
//   contribution:                   # per-client contribution estimates; absent = off
//     method: none                  # none | loo | shapley
//     evaluations: 64, truncation: 0.01, utility: accuracy, validation_examples: 1000
//   attack:                         # simulated Byzantine clients (simulator only)
//     kind: none                    # sign_flip|scaling|gaussian|label_flip|alie|ipm|free_rider
//     fraction: 0.0                 # or clients: [ids]
//     start: 0, scale: 0, sigma: 1, z: 0, epsilon: 0.1, free_rider: zero
//   privacy:                        # docs/privacy.md; absent = off
//     dp:                           # client-level DP-FedAvg
//       noise_multiplier: 1.0       # z (or 0 with target_epsilon: derived from the budget)
//       clip_norm: 1.0, delta: 1e-5, target_epsilon: 8   # stop before exceeding it
//       side: server                # server | client (clients clip; noise by the server, or
//                                   #   distributed over clients under secagg)
//       adaptive_clipping: false, target_quantile: 0.5, clip_learning_rate: 0.2,
//       clipped_count_stddev: 0, conversion: improved   # improved | classic
//     secagg:                       # secure aggregation (Bonawitz et al.; SecAgg+)
//       enabled: true, threshold: 0.67, neighbours: 0, input_bits: 16, range: 0, bits: 0
//       dropout_before_masking: 0, dropout_after_masking: 0   # simulator only
// Errors name the key path: unknown keys ("run.round: unknown key (known: rounds, ...)"),
// wrong types ("training.lr: expected a number, got 'fast'"), and out-of-range values
// ("training.batch_size: must be >= 1, got 0"), prefixed with the file name.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/data/data_config.h"
#include "cohort/deploy/deploy_config.h"
#include "cohort/runtime/admission.h"
#include "cohort/runtime/compression.h"
#include "cohort/runtime/privacy.h"
#include "cohort/runtime/robustness.h"
#include "cohort/attack/attack.h"
#include "cohort/strategy/group_aggregation.h"
#include "cohort/runtime/run_config.h"
#include "cohort/sim/device_model.h"
#include "cohort/trainer/model_config.h"
#include "cohort/trainer/trainer.h"

namespace cohort {

struct StrategyConfig {
  std::string name = "fedavg";
  // Every key of the `strategy:` section (or of a `strategies:` item) except `name` and,
  // in a `strategies:` item, `label`. Checked by the strategy registry when the strategy is
  // built (runner/check.h), not by the loader.
  ConfigRecord params;
  // Set for `strategies:` items only: the item's `label`, or its `name` when absent. Unique
  // within the list and a safe file name (letters, digits, '.', '_', '-', '+'; not starting
  // with '.' or '-'), as `cohort compare` uses it as a directory name.
  std::string label;
  // `strategies:` items only: compression chains for this entry instead of the config's
  // `compression:` (keys `uplink` / `downlink`, a string or a list), so one comparison can
  // set codecs side by side. Empty = the config's.
  std::string uplink;
  std::string downlink;
  // `strategies:` items only: compression.downlink_delta for this entry; unset = the config's.
  std::optional<bool> downlink_delta;
  // `strategies:` items only: this entry's run.rounds (its own budget of commits, e.g. the same
  // compute for strategies that take different steps per round); 0 = the run's.
  int64_t rounds = 0;
  // `strategies:` items only: a `robust:` mapping replacing the config's section, or
  // `robust: none` turning it off for this entry (robust_set tells the two from absence).
  std::optional<RobustOptions> robust;
  bool robust_set = false;
  // `strategies:` items only: a `privacy:` mapping replacing the config's section, or
  // `privacy: none` turning it off for this entry (privacy_set tells the two from absence).
  runtime::PrivacyOptions privacy;
  bool privacy_set = false;
};

// Where a config came from, so that errors found after loading (a strategy parameter, a
// population too small for the strategy) name the file and the --set override like the
// loader's own errors do.
struct ConfigSource {
  std::string file;
  // (key path, "key.path=value") of every --set override, in order.
  std::vector<std::pair<std::string, std::string>> overrides;
  // The override that set `path` (or a parent or child of it), or null.
  const std::string* override_for(const std::string& path) const;
  // For an error whose message starts with a key path ("strategy.fraction: must be in (0, 1],
  // got 2"): "<file>: <message> (from override '...')". Other errors get the file prefix only.
  Status explain(const Status& error) const;
};

// One entry of `models:` (several models trained at once on the same clients, FedAST;
// trainer/multi_trainer.h): the model, its label (default: its name; names its arrays
// "<label>/<array>" and its figures in metrics) and its own target accuracy (0 = the run's).
struct ModelEntry {
  std::string label;
  ModelConfig model;
  double target_accuracy = 0.0;
};

struct SimulationConfig {
  DataConfig data;
  sim::PopulationOptions clients;
  ModelConfig model;
  // `models:` instead of `model:`; empty for a run of one model.
  std::vector<ModelEntry> models;
  TrainConfig training;
  StrategyConfig strategy;
  // The `strategies:` list (`cohort compare`), in file order; empty when absent. A config
  // never has both a `strategy:` section and a `strategies:` list (a load error).
  std::vector<StrategyConfig> strategies;
  RunConfig run;
  // Bounds every arriving update passes (runtime/admission.h), in both runtimes.
  AdmissionOptions admission;
  // Codec chains of updates going up and models going down (runtime/compression.h).
  runtime::CompressionOptions compression;
  // Robust aggregation (robust:, nullopt when absent), contribution estimates
  // (contribution:) and simulated attackers (attack:); docs/robustness.md.
  std::optional<RobustOptions> robust;
  runtime::ContributionSettings contribution;
  int64_t contribution_validation_examples = 1000;
  // Differential privacy and secure aggregation (privacy:; docs/privacy.md).
  runtime::PrivacyOptions privacy;
  attack::AttackOptions attack;
  ConfigSource source;
};

// What a config is loaded for. A simulation needs a budget in the config (run.rounds or
// run.max_virtual_time_s); a deployment may stop on its wall-clock budget instead
// (deploy.max_wall_s), checked by `cohort serve`.
enum class ConfigUse { kSimulation, kDeployment };

// Parses YAML text. `source` names it in errors (a file name). `overrides` are
// "key.path=value" strings (the CLI's --set) applied on top of the text before validation;
// the value is parsed as YAML ("0.1", "[100, 100]", "normal").
Result<SimulationConfig> parse_simulation_config(const std::string& yaml_text,
                                                 const std::string& source,
                                                 const std::vector<std::string>& overrides = {},
                                                 ConfigUse use = ConfigUse::kSimulation);
// Reads and parses a file; NotFound naming it if it cannot be read.
Result<SimulationConfig> load_simulation_config(const std::string& path,
                                                const std::vector<std::string>& overrides = {},
                                                ConfigUse use = ConfigUse::kSimulation);

// The deployment's own file (`cohort serve --deploy FILE`, docs/config.md "Deployment"):
// top-level keys listen, tokens, cert, key, insecure, max_wall_s, checkpoint_dir,
// keep_checkpoints, client_timeout_s, heartbeat_interval_s, task_timeout_s,
// max_concurrent_pushes, chunk_bytes, pull_wait_s, done_grace_s, server_eval. Types are
// checked here; DeployConfig::validate() runs once the serve command's flags are applied.
// `overrides` are "key=value" strings like --set. Errors as for the simulation config.
Result<DeployConfig> parse_deploy_config(const std::string& yaml_text, const std::string& source,
                                         const std::vector<std::string>& overrides = {});
Result<DeployConfig> load_deploy_config(const std::string& path,
                                        const std::vector<std::string>& overrides = {});
// The deploy file's keys as JSON (serve's config echo).
Json to_json(const DeployConfig& config);
// The robust: section's keys (every one, defaults filled in).
Json to_json(const RobustOptions& options);
// The privacy: section's keys: dp and secagg, each only when on.
Json to_json(const runtime::PrivacyOptions& options);
// The resolved config (every key, defaults filled in), for DIR/config.json. With a
// non-empty `strategies` list it holds `strategies` (each item with its label) instead of
// `strategy`, so the JSON reads back as the same config.
Json to_json(const SimulationConfig& config);

}  // namespace cohort
