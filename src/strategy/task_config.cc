#include "cohort/strategy/task_config.h"

#include <cmath>

#include "cohort/core/format.h"

namespace cohort {
namespace {

// The numeric value of `key`, nullopt when absent; InvalidArgument when not a number.
Result<std::optional<double>> number_at(const ConfigRecord& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::optional<double>();
  if (const auto* d = std::get_if<double>(&it->second)) return std::optional<double>(*d);
  if (const auto* i = std::get_if<int64_t>(&it->second)) {
    return std::optional<double>(static_cast<double>(*i));
  }
  return Status::invalid_argument(std::string("task config '") + key + "' must be a number");
}

// An integer key (an integral double, as a JSON round trip may give, is accepted).
Result<int64_t> int_at(const ConfigRecord& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) {
    return Status::invalid_argument(std::string("task config '") + key + "' is missing");
  }
  if (const auto* i = std::get_if<int64_t>(&it->second)) return *i;
  if (const auto* d = std::get_if<double>(&it->second)) {
    if (std::isfinite(*d) && *d == std::floor(*d) && std::fabs(*d) < 9.0e15) {
      return static_cast<int64_t>(*d);
    }
  }
  return Status::invalid_argument(std::string("task config '") + key + "' must be an integer");
}

Status check_range(const char* key, double v, double lo, double hi) {
  if (v >= lo && v <= hi) return Status();
  return Status::invalid_argument(std::string("task config '") + key + "' must be in [" +
                                  format_number(lo) + ", " + format_number(hi) + "], got " +
                                  format_number(v));
}

}  // namespace

std::string_view client_state_rule_name(ClientStateRule rule) {
  switch (rule) {
    case ClientStateRule::kScaffold:
      return kScaffoldClientState;
    case ClientStateRule::kNone:
      break;
  }
  return "";
}

std::string known_client_state_rules() { return kScaffoldClientState; }

void set_task_lr(ConfigRecord& config, double lr) { config[kLrKey] = lr; }
void set_task_lr_scale(ConfigRecord& config, double scale) { config[kLrScaleKey] = scale; }
void set_task_prox_mu(ConfigRecord& config, double mu) { config[kProxMuKey] = mu; }
void set_task_client_state(ConfigRecord& config, ClientStateRule rule) {
  if (rule == ClientStateRule::kNone) {
    config.erase(kClientStateKey);
  } else {
    config[kClientStateKey] = std::string(client_state_rule_name(rule));
  }
}

void set_task_dp(ConfigRecord& config, double clip_norm, double noise_stddev) {
  config[kDpClipNormKey] = clip_norm;
  if (noise_stddev > 0) {
    config[kDpNoiseStddevKey] = noise_stddev;
  } else {
    config.erase(kDpNoiseStddevKey);
  }
}

Result<std::optional<TaskDp>> task_dp(const ConfigRecord& config) {
  COHORT_ASSIGN_OR_RETURN(std::optional<double> clip, number_at(config, kDpClipNormKey));
  COHORT_ASSIGN_OR_RETURN(std::optional<double> noise, number_at(config, kDpNoiseStddevKey));
  if (!clip) {
    if (noise) {
      return Status::invalid_argument(std::string("task config '") + kDpNoiseStddevKey +
                                      "' without '" + kDpClipNormKey + "'");
    }
    return std::optional<TaskDp>();
  }
  if (!(*clip > 0 && std::isfinite(*clip))) {
    return Status::invalid_argument(std::string("task config '") + kDpClipNormKey +
                                    "' must be a finite number > 0");
  }
  const double s = noise.value_or(0.0);
  if (!(s >= 0 && std::isfinite(s))) {
    return Status::invalid_argument(std::string("task config '") + kDpNoiseStddevKey +
                                    "' must be a finite number >= 0");
  }
  return std::optional<TaskDp>(TaskDp{*clip, s});
}

void set_task_optimizer(ConfigRecord& config, const std::string& optimizer) {
  config[kOptimizerKey] = optimizer;
}

