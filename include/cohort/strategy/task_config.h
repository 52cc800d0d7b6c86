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
//   "lr_scale"     double  RoundStrategy   multiplies the task's learning rate (training.lr or
//                                          "lr"): the round's lr schedule factor (>= 0)
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
//   "overlap_steps" int    eager_diloco    the task's first N steps may run while the client's
//                                          previous update is still travelling (the simulator
//                                          starts them when the previous training ended)
//   "model"        int     FedAST          with several models (`models:`, core/model_parts.h)
//                                          the task trains model N only and only that model
//                                          travels; without it a task trains every model
//   "local_steps_default" bool a deployment client (relay) the task's step count is the
//                                          upstream run's default for this client: an aggregator
//                                          gives its own clients their own default instead
//   "stream_*"     numbers Streaming DiLoCo the client keeps its own model between tasks and
//                                          synchronises one fragment of it per task
//                                          (trainer/streaming.h, TaskStreaming below)
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
inline constexpr char kLrScaleKey[] = "lr_scale";
inline constexpr char kProxMuKey[] = "prox_mu";
inline constexpr char kClientStateKey[] = "client_state";
inline constexpr char kDpClipNormKey[] = "dp_clip_norm";
inline constexpr char kDpNoiseStddevKey[] = "dp_noise_stddev";
inline constexpr char kOptimizerKey[] = "optimizer";
inline constexpr char kWeightDecayKey[] = "weight_decay";
inline constexpr char kKeepOptimizerStateKey[] = "keep_optimizer_state";
inline constexpr char kOverlapStepsKey[] = "overlap_steps";
inline constexpr char kModelKey[] = "model";
inline constexpr char kLocalStepsDefaultKey[] = "local_steps_default";
inline constexpr char kStreamFragmentsKey[] = "stream_fragments";
inline constexpr char kStreamFragmentKey[] = "stream_fragment";
inline constexpr char kStreamBlockKey[] = "stream_block";
inline constexpr char kStreamRoundKey[] = "stream_round";
inline constexpr char kStreamMergeKey[] = "stream_merge";
inline constexpr char kStreamOverlapKey[] = "stream_overlap";
inline constexpr char kStreamAlphaKey[] = "stream_alpha";
inline constexpr char kStreamMergeBytesKey[] = "stream_merge_bytes";
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
void set_task_lr_scale(ConfigRecord& config, double scale);
void set_task_prox_mu(ConfigRecord& config, double mu);
void set_task_client_state(ConfigRecord& config, ClientStateRule rule);
void set_task_dp(ConfigRecord& config, double clip_norm, double noise_stddev);
void set_task_optimizer(ConfigRecord& config, const std::string& optimizer);
void set_task_weight_decay(ConfigRecord& config, double weight_decay);
void set_task_keep_optimizer_state(ConfigRecord& config, bool keep);

void set_task_overlap_steps(ConfigRecord& config, int64_t steps);
void set_task_model(ConfigRecord& config, int64_t index);
// Marks (or unmarks) the task's step count as the upstream run's default ("local_steps_default").
void set_task_local_steps_default(ConfigRecord& config, bool is_default);

// A Streaming DiLoCo task (trainer/streaming.h): the client trains the model it keeps, merges
// fragment `merge` of the task's model into it after `overlap` steps (the communication of the
// previous round overlapped those steps) with mixing `alpha`, and returns the outer gradient of
// fragment `fragment` only. Fragments of the flat vector: core/fragments.h (P = `fragments`,
// blocks of `block` elements). merge = -1: the client (re)starts from the task's model (its
// first task, or it missed the previous round). `round` numbers the task's round; a client
// merges only when its kept model trained the round before, and otherwise restarts.
struct TaskStreaming {
  int64_t fragments = 1;
  int64_t fragment = 0;
  int64_t block = 1;
  int64_t round = 0;
  int64_t merge = -1;
  int64_t overlap = 0;
  double alpha = 0.0;
  // What the merged fragment costs to send: the encoded size of its change when the strategy
  // quantizes it (streaming_diloco's merge_codec), 0 = the fragment in float32. Optional key.
  int64_t merge_bytes = 0;
};
void set_task_streaming(ConfigRecord& config, const TaskStreaming& s);

// Typed getters. Absent keys give nullopt / 0 / kNone. A key of the wrong type (e.g. a string
// "lr") is InvalidArgument naming the key, as is an unknown client-state rule (listing the
// known ones). Ranges are checked where the value is used (TrainConfig::validate for the lr).
Result<std::optional<double>> task_lr(const ConfigRecord& config);
// 1 without the key; InvalidArgument for a value that is not a finite number >= 0.
Result<double> task_lr_scale(const ConfigRecord& config);
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
// nullopt without "stream_fragments". InvalidArgument naming the key for a missing or non-
// integer key or a value out of range (fragments >= 1, 0 <= fragment < fragments, block >= 1,
// round >= 0, -1 <= merge < fragments, overlap >= 0, alpha in [0, 1], merge_bytes >= 0).
Result<std::optional<TaskStreaming>> task_streaming(const ConfigRecord& config);
// 0 without the key; InvalidArgument for a non-integer or negative value.
Result<int64_t> task_overlap_steps(const ConfigRecord& config);
// The model a task trains (nullopt: every model); InvalidArgument for a non-integer or
// negative value (the upper bound is checked where the models are known).
Result<std::optional<int64_t>> task_model(const ConfigRecord& config);
// Whether the step count is the upstream run's default (false without the key);
// InvalidArgument when the key is not a bool.
Result<bool> task_local_steps_default(const ConfigRecord& config);

}  // namespace cohort
