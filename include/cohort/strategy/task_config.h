// The task-config keys Cohort itself defines, and typed access to them.
//
// Task::config is a string-keyed ConfigRecord (Flower's vocabulary) because it travels to
// clients as is: over gRPC (PullTaskReply.config, docs/wire_format.md) and to user trainers,
// which may read keys of their own. The keys below are part of the Strategy/Task contract: a
// strategy sets them with the typed setters, runtimes and trainers read them with the typed
// getters, so no file spells a key or a rule name itself.
//
//   key            type    set by          meaning
//   "lr"           double  (any strategy)  overrides training.lr for this task (must be > 0)
//   "prox_mu"      double  FedProx         proximal term mu/2 ||w - w_start||^2 (must be >= 0)
//   "client_state" string  SCAFFOLD        names the client-state rule the runtime applies
//                                          with Task::server_state (trainer/control_variates.h)
//   "dp_clip_norm" double  the runtime     client-side DP: the client clips its delta to this
//                                          L2 norm before it leaves (docs/privacy.md)
//   "dp_noise_stddev" double the runtime   distributed DP noise: the client adds N(0, s^2) to
//                                          each coordinate of its clipped delta
//   "optimizer"    string  DiLoCo, DDP     overrides training.optimizer ("sgd", "adamw")
//   "weight_decay" double  DDP             overrides training.weight_decay (must be >= 0)
//   "keep_optimizer_state" bool DiLoCo     the client keeps its optimizer's state (AdamW's
//                                          moments) from one of its tasks to the next instead
//                                          of starting each task fresh (DiLoCo's inner state)
//
// Thread safety: plain functions over the values they are given.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort {

inline constexpr char kLrKey[] = "lr";
inline constexpr char kProxMuKey[] = "prox_mu";
inline constexpr char kClientStateKey[] = "client_state";
inline constexpr char kDpClipNormKey[] = "dp_clip_norm";
inline constexpr char kDpNoiseStddevKey[] = "dp_noise_stddev";
inline constexpr char kOptimizerKey[] = "optimizer";
inline constexpr char kWeightDecayKey[] = "weight_decay";
inline constexpr char kKeepOptimizerStateKey[] = "keep_optimizer_state";
// The value of "client_state" that names SCAFFOLD's rule.
inline constexpr char kScaffoldClientState[] = "scaffold";

// Client-state rules a task can name (the per-client memory some algorithms keep).
enum class ClientStateRule {
  kNone,      // no client state (no "client_state" key)
  kScaffold,  // SCAFFOLD's control variates, option II (docs/strategies.md, SCAFFOLD)
};
// The rule's name on the wire and in configs ("scaffold"); "" for kNone.
std::string_view client_state_rule_name(ClientStateRule rule);
// The known rule names, for messages ("scaffold").
std::string known_client_state_rules();

// Typed setters.
void set_task_lr(ConfigRecord& config, double lr);
void set_task_prox_mu(ConfigRecord& config, double mu);
void set_task_client_state(ConfigRecord& config, ClientStateRule rule);
void set_task_dp(ConfigRecord& config, double clip_norm, double noise_stddev);
void set_task_optimizer(ConfigRecord& config, const std::string& optimizer);
void set_task_weight_decay(ConfigRecord& config, double weight_decay);
void set_task_keep_optimizer_state(ConfigRecord& config, bool keep);

// Typed getters. Absent keys give nullopt / 0 / kNone. A key of the wrong type (e.g. a string
// "lr") is InvalidArgument naming the key, as is an unknown client-state rule (listing the
// known ones). Ranges are checked where the value is used (TrainConfig::validate for the lr).
Result<std::optional<double>> task_lr(const ConfigRecord& config);
Result<double> task_prox_mu(const ConfigRecord& config);
Result<ClientStateRule> task_client_state(const ConfigRecord& config);
// Client-side DP: the clip norm (nullopt: the task asks for none) and the noise to add (0 =
// none). InvalidArgument for a clip norm that is not > 0 or a negative / non-finite stddev.
struct TaskDp {
  double clip_norm = 0.0;
  double noise_stddev = 0.0;
};
Result<std::optional<TaskDp>> task_dp(const ConfigRecord& config);
// The optimizer a task asks for (nullopt: the run's); InvalidArgument when not a string (the
// name is checked by TrainConfig::validate). Whether the client keeps its optimizer state.
Result<std::optional<std::string>> task_optimizer(const ConfigRecord& config);
Result<bool> task_keep_optimizer_state(const ConfigRecord& config);
Result<std::optional<double>> task_weight_decay(const ConfigRecord& config);

}  // namespace cohort