void set_task_weight_decay(ConfigRecord& config, double weight_decay) {
  config[kWeightDecayKey] = weight_decay;
}

Result<std::optional<double>> task_weight_decay(const ConfigRecord& config) {
  return number_at(config, kWeightDecayKey);
}

void set_task_keep_optimizer_state(ConfigRecord& config, bool keep) {
  if (keep) {
    config[kKeepOptimizerStateKey] = true;
  } else {
    config.erase(kKeepOptimizerStateKey);
  }
}

void set_task_streaming(ConfigRecord& config, const TaskStreaming& s) {
  config[kStreamFragmentsKey] = s.fragments;
  config[kStreamFragmentKey] = s.fragment;
  config[kStreamBlockKey] = s.block;
  config[kStreamRoundKey] = s.round;
  config[kStreamMergeKey] = s.merge;
  config[kStreamOverlapKey] = s.overlap;
  config[kStreamAlphaKey] = s.alpha;
  if (s.merge_bytes > 0) config[kStreamMergeBytesKey] = s.merge_bytes;
}

void set_task_overlap_steps(ConfigRecord& config, int64_t steps) {
  if (steps > 0) {
    config[kOverlapStepsKey] = steps;
  } else {
    config.erase(kOverlapStepsKey);
  }
}

Result<int64_t> task_overlap_steps(const ConfigRecord& config) {
  if (config.count(kOverlapStepsKey) == 0) return int64_t{0};
  COHORT_ASSIGN_OR_RETURN(const int64_t n, int_at(config, kOverlapStepsKey));
  COHORT_RETURN_IF_ERROR(
      check_range(kOverlapStepsKey, static_cast<double>(n), 0, static_cast<double>(int64_t{1} << 53)));
  return n;
}

void set_task_model(ConfigRecord& config, int64_t index) { config[kModelKey] = index; }

Result<std::optional<int64_t>> task_model(const ConfigRecord& config) {
  if (config.count(kModelKey) == 0) return std::optional<int64_t>();
  COHORT_ASSIGN_OR_RETURN(const int64_t n, int_at(config, kModelKey));
  COHORT_RETURN_IF_ERROR(
      check_range(kModelKey, static_cast<double>(n), 0, static_cast<double>(int64_t{1} << 31)));
  return std::optional<int64_t>(n);
}

Result<std::optional<TaskStreaming>> task_streaming(const ConfigRecord& config) {
  if (config.count(kStreamFragmentsKey) == 0) return std::optional<TaskStreaming>();
  TaskStreaming s;
  COHORT_ASSIGN_OR_RETURN(s.fragments, int_at(config, kStreamFragmentsKey));
  COHORT_ASSIGN_OR_RETURN(s.fragment, int_at(config, kStreamFragmentKey));
  COHORT_ASSIGN_OR_RETURN(s.block, int_at(config, kStreamBlockKey));
  COHORT_ASSIGN_OR_RETURN(s.round, int_at(config, kStreamRoundKey));
  COHORT_ASSIGN_OR_RETURN(s.merge, int_at(config, kStreamMergeKey));
  COHORT_ASSIGN_OR_RETURN(s.overlap, int_at(config, kStreamOverlapKey));
  COHORT_ASSIGN_OR_RETURN(std::optional<double> alpha, number_at(config, kStreamAlphaKey));
  if (!alpha) {
    return Status::invalid_argument(std::string("task config '") + kStreamAlphaKey +
                                    "' is missing");
  }
  s.alpha = *alpha;
  const auto big = static_cast<double>(int64_t{1} << 53);
  const auto frags = static_cast<double>(s.fragments);
  COHORT_RETURN_IF_ERROR(check_range(kStreamFragmentsKey, frags, 1, big));
  COHORT_RETURN_IF_ERROR(
      check_range(kStreamFragmentKey, static_cast<double>(s.fragment), 0, frags - 1));
  COHORT_RETURN_IF_ERROR(check_range(kStreamBlockKey, static_cast<double>(s.block), 1, big));
  COHORT_RETURN_IF_ERROR(check_range(kStreamRoundKey, static_cast<double>(s.round), 0, big));
  COHORT_RETURN_IF_ERROR(
      check_range(kStreamMergeKey, static_cast<double>(s.merge), -1, frags - 1));
  COHORT_RETURN_IF_ERROR(check_range(kStreamOverlapKey, static_cast<double>(s.overlap), 0, big));
  COHORT_RETURN_IF_ERROR(check_range(kStreamAlphaKey, s.alpha, 0, 1));
  if (config.count(kStreamMergeBytesKey) > 0) {
    COHORT_ASSIGN_OR_RETURN(s.merge_bytes, int_at(config, kStreamMergeBytesKey));
    COHORT_RETURN_IF_ERROR(
        check_range(kStreamMergeBytesKey, static_cast<double>(s.merge_bytes), 0, big));
  }
  return std::optional<TaskStreaming>(s);
}

