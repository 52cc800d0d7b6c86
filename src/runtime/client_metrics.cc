#include "cohort/runtime/client_metrics.h"

#include <array>
#include <cmath>
#include <string_view>

namespace cohort::runtime {

namespace {

bool is_commit_event(const Json& e) {
  static constexpr std::array<std::string_view, 5> kNames = {"round", "buffer_flush", "group",
                                                             "update", "model_step"};
  auto it = e.find("event");
  if (it == e.end() || !it->is_string()) return false;
  const std::string& name = it->get_ref<const std::string&>();
  for (std::string_view n : kNames) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace

void ClientMetricsMean::add(const MetricRecord& m, double w) {
  for (const auto& [k, v] : m) {
    if (!std::isfinite(v)) continue;
    auto& [sum, weight] = sums_[k];
    sum += w * v;
    weight += w;
  }
}

void ClientMetricsMean::begin(const MetricRecord& metrics, int64_t examples) {
  pending_metrics_ = metrics;
  pending_weight_ = static_cast<double>(examples > 0 ? examples : 1);
  pending_ = !metrics.empty();
}

void ClientMetricsMean::end(bool accepted) {
  if (pending_ && accepted) add(pending_metrics_, pending_weight_);
  pending_ = false;
}

void ClientMetricsMean::annotate(Json& event) {
  if (!is_commit_event(event)) return;
  // The update being handled reaches this event (its strategy commits with it): counted now.
  if (pending_) {
    add(pending_metrics_, pending_weight_);
    pending_ = false;
  }
  if (sums_.empty()) return;
  Json m = Json::object();
  for (const auto& [k, sw] : sums_) {
    if (sw.second > 0) m[k] = sw.first / sw.second;
  }
  sums_.clear();
  event["client_metrics"] = std::move(m);
}

}  // namespace cohort::runtime
