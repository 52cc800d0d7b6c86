#include "cohort/core/config_record_json.h"

#include <variant>

namespace cohort {

Json to_json(const ConfigRecord& record) {
  Json j = Json::object();
  for (const auto& [key, value] : record) {
    j[key] = std::visit([](const auto& v) { return Json(v); }, value);
  }
  return j;
}

ConfigRecord config_record_from_json(const Json& object) {
  ConfigRecord c;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const Json& v = it.value();
    if (v.is_boolean()) {
      c[it.key()] = v.get<bool>();
    } else if (v.is_number_integer()) {
      c[it.key()] = v.get<int64_t>();
    } else if (v.is_number()) {
      c[it.key()] = v.get<double>();
    } else if (v.is_string()) {
      c[it.key()] = v.get<std::string>();
    }
  }
  return c;
}

}  // namespace cohort
