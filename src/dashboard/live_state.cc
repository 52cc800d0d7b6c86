#include "cohort/dashboard/live_state.h"

#include <algorithm>
#include <cmath>

namespace cohort::dashboard {
namespace {

// The commit events (docs/formats.md): each makes a new global version.
bool is_commit(const std::string& name) {
  return name == "round" || name == "update" || name == "buffer_flush" ||
         name == "model_step" || name == "group";
}

// Copies the fields of `from` named in `keys` that are present.
Json pick(const Json& from, std::initializer_list<const char*> keys) {
  Json out = Json::object();
  for (const char* k : keys) {
    auto it = from.find(k);
    if (it != from.end()) out[k] = *it;
  }
  return out;
}

double number_or(const Json& j, const char* key, double fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

Json row_json(const LiveClient& c) {
  return {{"id", c.id},
          {"state", to_string(c.state)},
          {"examples", c.examples},
          {"tasks", c.tasks},
          {"accepted", c.accepted},
          {"rejected", c.rejected},
          {"lost", c.lost},
          {"speed", c.speed},
          {"mean_staleness", c.mean_staleness},
          {"last_staleness", c.last_staleness},
          {"changed_at", c.changed_at}};
}

}  // namespace

LiveState::LiveState(LiveStateOptions options) : options_(options) {
  options_.max_points = std::max<size_t>(options_.max_points, 16);
  options_.max_recent = std::max<size_t>(options_.max_recent, 1);
}

void LiveState::thin(std::vector<Json>& points) const {
  if (points.size() <= options_.max_points) return;
  // Keep the first point, then every other one, and always the newest.
  std::vector<Json> kept;
  kept.reserve(points.size() / 2 + 2);
  for (size_t i = 0; i < points.size(); i += 2) kept.push_back(std::move(points[i]));
  if (points.size() % 2 == 0) kept.push_back(std::move(points.back()));
  points = std::move(kept);
}

void LiveState::push_recent(std::deque<Json>& q, Json item) const {
  q.push_back(std::move(item));
  while (q.size() > options_.max_recent) q.pop_front();
}

void LiveState::on_event_text(std::string_view /*name*/, const std::string& /*text*/) {
  std::lock_guard<std::mutex> lock(mu_);
  ++events_;
}

void LiveState::on_event(const Json& e) {
  if (!e.is_object()) return;
  const std::string name = e.value("event", "");
  const double t = number_or(e, "virtual_time_s", 0.0);
  std::lock_guard<std::mutex> lock(mu_);
  ++events_;
  if (name == "start") {
    run_ = pick(e, {"strategy", "mode", "clients", "params", "max_rounds", "max_virtual_time_s",
                    "max_wall_s", "threads", "seed", "resumed_from_version"});
    if (!run_.contains("mode")) run_["mode"] = "simulate";
    status_ = "running";
  } else if (name == "eval") {
    Json p = pick(e, {"round", "updates", "accuracy", "loss", "bytes_up", "bytes_down",
                      "fed_accuracy", "epsilon"});
    p["t"] = t;
    p["wall"] = number_or(e, "wall_time_s", 0.0);
    evals_.push_back(std::move(p));
    thin(evals_);
  } else if (is_commit(name)) {
    last_commit_ = e;
    auto cm = e.find("client_metrics");
    if (cm != e.end() && cm->is_object() && cm->contains("train_loss") &&
        (*cm)["train_loss"].is_number()) {
      train_loss_.push_back(
          {{"version", e.value("version", int64_t{0})}, {"t", t}, {"value", (*cm)["train_loss"]}});
      thin(train_loss_);
    }
  } else if (name == "rejected") {
    push_recent(rejected_, {{"client", e.value("client", int64_t{-1})},
                            {"reason", e.value("reason", "")},
                            {"t", t}});
  } else if (name == "lost") {
    push_recent(lost_, {{"client", e.value("client", int64_t{-1})},
                        {"version", e.value("version", int64_t{0})},
                        {"reason", e.value("reason", "")},
                        {"t", t}});
  } else if (name == "privacy") {
    privacy_ = pick(e, {"epsilon", "delta", "noise_multiplier", "clip_norm", "version"});
  } else if (name == "robust") {
    auto tr = e.find("trust");
    if (tr != e.end() && tr->is_object()) {
      for (const auto& [id, v] : tr->items()) {
        if (!v.is_number()) continue;
        try {
          trust_[std::stoll(id)] = v.get<double>();
        } catch (const std::exception&) {
          // Not a client id: ignored (the stream is written by Cohort; this is defensive).
        }
      }
    }
  } else if (name == "summary") {
    summary_ = pick(e, {"final_accuracy", "final_loss", "best_accuracy", "rounds", "updates",
                        "rejected", "lost", "stop_reason", "virtual_time_s", "wall_time_s",
                        "bytes_up", "bytes_down", "model_hash", "epsilon"});
    status_ = "finished";
  }
}

void LiveState::on_live(const LiveTotals& totals, std::span<const LiveClient> changed) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const LiveClient& c : changed) clients_[c.id] = c;
  totals_ = totals;
  have_totals_ = true;
  window_.push_back(totals);
  while (window_.size() > 2 && window_.front().wall_s < totals.wall_s - options_.rate_window_s) {
    window_.pop_front();
  }
}

