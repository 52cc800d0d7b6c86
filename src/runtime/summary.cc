#include "cohort/runtime/summary.h"

namespace cohort {

Json ClientStats::to_json() const {
  return {{"id", id},
          {"tasks", tasks},
          {"steps", steps},
          {"updates_accepted", updates_accepted},
          {"rejected", rejected},
          {"clipped", clipped},
          {"downweighted", downweighted},
          {"lost", lost},
          {"offline_periods", offline_periods},
          {"offline_s", offline_s},
          {"mean_staleness", mean_staleness},
          {"max_staleness", max_staleness}};
}

bool ClientStats::active() const {
  return tasks != 0 || steps != 0 || updates_accepted != 0 || rejected != 0 || clipped != 0 ||
         downweighted != 0 || lost != 0 || offline_periods != 0 || offline_s != 0.0 ||
         max_staleness != 0;
}

ClientStats ClientStats::from_json(const Json& j) {
  ClientStats c;
  c.id = j.at("id").get<ClientId>();
  c.tasks = j.at("tasks").get<int64_t>();
  c.steps = j.at("steps").get<int64_t>();
  c.updates_accepted = j.at("updates_accepted").get<int64_t>();
  c.rejected = j.at("rejected").get<int64_t>();
  c.clipped = j.at("clipped").get<int64_t>();
  c.downweighted = j.at("downweighted").get<int64_t>();
  c.lost = j.at("lost").get<int64_t>();
  c.offline_periods = j.at("offline_periods").get<int64_t>();
  c.offline_s = j.at("offline_s").get<double>();
  c.mean_staleness = j.at("mean_staleness").get<double>();
  c.max_staleness = j.at("max_staleness").get<int64_t>();
  return c;
}

Json RunSummary::client_stats_json() const {
  Json arr = Json::array();
  for (const ClientStats& c : client_stats) arr.push_back(c.to_json());
  return arr;
}

bool RunSummary::record_models(EvalResult& result, double t, double target,
                               const std::map<std::string, double>& targets) {
  if (models.size() != result.parts.size()) models.assign(result.parts.size(), ModelSummary{});
  bool any = false, all = true;
  for (size_t i = 0; i < result.parts.size(); ++i) {
    PartEval& e = result.parts[i];
    ModelSummary& m = models[i];
    m.name = e.name;
    auto it = targets.find(e.name);
    m.target_accuracy = it != targets.end() ? it->second : target;
    m.final_accuracy = e.accuracy;
    m.final_loss = e.loss;
    m.best_accuracy = std::max(m.best_accuracy, e.accuracy);
    if (m.target_accuracy > 0 && !m.time_to_target && e.accuracy >= m.target_accuracy) {
      m.time_to_target = t;
    }
    e.reached_target = m.time_to_target.has_value();
    if (m.target_accuracy > 0) {
      any = true;
      all = all && e.reached_target;
    }
  }
  return any && all;
}

Json RunSummary::to_json() const {
  Json j = {{"strategy", strategy},
            {"seed", seed},
            {"final_accuracy", final_accuracy},
            {"final_loss", final_loss},
            {"best_accuracy", best_accuracy},
            {"virtual_time_s", virtual_time_s},
            {"wall_time_s", wall_time_s},
            {"rounds", rounds},
            {"updates", updates},
            {"rejected", rejected},
            {"clipped", clipped},
            {"downweighted", downweighted},
            {"refused_commits", refused_commits},
            {"lost", lost},
            {"lost_dropout", lost_dropout},
            {"lost_offline", lost_offline},
            {"offline_periods", offline_periods},
            {"stalled", stalled},
            {"stop_reason", stop_reason},
            {"bytes_up", bytes_up},
            {"bytes_down", bytes_down},
            {"peak_bytes_per_s", peak_bytes_per_s},
            {"peak_sync_bytes_per_s", peak_sync_bytes_per_s},
            {"model_hash", model_hash}};
  j["time_to_target"] = time_to_target ? Json(*time_to_target) : Json(nullptr);
  if (!models.empty()) {
    Json m = Json::object();
    for (const ModelSummary& p : models) {
      m[p.name] = {{"target_accuracy", p.target_accuracy},
                   {"final_accuracy", p.final_accuracy},
                   {"final_loss", p.final_loss},
                   {"best_accuracy", p.best_accuracy},
                   {"time_to_target", p.time_to_target ? Json(*p.time_to_target) : Json(nullptr)}};
    }
    j["models"] = std::move(m);
  }
  if (final_fed_accuracy) j["final_fed_accuracy"] = *final_fed_accuracy;
  if (final_fed_worst10_accuracy) j["final_fed_worst10_accuracy"] = *final_fed_worst10_accuracy;
  auto by_client = [](const std::map<ClientId, double>& m) {
    Json o = Json::object();
    for (const auto& [c, v] : m) o[std::to_string(c)] = v;
    return o;
  };
  if (!robust_rule.empty()) {
    j["robust_rule"] = robust_rule;
    j["trust"] = by_client(trust);
  }
  if (!contribution_method.empty()) {
    j["contribution"] = {{"method", contribution_method}, {"values", by_client(contribution)}};
  }
  if (!attackers.empty()) j["attackers"] = attackers;
  if (epsilon) {
    j["epsilon"] = *epsilon;
    j["delta"] = delta;
    j["noise_multiplier"] = noise_multiplier;
    j["clip_norm"] = clip_norm;
  }
  if (secagg_groups > 0 || secagg_failed > 0) {
    j["secagg"] = {{"groups", secagg_groups}, {"failed", secagg_failed}};
  }
  return j;
}

}  // namespace cohort
