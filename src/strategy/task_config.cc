#include "cohort/strategy/task_config.h"

#include <cmath>

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

Result<std::optional<std::string>> task_optimizer(const ConfigRecord& config) {
  auto it = config.find(kOptimizerKey);
  if (it == config.end()) return std::optional<std::string>();
  if (const auto* s = std::get_if<std::string>(&it->second)) return std::optional<std::string>(*s);
  return Status::invalid_argument(std::string("task config '") + kOptimizerKey +
                                  "' must be a string");
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
