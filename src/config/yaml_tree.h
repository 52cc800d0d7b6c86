// Internal to cohort_config: the YAML value tree the loader reads, its scalar typing, the
// error context and --set overrides (yaml_tree.cc), and typed reads of keys (reader.cc).
//
// A YAML value tree we own. yaml-cpp's Node has reference semantics (assigning one Node to
// another rewrites the shared data; non-const operator[] inserts keys and turns null into a
// map), which makes the in-place edits that overrides need error-prone. Copying the parsed
// document into plain values first keeps editing and reading trivial.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cohort/config/config.h"
#include "cohort/core/status.h"

namespace cohort::config_detail {

struct Entry;

struct Node {
  enum class Kind { kNull, kScalar, kMap, kSeq };
  Kind kind = Kind::kNull;
  std::string text;   // kScalar
  bool plain = true;  // kScalar: false when quoted or explicitly tagged (always a string)
  std::vector<Entry> entries;  // kMap, in document order
  std::vector<Node> items;                            // kSeq

  // Defined below, where Entry is complete.
  const Node* find(std::string_view key) const;
  Node* find(std::string_view key);
};

// A key and its value. Not std::pair<std::string, Node>: a pair of the type being defined
// does not compile with clang and libstdc++ (its constructors' traits need Node complete).
struct Entry {
  Entry(std::string k, Node v) : first(std::move(k)), second(std::move(v)) {}
  std::string first;
  Node second;
};

inline const Node* Node::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}
inline Node* Node::find(std::string_view key) {
  for (auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Node& null_node();
std::string join_path(const std::string& parent, std::string_view key);
bool starts_with(std::string_view s, std::string_view prefix);

template <typename List>
std::string join_list(const List& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// Plain scalars are resolved with the YAML 1.2 core schema (true/false only for booleans, so
// strings such as "no" or "on" stay strings); quoted or tagged scalars are always strings.
enum class ScalarKind { kNull, kBool, kInt, kFloat, kString };

struct ScalarValue {
  ScalarKind kind = ScalarKind::kString;
  bool b = false;
  int64_t i = 0;
  double d = 0.0;
  bool int_out_of_range = false;    // kInt whose value does not fit in int64
  bool float_out_of_range = false;  // kFloat that overflows or underflows a double
};

// Sign, digits and base of an integer literal (decimal, 0x hex, 0o octal), if it is one.
struct IntLiteral {
  bool negative = false;
  std::string_view digits;
  int base = 10;
};

std::optional<IntLiteral> int_literal(std::string_view s);
// Magnitude of an integer literal; nullopt if it exceeds uint64.
std::optional<uint64_t> magnitude(const IntLiteral& lit);
ScalarValue classify(const Node& n);
bool is_number(const ScalarValue& v);
// How a value is quoted back in "got ..." messages: numbers and booleans as written,
// strings in single quotes, containers by kind.
std::string describe(const Node& n);

// Error context: the source name every message starts with, and the overrides applied so
// far, so an error about a value that came from --set says so.
class Context {
 public:
  explicit Context(std::string file) { source_.file = std::move(file); }
  // InvalidArgument "source: path: what" (+ the override that set `path`, if any).
  Status error(const std::string& path, const std::string& what) const;
  // InvalidArgument "source: what", for errors not about one key.
  Status plain_error(const std::string& what) const;
  void add_override(std::string path, std::string text);
  const ConfigSource& source() const { return source_; }

 private:
  std::string prefix() const;
  ConfigSource source_;
};

// Parses one YAML document; `what` prefixes syntax errors, `base` prefixes key paths.
Result<Node> parse_yaml(const std::string& text, const std::string& what, const std::string& base,
                        const Context& ctx);
// Applies one "key.path=value" override to the tree.
Status apply_override(const std::string& text, Node* root, Context* ctx);
// The node at key path `path` ("clients.speed.mean", "model.hidden[1]"), or null.
const Node* find_path(const Node& root, const std::string& path);

}  // namespace cohort::config_detail
