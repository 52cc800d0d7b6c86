#include "cohort/data/partition_file.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace cohort {

Result<std::vector<std::vector<int64_t>>> read_partition_file(const std::string& path,
                                                              int64_t num_examples,
                                                              int64_t num_clients,
                                                              bool shared_examples) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("data.partition_file: cannot read '" + path + "'");
  auto fail = [&](const std::string& what) {
    return Status::invalid_argument("data.partition_file " + path + ": " + what);
  };
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail("not valid JSON");
  if (!doc.is_object() || !doc.contains("clients") || !doc["clients"].is_array()) {
    return fail(R"(expected an object {"clients": [[example indices of client 0], ...]})");
  }
  nlohmann::json& clients = doc["clients"];
  const auto count = static_cast<int64_t>(clients.size());
  if (num_clients > 0 && count != num_clients) {
    return fail("holds " + std::to_string(count) + " clients, but clients.count is " +
                std::to_string(num_clients));
  }
  // owner[i]: the first client that listed example i, -1 none (for duplicate checks).
  std::vector<int32_t> owner(shared_examples ? 0 : static_cast<size_t>(num_examples), -1);
  std::vector<std::vector<int64_t>> parts(static_cast<size_t>(count));
  for (int64_t c = 0; c < count; ++c) {
    nlohmann::json& list = clients[static_cast<size_t>(c)];
    const std::string who = "client " + std::to_string(c);
    if (!list.is_array()) return fail(who + ": expected an array of example indices");
    if (list.empty()) return fail(who + ": no examples (every client needs at least one)");
    std::vector<int64_t>& part = parts[static_cast<size_t>(c)];
    part.reserve(list.size());
    for (size_t k = 0; k < list.size(); ++k) {
      const nlohmann::json& v = list[k];
      if (!v.is_number_integer()) {
        return fail(who + ": element " + std::to_string(k) + " is " + v.dump() +
                    ", not an example index");
      }
      const int64_t i = v.get<int64_t>();
      if (i < 0 || i >= num_examples) {
        return fail(who + ": example " + std::to_string(i) + " is outside [0, " +
                    std::to_string(num_examples) + ") (the dataset's training examples)");
      }
      part.push_back(i);
    }
    list = nlohmann::json();  // free as we go
    std::sort(part.begin(), part.end());
    auto dup = std::adjacent_find(part.begin(), part.end());
    if (dup != part.end()) return fail(who + ": lists example " + std::to_string(*dup) + " twice");
    if (!shared_examples) {
      for (int64_t i : part) {
        int32_t& o = owner[static_cast<size_t>(i)];
        if (o >= 0) {
          return fail(who + ": example " + std::to_string(i) + " is also client " +
                      std::to_string(o) +
                      "'s (set data.with_replacement: true to let clients "
                      "share examples)");
        }
        o = static_cast<int32_t>(c);
      }
    }
  }
  return parts;
}

}  // namespace cohort