Json LiveState::snapshot(size_t client_limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  Json out = Json::object();
  out["status"] = status_;
  out["run"] = run_;
  out["events"] = events_;
  if (have_totals_) {
    out["totals"] = {{"version", totals_.version},   {"updates", totals_.updates},
                     {"rejected", totals_.rejected}, {"lost", totals_.lost},
                     {"bytes_up", totals_.bytes_up}, {"bytes_down", totals_.bytes_down},
                     {"in_flight", totals_.in_flight}, {"now", totals_.now},
                     {"wall_s", totals_.wall_s}};
  } else {
    out["totals"] = nullptr;
  }
  // Rates over the window: differences between its newest and oldest totals.
  Json rates = {{"updates_per_s", 0.0}, {"bytes_per_s", 0.0}, {"versions_per_s", 0.0},
                {"window_s", 0.0}};
  if (window_.size() >= 2) {
    const LiveTotals& a = window_.front();
    const LiveTotals& b = window_.back();
    const double dt = b.wall_s - a.wall_s;
    if (dt > 0) {
      rates["updates_per_s"] = static_cast<double>(b.updates - a.updates) / dt;
      rates["bytes_per_s"] =
          static_cast<double>((b.bytes_up + b.bytes_down) - (a.bytes_up + a.bytes_down)) / dt;
      rates["versions_per_s"] = static_cast<double>(b.version - a.version) / dt;
      rates["window_s"] = dt;
    }
  }
  out["rates"] = std::move(rates);

  Json counts = {{"idle", 0}, {"training", 0}, {"offline", 0}, {"lost", 0}, {"rejected", 0}};
  std::vector<const LiveClient*> rows;
  rows.reserve(clients_.size());
  for (const auto& [id, c] : clients_) {
    counts[to_string(c.state)] = counts[to_string(c.state)].get<int64_t>() + 1;
    rows.push_back(&c);
  }
  std::sort(rows.begin(), rows.end(), [](const LiveClient* a, const LiveClient* b) {
    const bool ta = a->state == LiveClientState::kTraining;
    const bool tb = b->state == LiveClientState::kTraining;
    if (ta != tb) return ta;
    return a->id < b->id;
  });
  if (rows.size() > client_limit) {
    rows.resize(client_limit);
    std::sort(rows.begin(), rows.end(),
              [](const LiveClient* a, const LiveClient* b) { return a->id < b->id; });
  }
  out["clients_total"] = clients_.size();
  out["state_counts"] = std::move(counts);
  Json list = Json::array();
  for (const LiveClient* c : rows) {
    Json r = row_json(*c);
    auto t = trust_.find(c->id);
    if (t != trust_.end()) r["trust"] = t->second;
    list.push_back(std::move(r));
  }
  out["clients"] = std::move(list);

  // The lowest trust scores, where a robust rule keeps them.
  std::vector<std::pair<double, ClientId>> low;
  for (const auto& [id, v] : trust_) low.emplace_back(v, id);
  std::sort(low.begin(), low.end());
  if (low.size() > 10) low.resize(10);
  Json lowest = Json::array();
  for (const auto& [v, id] : low) lowest.push_back({{"client", id}, {"trust", v}});
  out["trust_lowest"] = std::move(lowest);

  out["evals"] = evals_;
  out["train_loss"] = train_loss_;
  out["last_commit"] = last_commit_;
  out["rejected"] = Json(rejected_);
  out["lost"] = Json(lost_);
  out["privacy"] = privacy_;
  out["summary"] = summary_;
  return out;
}

}  // namespace cohort::dashboard
