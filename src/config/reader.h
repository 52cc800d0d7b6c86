// Internal to cohort_config: typed reads of YAML keys. Each takes the node and its key path,
// and returns the value or an InvalidArgument naming the path and quoting what was found.
// Ranges are not checked here: the option structs' validate() owns them (config.cc).
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/config/config.h"
#include "config/yaml_tree.h"

namespace cohort::config_detail {

Result<int64_t> to_int(const Context& ctx, const Node& n, const std::string& path);
Result<uint64_t> to_uint64(const Context& ctx, const Node& n, const std::string& path);
// A finite number (an integer counts): JSON has no infinity or NaN, so config.json could not
// record them.
Result<double> to_number(const Context& ctx, const Node& n, const std::string& path);
Result<std::string> to_string_value(const Context& ctx, const Node& n, const std::string& path);
Result<bool> to_bool(const Context& ctx, const Node& n, const std::string& path);
// One of `known`, else "unknown value 'x' (known: a, b)".
Result<std::string> to_enum(const Context& ctx, const Node& n, const std::string& path,
                            std::span<const std::string_view> known);
// A strategy parameter: int64 for YAML integers, double for floats, bool, or string.
Result<Scalar> to_param(const Context& ctx, const Node& n, const std::string& path);

class MapReader;
// The `models:` section (config_models.cc).
Status read_models(const MapReader& top, std::vector<ModelEntry>* out);

// Reads the keys of one mapping. Absent keys leave the destination untouched (the default).
class MapReader {
 public:
  MapReader(const Context& ctx, const Node& node, std::string path)
      : ctx_(ctx), node_(node), path_(std::move(path)) {}

  // Checks that the node is a mapping (null counts as an empty one) and, unless `known` is
  // empty, that every key is in `known`.
  Status open(std::initializer_list<std::string_view> known) const {
    if (node_.kind == Node::Kind::kNull) return Status();
    if (node_.kind != Node::Kind::kMap) {
      if (path_.empty()) {
        return ctx_.plain_error("expected a mapping at the top level, got " + describe(node_));
      }
      return ctx_.error(path_, "expected a mapping, got " + describe(node_));
    }
    if (known.size() == 0) return Status();
    for (const auto& entry : node_.entries) {
      bool found = false;
      for (std::string_view k : known) found = found || entry.first == k;
      if (!found) {
        return ctx_.error(child(entry.first), "unknown key (known: " + join_list(known) + ")");
      }
    }
    return Status();
  }

  const Context& ctx() const { return ctx_; }
  const Node& node() const { return node_; }
  const Node* get(std::string_view key) const {
    return node_.kind == Node::Kind::kMap ? node_.find(key) : nullptr;
  }
  std::string child(std::string_view key) const { return join_path(path_, key); }
  Status error(std::string_view key, const std::string& what) const {
    return ctx_.error(child(key), what);
  }
  MapReader section(std::string_view key) const {
    const Node* n = get(key);
    return MapReader(ctx_, n != nullptr ? *n : null_node(), child(key));
  }

  Status read(std::string_view key, int64_t* out) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_int(ctx_, *n, child(key)));
    }
    return Status();
  }
  Status read(std::string_view key, uint64_t* out) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_uint64(ctx_, *n, child(key)));
    }
    return Status();
  }
  Status read(std::string_view key, double* out) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_number(ctx_, *n, child(key)));
    }
    return Status();
  }
  Status read(std::string_view key, bool* out) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_bool(ctx_, *n, child(key)));
    }
    return Status();
  }
  Status read(std::string_view key, std::string* out) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_string_value(ctx_, *n, child(key)));
      if (out->empty()) return error(key, "must not be empty");
    }
    return Status();
  }
  Status read_enum(std::string_view key, std::string* out,
                   std::span<const std::string_view> known) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_enum(ctx_, *n, child(key), known));
    }
    return Status();
  }

 private:
  const Context& ctx_;
  const Node& node_;
  std::string path_;
};

}  // namespace cohort::config_detail
