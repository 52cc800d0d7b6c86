#include "cohort/runtime/summary.h"

#include <charconv>
#include <cmath>
#include <string_view>
#include <type_traits>

namespace cohort {

namespace {

// Every field of ClientStats in the order of its JSON object: the one list that to_json,
// from_json and the streamed text (append_json) all follow.
template <typename Stats, typename F>
void visit_fields(Stats& c, F&& f) {
  f("id", c.id);
  f("tasks", c.tasks);
  f("steps", c.steps);
  f("updates_accepted", c.updates_accepted);
  f("rejected", c.rejected);
  f("clipped", c.clipped);
  f("downweighted", c.downweighted);
  f("lost", c.lost);
  f("offline_periods", c.offline_periods);
  f("offline_s", c.offline_s);
  f("mean_staleness", c.mean_staleness);
  f("max_staleness", c.max_staleness);
}

// A number as nlohmann::json writes it: integers in full, doubles shortest round-trip with a
// ".0" when they look integral, non-finite ones as null.
void append_number(std::string& out, int64_t v) {
  char buf[24];
  const char* end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  out.append(buf, static_cast<size_t>(end - buf));
}

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  const char* end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  out.append(buf, static_cast<size_t>(end - buf));
  if (std::string_view(buf, static_cast<size_t>(end - buf)).find_first_of(".e") ==
      std::string_view::npos) {
    out += ".0";
  }
}

}  // namespace

Json ClientStats::to_json() const {
  Json j = Json::object();
  visit_fields(*this, [&j](const char* key, const auto& v) {
    j[key] = v;
  });
  return j;
}

void ClientStats::append_json(std::string& out) const {
  char sep = '{';
  visit_fields(*this, [&](const char* key, const auto& v) {
    out += sep;
    out += '"';
    out += key;
    out += "\":";
    append_number(out, v);
    sep = ',';
  });
  out += '}';
}

bool ClientStats::active() const {
  return tasks != 0 || steps != 0 || updates_accepted != 0 || rejected != 0 || clipped != 0 ||
         downweighted != 0 || lost != 0 || offline_periods != 0 || offline_s != 0.0 ||
         max_staleness != 0;
}

ClientStats ClientStats::from_json(const Json& j) {
  ClientStats c;
  visit_fields(c, [&j](const char* key, auto& v) {
    v = j.at(key).get<std::decay_t<decltype(v)>>();
  });
  return c;
}

Json RunSummary::client_stats_json() const {
  Json arr = Json::array();
  for (const ClientStats& c : client_stats) arr.push_back(c.to_json());
  return arr;
}

void RunSummary::append_client_stats(std::string& out) const {
  out += '[';
  for (size_t i = 0; i < client_stats.size(); ++i) {
    if (i > 0) out += ',';
    client_stats[i].append_json(out);
  }
  out += ']';
}

Status RunSummary::write_client_stats(const std::string& path) const {
  return write_json_array_file(path, client_stats.size(), [this](size_t i, std::string& out) {
    client_stats[i].append_json(out);
  });
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