Result<std::optional<std::string>> task_optimizer(const ConfigRecord& config) {
  auto it = config.find(kOptimizerKey);
  if (it == config.end()) return std::optional<std::string>();
  if (const auto* s = std::get_if<std::string>(&it->second)) return std::optional<std::string>(*s);
  return Status::invalid_argument(std::string("task config '") + kOptimizerKey +
                                  "' must be a string");
}

void set_task_local_steps_default(ConfigRecord& config, bool is_default) {
  if (is_default) {
    config[kLocalStepsDefaultKey] = true;
  } else {
    config.erase(kLocalStepsDefaultKey);
  }
}

Result<bool> task_local_steps_default(const ConfigRecord& config) {
  auto it = config.find(kLocalStepsDefaultKey);
  if (it == config.end()) return false;
  if (const auto* b = std::get_if<bool>(&it->second)) return *b;
  return Status::invalid_argument(std::string("task config '") + kLocalStepsDefaultKey +
                                  "' must be a bool");
}

Result<bool> task_keep_optimizer_state(const ConfigRecord& config) {
  auto it = config.find(kKeepOptimizerStateKey);
  if (it == config.end()) return false;
  if (const auto* b = std::get_if<bool>(&it->second)) return *b;
  return Status::invalid_argument(std::string("task config '") + kKeepOptimizerStateKey +
                                  "' must be a bool");
}

Result<std::optional<double>> task_lr(const ConfigRecord& config) {
  return number_at(config, kLrKey);
}

Result<double> task_lr_scale(const ConfigRecord& config) {
  COHORT_ASSIGN_OR_RETURN(std::optional<double> scale, number_at(config, kLrScaleKey));
  if (!scale) return 1.0;
  if (!(std::isfinite(*scale) && *scale >= 0)) {
    return Status::invalid_argument(std::string("task config '") + kLrScaleKey +
                                    "' must be a finite number >= 0, got " + format_number(*scale));
  }
  return *scale;
}

Result<double> task_prox_mu(const ConfigRecord& config) {
  COHORT_ASSIGN_OR_RETURN(std::optional<double> mu, number_at(config, kProxMuKey));
  return mu.value_or(0.0);
}

Result<ClientStateRule> task_client_state(const ConfigRecord& config) {
  auto it = config.find(kClientStateKey);
  if (it == config.end()) return ClientStateRule::kNone;
  const std::string* rule = std::get_if<std::string>(&it->second);
  if (rule == nullptr) {
    return Status::invalid_argument(std::string("task config '") + kClientStateKey +
                                    "' must be a string naming a client-state rule (known: " +
                                    known_client_state_rules() + ")");
  }
  if (*rule == client_state_rule_name(ClientStateRule::kScaffold))
    return ClientStateRule::kScaffold;
  return Status::invalid_argument(std::string("task config '") + kClientStateKey +
                                  "': unknown client-state rule '" + *rule +
                                  "' (known: " + known_client_state_rules() + ")");
}

}  // namespace cohort
