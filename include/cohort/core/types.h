// Vocabulary types shared by strategies, runtimes and trainers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>

namespace cohort {

// A client's identity: dense 0..N-1 in the simulator, from the token registry in deployment.
using ClientId = int64_t;
// Global model version: 0 is the initial model, +1 for every commit of a new global model.
// Staleness of an update = current version - the version it started from (docs/strategies.md,
// "Staleness").
using ModelVersion = int64_t;
// Identifies a timer a strategy asked the runtime for.
using TimerId = int64_t;

// Per-task settings a strategy sends along with a task (e.g. "prox_mu", "lr"), Flower's
// ConfigRecord. Trainers read the keys they know and ignore the rest.
using Scalar = std::variant<int64_t, double, bool, std::string>;
using ConfigRecord = std::map<std::string, Scalar>;
// Named numbers a client or strategy reports (train loss, accuracy, ...), Flower's MetricRecord.
using MetricRecord = std::map<std::string, double>;

// Reads a numeric entry of a ConfigRecord, or `fallback` when absent or not numeric.
double config_number(const ConfigRecord& c, const std::string& key, double fallback);

}  // namespace cohort
