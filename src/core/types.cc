#include "cohort/core/types.h"

namespace cohort {

double config_number(const ConfigRecord& c, const std::string& key, double fallback) {
  auto it = c.find(key);
  if (it == c.end()) return fallback;
  if (auto* d = std::get_if<double>(&it->second)) return *d;
  if (auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  if (auto* b = std::get_if<bool>(&it->second)) return *b ? 1.0 : 0.0;
  return fallback;
}

}  // namespace cohort
