#include "cohort/config/config.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <regex>
#include <span>
#include <string_view>
#include <utility>
#include <variant>

namespace cohort {
namespace {

// ---------------------------------------------------------------------------------------
// A YAML value tree we own. yaml-cpp's Node has reference semantics (assigning one Node to
// another rewrites the shared data; non-const operator[] inserts keys and turns null into a
// map), which makes the in-place edits that overrides need error-prone. Copying the parsed
// document into plain values first keeps editing and reading trivial.

struct Node {
  enum class Kind { kNull, kScalar, kMap, kSeq };
  Kind kind = Kind::kNull;
  std::string text;   // kScalar
  bool plain = true;  // kScalar: false when quoted or explicitly tagged (always a string)
  std::vector<std::pair<std::string, Node>> entries;  // kMap, in document order
  std::vector<Node> items;                            // kSeq

  const Node* find(std::string_view key) const {
    for (const auto& [k, v] : entries) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  Node* find(std::string_view key) {
    for (auto& [k, v] : entries) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

const Node& null_node() {
  static const Node node;
  return node;
}

std::string join_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string p = parent;
  p += '.';
  p += key;
  return p;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// Shortest text that reads back as the same double ("0.1", "100", "1e+300").
std::string format_number(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

template <typename List>
std::string join_list(const List& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
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

bool matches(std::string_view s, const std::regex& re) {
  return std::regex_match(s.data(), s.data() + s.size(), re);
}

// Sign, digits and base of an integer literal (decimal, 0x hex, 0o octal), if it is one.
struct IntLiteral {
  bool negative = false;
  std::string_view digits;
  int base = 10;
};

std::optional<IntLiteral> int_literal(std::string_view s) {
  static const std::regex kDec(R"([-+]?[0-9]+)");
  static const std::regex kHex(R"(0x[0-9a-fA-F]+)");
  static const std::regex kOct(R"(0o[0-7]+)");
  if (matches(s, kDec)) {
    IntLiteral lit;
    lit.negative = s[0] == '-';
    if (s[0] == '-' || s[0] == '+') s.remove_prefix(1);
    lit.digits = s;
    return lit;
  }
  if (matches(s, kHex)) return IntLiteral{false, s.substr(2), 16};
  if (matches(s, kOct)) return IntLiteral{false, s.substr(2), 8};
  return std::nullopt;
}

// Magnitude of an integer literal; nullopt if it exceeds uint64.
std::optional<uint64_t> magnitude(const IntLiteral& lit) {
  uint64_t v = 0;
  auto r = std::from_chars(lit.digits.data(), lit.digits.data() + lit.digits.size(), v, lit.base);
  if (r.ec != std::errc() || r.ptr != lit.digits.data() + lit.digits.size()) return std::nullopt;
  return v;
}

ScalarValue classify(const Node& n) {
  ScalarValue v;
  if (n.kind == Node::Kind::kNull) {
    v.kind = ScalarKind::kNull;
    return v;
  }
  if (n.kind != Node::Kind::kScalar || !n.plain) return v;  // kString
  const std::string& s = n.text;
  if (s == "~" || s == "null" || s == "Null" || s == "NULL") {
    v.kind = ScalarKind::kNull;
    return v;
  }
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" ||
      s == "FALSE") {
    v.kind = ScalarKind::kBool;
    v.b = s[0] == 't' || s[0] == 'T';
    return v;
  }
  if (auto lit = int_literal(s)) {
    v.kind = ScalarKind::kInt;
    auto mag = magnitude(*lit);
    constexpr uint64_t kMaxPos = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (!mag || *mag > kMaxPos + (lit->negative ? 1 : 0)) {
      v.int_out_of_range = true;
    } else if (lit->negative) {
      // -(2^63) has no positive int64 counterpart, so negate in unsigned arithmetic.
      v.i = static_cast<int64_t>(0 - *mag);
    } else {
      v.i = static_cast<int64_t>(*mag);
    }
    return v;
  }
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  static const std::regex kInf(R"([-+]?\.(inf|Inf|INF))");
  static const std::regex kNan(R"(\.(nan|NaN|NAN))");
  if (matches(s, kFloat)) {
    std::string_view body = s;
    if (body[0] == '+') body.remove_prefix(1);
    double d = 0.0;
    auto r = std::from_chars(body.data(), body.data() + body.size(), d);
    v.kind = ScalarKind::kFloat;
    v.float_out_of_range = r.ec == std::errc::result_out_of_range;
    v.d = d;
    return v;
  }
  if (matches(s, kInf)) {
    v.kind = ScalarKind::kFloat;
    v.d = s[0] == '-' ? -std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::infinity();
    return v;
  }
  if (matches(s, kNan)) {
    v.kind = ScalarKind::kFloat;
    v.d = std::numeric_limits<double>::quiet_NaN();
    return v;
  }
  return v;  // kString
}

bool is_number(const ScalarValue& v) {
  return v.kind == ScalarKind::kInt || v.kind == ScalarKind::kFloat;
}

// How a value is quoted back in "got ..." messages: numbers and booleans as written,
// strings in single quotes, containers by kind.
std::string describe(const Node& n) {
  switch (n.kind) {
    case Node::Kind::kNull:
      return "null";
    case Node::Kind::kMap:
      return "a mapping";
    case Node::Kind::kSeq:
      return "a sequence";
    case Node::Kind::kScalar:
      break;
  }
  std::string t = n.text.size() > 60 ? n.text.substr(0, 57) + "..." : n.text;
  const ScalarValue v = classify(n);
  if (n.plain && (is_number(v) || v.kind == ScalarKind::kBool)) return t;
  std::string out = "'" + t + "'";
  if (!n.plain) {
    Node unquoted = n;
    unquoted.plain = true;
    const ScalarValue u = classify(unquoted);
    if (is_number(u) || u.kind == ScalarKind::kBool) out += " (a quoted string)";
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Error context: the source name every message starts with, and the overrides applied so
// far, so an error about a value that came from --set says so.

class Context {
 public:
  explicit Context(std::string source) : source_(std::move(source)) {}

  // InvalidArgument "source: path: what" (+ the override that set `path`, if any).
  Status error(const std::string& path, const std::string& what) const {
    std::string m = prefix();
    if (!path.empty()) m += path + ": ";
    m += what;
    if (const std::string* ov = override_for(path)) m += " (from override '" + *ov + "')";
    return Status::invalid_argument(std::move(m));
  }
  // InvalidArgument "source: what", for errors not about one key.
  Status plain_error(const std::string& what) const {
    return Status::invalid_argument(prefix() + what);
  }
  void add_override(std::string path, std::string text) {
    overrides_.emplace_back(std::move(path), std::move(text));
  }

 private:
  std::string prefix() const { return source_.empty() ? std::string() : source_ + ": "; }

  // The last override whose path is `path`, an ancestor of it (the override set a whole
  // subtree) or a descendant of it (the override created `path` as an intermediate map).
  const std::string* override_for(const std::string& path) const {
    if (path.empty()) return nullptr;
    for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
      const std::string& op = it->first;
      if (path == op || starts_with(path, op + ".") || starts_with(path, op + "[") ||
          starts_with(op, path + ".")) {
        return &it->second;
      }
    }
    return nullptr;
  }

  std::string source_;
  std::vector<std::pair<std::string, std::string>> overrides_;  // path, "path=value"
};

// ---------------------------------------------------------------------------------------
// Parsing YAML text into a Node tree.

constexpr int kMaxDepth = 64;

Status convert(const YAML::Node& y, const std::string& path, int depth, const Context& ctx,
               Node* out) {
  if (depth > kMaxDepth) {
    return ctx.error(path, "nested more than " + std::to_string(kMaxDepth) +
                               " levels deep (a recursive alias?)");
  }
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out->kind = Node::Kind::kNull;
      return Status();
    case YAML::NodeType::Scalar:
      out->kind = Node::Kind::kScalar;
      out->text = y.Scalar();
      // yaml-cpp reports "?" for plain scalars, "!" for quoted ones, or an explicit tag.
      out->plain = y.Tag() == "?";
      return Status();
    case YAML::NodeType::Sequence: {
      out->kind = Node::Kind::kSeq;
      size_t i = 0;
      for (const auto& item : y) {
        Node child;
        COHORT_RETURN_IF_ERROR(
            convert(item, path + "[" + std::to_string(i) + "]", depth + 1, ctx, &child));
        out->items.push_back(std::move(child));
        ++i;
      }
      return Status();
    }
    case YAML::NodeType::Map: {
      out->kind = Node::Kind::kMap;
      for (const auto& kv : y) {
        if (!kv.first.IsScalar()) {
          Node key;
          COHORT_RETURN_IF_ERROR(convert(kv.first, path, depth + 1, ctx, &key));
          return ctx.error(path.empty() ? "top level" : path,
                           "mapping keys must be scalars, got " + describe(key));
        }
        const std::string key = kv.first.Scalar();
        const std::string child_path = join_path(path, key);
        if (out->find(key) != nullptr) return ctx.error(child_path, "duplicate key");
        Node child;
        COHORT_RETURN_IF_ERROR(convert(kv.second, child_path, depth + 1, ctx, &child));
        out->entries.emplace_back(key, std::move(child));
      }
      return Status();
    }
  }
  return Status();
}

// Parses one YAML document; `what` prefixes syntax errors, `base` prefixes key paths.
Result<Node> parse_yaml(const std::string& text, const std::string& what,
                        const std::string& base, const Context& ctx) {
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.size() > 1) {
      return ctx.plain_error(what + "expected one YAML document, found " +
                             std::to_string(docs.size()));
    }
    Node root;
    if (!docs.empty()) COHORT_RETURN_IF_ERROR(convert(docs[0], base, 0, ctx, &root));
    return root;
  } catch (const YAML::Exception& e) {
    std::string m = what + "YAML syntax error";
    if (!e.mark.is_null()) {
      m += " at line " + std::to_string(e.mark.line + 1) + ", column " +
           std::to_string(e.mark.column + 1);
    }
    return ctx.plain_error(m + ": " + e.msg);
  } catch (const std::exception& e) {
    return ctx.plain_error(what + "cannot parse YAML: " + e.what());
  }
}

// ---------------------------------------------------------------------------------------
// Overrides: "key.path=value" applied to the tree before conversion.

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

Status apply_override(const std::string& text, Node* root, Context* ctx) {
  const std::string name = "override '" + text + "': ";
  const auto eq = text.find('=');
  if (eq == std::string::npos) {
    return ctx->plain_error(name + "expected key.path=value (e.g. training.lr=0.1)");
  }
  const std::string path = trim(std::string_view(text).substr(0, eq));
  if (path.empty()) return ctx->plain_error(name + "empty key path before '='");
  std::vector<std::string> keys;
  for (size_t start = 0;;) {
    const auto dot = path.find('.', start);
    keys.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (keys.back().empty()) {
      return ctx->plain_error(name + "empty key in path '" + path + "'");
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  // Registered before the value is parsed so errors inside the value name the override too.
  ctx->add_override(path, text);
  COHORT_ASSIGN_OR_RETURN(Node value,
                          parse_yaml(text.substr(eq + 1), name + "value: ", path, *ctx));

  // The document root is already known to be a mapping or null.
  Node* cur = root;
  if (cur->kind == Node::Kind::kNull) cur->kind = Node::Kind::kMap;
  std::string walked;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    walked = join_path(walked, keys[i]);
    Node* next = cur->find(keys[i]);
    if (next == nullptr) {
      cur->entries.emplace_back(keys[i], Node());
      next = &cur->entries.back().second;
      next->kind = Node::Kind::kMap;
    } else if (next->kind == Node::Kind::kNull) {
      next->kind = Node::Kind::kMap;
    } else if (next->kind != Node::Kind::kMap) {
      return ctx->plain_error(name + "cannot set a key inside " + walked + ", which is " +
                              describe(*next) + ", not a mapping");
    }
    cur = next;
  }
  if (Node* existing = cur->find(keys.back())) {
    *existing = std::move(value);
  } else {
    cur->entries.emplace_back(keys.back(), std::move(value));
  }
  return Status();
}

// ---------------------------------------------------------------------------------------
// Typed reads. Each takes the node and its key path, and returns the value or an
// InvalidArgument naming the path and quoting what was found.

// An allowed interval; `describe` gives the "must be ..." text.
struct Range {
  enum class Bound { kNone, kClosed, kOpen };
  Bound lo = Bound::kNone;
  double lo_v = 0.0;
  Bound hi = Bound::kNone;
  double hi_v = 0.0;

  static Range any() { return {}; }
  static Range at_least(double v) { return {Bound::kClosed, v, Bound::kNone, 0.0}; }
  static Range above(double v) { return {Bound::kOpen, v, Bound::kNone, 0.0}; }
  static Range closed(double a, double b) { return {Bound::kClosed, a, Bound::kClosed, b}; }
  static Range half_open(double a, double b) { return {Bound::kClosed, a, Bound::kOpen, b}; }

  bool contains(double x) const {
    if (lo == Bound::kClosed && !(x >= lo_v)) return false;
    if (lo == Bound::kOpen && !(x > lo_v)) return false;
    if (hi == Bound::kClosed && !(x <= hi_v)) return false;
    if (hi == Bound::kOpen && !(x < hi_v)) return false;
    return true;
  }
  std::string describe() const {
    if (hi == Bound::kNone) {
      return std::string(lo == Bound::kOpen ? "> " : ">= ") + format_number(lo_v);
    }
    return std::string("in ") + (lo == Bound::kOpen ? "(" : "[") + format_number(lo_v) + ", " +
           format_number(hi_v) + (hi == Bound::kOpen ? ")" : "]");
  }
};

Status check_range(const Context& ctx, const Node& n, const std::string& path, double v,
                   const Range& range) {
  if (range.contains(v)) return Status();
  return ctx.error(path, "must be " + range.describe() + ", got " + n.text);
}

Result<int64_t> to_int(const Context& ctx, const Node& n, const std::string& path,
                       const Range& range) {
  const ScalarValue v = classify(n);
  if (v.kind != ScalarKind::kInt) return ctx.error(path, "expected an integer, got " + describe(n));
  if (v.int_out_of_range) {
    return ctx.error(path, "integer out of the 64-bit range, got " + describe(n));
  }
  COHORT_RETURN_IF_ERROR(check_range(ctx, n, path, static_cast<double>(v.i), range));
  return v.i;
}

Result<uint64_t> to_uint64(const Context& ctx, const Node& n, const std::string& path) {
  const ScalarValue v = classify(n);
  std::optional<IntLiteral> lit;
  if (v.kind == ScalarKind::kInt) lit = int_literal(n.text);
  if (!lit || (lit->negative && magnitude(*lit) != uint64_t{0})) {
    return ctx.error(path, "expected a non-negative integer, got " + describe(n));
  }
  auto mag = magnitude(*lit);
  if (!mag) return ctx.error(path, "integer out of the unsigned 64-bit range, got " + n.text);
  return *mag;
}

Result<double> to_number(const Context& ctx, const Node& n, const std::string& path,
                         const Range& range) {
  const ScalarValue v = classify(n);
  if (!is_number(v)) return ctx.error(path, "expected a number, got " + describe(n));
  double d = v.kind == ScalarKind::kInt ? static_cast<double>(v.i) : v.d;
  if (v.float_out_of_range) {
    return ctx.error(path, "number out of the double range, got " + n.text);
  }
  if (v.kind == ScalarKind::kInt && v.int_out_of_range) {
    // Too large for int64 but still a number: read the decimal text as a double (hex and
    // octal literals that large are not worth supporting).
    std::string_view body = n.text;
    if (!body.empty() && body[0] == '+') body.remove_prefix(1);
    auto r = std::from_chars(body.data(), body.data() + body.size(), d);
    if (r.ec != std::errc() || r.ptr != body.data() + body.size()) {
      return ctx.error(path, "integer out of the 64-bit range, got " + n.text);
    }
  }
  // JSON has no infinity or NaN, so config.json could not record them.
  if (!std::isfinite(d)) return ctx.error(path, "expected a finite number, got " + n.text);
  COHORT_RETURN_IF_ERROR(check_range(ctx, n, path, d, range));
  return d;
}

Result<std::string> to_string_value(const Context& ctx, const Node& n, const std::string& path) {
  if (n.kind != Node::Kind::kScalar) return ctx.error(path, "expected a string, got " + describe(n));
  return n.text;
}

Result<std::string> to_enum(const Context& ctx, const Node& n, const std::string& path,
                            std::span<const std::string_view> known) {
  COHORT_ASSIGN_OR_RETURN(std::string s, to_string_value(ctx, n, path));
  for (std::string_view k : known) {
    if (s == k) return s;
  }
  return ctx.error(path, "unknown value '" + s + "' (known: " + join_list(known) + ")");
}

// A strategy parameter: int64 for YAML integers, double for floats, bool, or string.
Result<Scalar> to_param(const Context& ctx, const Node& n, const std::string& path) {
  if (n.kind != Node::Kind::kScalar) {
    return ctx.error(path, "expected a scalar (number, bool or string), got " + describe(n));
  }
  const ScalarValue v = classify(n);
  switch (v.kind) {
    case ScalarKind::kNull:
      return ctx.error(path, "expected a scalar (number, bool or string), got null");
    case ScalarKind::kBool:
      return Scalar(v.b);
    case ScalarKind::kInt:
      if (v.int_out_of_range) {
        return ctx.error(path, "integer out of the 64-bit range, got " + n.text);
      }
      return Scalar(v.i);
    case ScalarKind::kFloat:
      if (v.float_out_of_range) {
        return ctx.error(path, "number out of the double range, got " + n.text);
      }
      if (!std::isfinite(v.d)) return ctx.error(path, "expected a finite number, got " + n.text);
      return Scalar(v.d);
    case ScalarKind::kString:
      break;
  }
  return Scalar(n.text);
}

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

  Status read(std::string_view key, int64_t* out, const Range& range = Range::any()) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_int(ctx_, *n, child(key), range));
    }
    return Status();
  }
  Status read(std::string_view key, uint64_t* out) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_uint64(ctx_, *n, child(key)));
    }
    return Status();
  }
  Status read(std::string_view key, double* out, const Range& range = Range::any()) const {
    if (const Node* n = get(key)) {
      COHORT_ASSIGN_OR_RETURN(*out, to_number(ctx_, *n, child(key), range));
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

// ---------------------------------------------------------------------------------------
// Sections.

constexpr std::array<std::string_view, 2> kDatasets = {"fashion-mnist", "synthetic"};
constexpr std::array<std::string_view, 3> kPartitions = {"iid", "dirichlet", "shards"};
constexpr std::array<std::string_view, 3> kModels = {"logreg", "mlp", "cnn"};
constexpr std::array<std::string_view, 1> kOptimizers = {"sgd"};
constexpr std::array<std::string_view, 5> kDistributions = {"constant", "normal", "exponential",
                                                            "uniform", "lognormal"};

Status read_data(const MapReader& top, DataConfig* d) {
  const MapReader r = top.section("data");
  COHORT_RETURN_IF_ERROR(r.open({"dataset", "path", "train_limit", "test_limit", "partition",
                                 "alpha", "shards_per_client", "min_size", "size_skew",
                                 "holdout_fraction", "synthetic"}));
  COHORT_RETURN_IF_ERROR(r.read_enum("dataset", &d->dataset, kDatasets));
  COHORT_RETURN_IF_ERROR(r.read("path", &d->path));
  COHORT_RETURN_IF_ERROR(r.read("train_limit", &d->train_limit, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read("test_limit", &d->test_limit, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read_enum("partition", &d->partition.kind, kPartitions));
  COHORT_RETURN_IF_ERROR(r.read("alpha", &d->partition.alpha, Range::above(0)));
  COHORT_RETURN_IF_ERROR(
      r.read("shards_per_client", &d->partition.shards_per_client, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(r.read("min_size", &d->partition.min_size, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read("size_skew", &d->partition.size_skew, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read("holdout_fraction", &d->holdout_fraction, Range::at_least(0)));
  if (d->holdout_fraction >= 1.0) {
    return r.error("holdout_fraction",
                   "must be < 1 (a client must keep training data), got " +
                       format_number(d->holdout_fraction));
  }

  const MapReader s = r.section("synthetic");
  COHORT_RETURN_IF_ERROR(
      s.open({"num_examples", "test_examples", "dim", "classes", "separation", "noise"}));
  COHORT_RETURN_IF_ERROR(s.read("num_examples", &d->synthetic.num_examples, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(s.read("test_examples", &d->synthetic_test_examples, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(s.read("dim", &d->synthetic.dim, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(s.read("classes", &d->synthetic.num_classes, Range::at_least(2)));
  COHORT_RETURN_IF_ERROR(s.read("separation", &d->synthetic.separation, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(s.read("noise", &d->synthetic.noise, Range::at_least(0)));
  return Status();
}

// A distribution is a mapping, or a bare number meaning constant. Keys omitted from the
// mapping keep their current (default) values. The value checks mirror what sampling needs;
// they live here rather than in Distribution::validate so cohort_config does not depend on
// the simulator library.
Status read_distribution(const MapReader& parent, std::string_view key, sim::Distribution* d) {
  const Node* n = parent.get(key);
  if (n == nullptr) return Status();
  const std::string path = parent.child(key);
  const Context& ctx = parent.ctx();
  if (n->kind == Node::Kind::kScalar && n->plain && is_number(classify(*n))) {
    COHORT_ASSIGN_OR_RETURN(double v, to_number(ctx, *n, path, Range::above(0)));
    *d = sim::Distribution::constant(v);
    return Status();
  }
  if (n->kind != Node::Kind::kMap && n->kind != Node::Kind::kNull) {
    return ctx.error(path, "expected a mapping or a number, got " + describe(*n));
  }
  const MapReader r(ctx, *n, path);
  COHORT_RETURN_IF_ERROR(
      r.open({"distribution", "mean", "std", "low", "high", "sigma", "min", "max"}));
  sim::Distribution out = *d;
  COHORT_RETURN_IF_ERROR(r.read_enum("distribution", &out.kind, kDistributions));
  COHORT_RETURN_IF_ERROR(r.read("mean", &out.mean));
  COHORT_RETURN_IF_ERROR(r.read("std", &out.std, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read("low", &out.low));
  COHORT_RETURN_IF_ERROR(r.read("high", &out.high));
  COHORT_RETURN_IF_ERROR(r.read("sigma", &out.sigma));
  COHORT_RETURN_IF_ERROR(r.read("min", &out.min));
  COHORT_RETURN_IF_ERROR(r.read("max", &out.max));
  if (out.kind != "uniform" && !(out.mean > 0)) {
    return r.error("mean", "must be > 0, got " + format_number(out.mean));
  }
  if (out.kind == "uniform" && !(out.low < out.high)) {
    return r.error("high", "must be > low (" + format_number(out.low) +
                               ") for a uniform distribution, got " + format_number(out.high));
  }
  if (out.kind == "lognormal" && !(out.sigma > 0)) {
    return r.error("sigma", "must be > 0 for a lognormal distribution, got " +
                                format_number(out.sigma));
  }
  if (!(out.min <= out.max)) {
    return r.error("max", "must be >= min (" + format_number(out.min) + "), got " +
                              format_number(out.max));
  }
  *d = out;
  return Status();
}

constexpr std::array<std::string_view, 2> kAvailabilityDistributions = {"exponential",
                                                                        "constant"};

// The ranges repeat sim::ClientDynamics::validate (the simulator checks again at run time).
Status read_clients(const MapReader& top, sim::PopulationOptions* p) {
  const MapReader r = top.section("clients");
  COHORT_RETURN_IF_ERROR(r.open({"count", "speed", "up_mbps", "down_mbps", "latency_ms", "trace",
                                 "jitter", "dropout", "task_timeout_factor", "availability"}));
  // `trace: null` (what config.json holds without a trace) means no trace. The file itself is
  // read when the population is drawn, not here.
  if (const Node* t = r.get("trace")) {
    if (t->kind == Node::Kind::kNull) {
      p->trace.clear();
    } else {
      COHORT_RETURN_IF_ERROR(r.read("trace", &p->trace));
    }
  }
  // With a trace, count 0 (also an omitted count) means as many clients as the trace has rows.
  if (!p->trace.empty() && r.get("count") == nullptr) p->num_clients = 0;
  COHORT_RETURN_IF_ERROR(
      r.read("count", &p->num_clients, Range::at_least(p->trace.empty() ? 1 : 0)));
  COHORT_RETURN_IF_ERROR(read_distribution(r, "speed", &p->speed));
  COHORT_RETURN_IF_ERROR(read_distribution(r, "up_mbps", &p->up_mbps));
  COHORT_RETURN_IF_ERROR(read_distribution(r, "down_mbps", &p->down_mbps));
  COHORT_RETURN_IF_ERROR(read_distribution(r, "latency_ms", &p->latency_ms));
  sim::ClientDynamics& dyn = p->dynamics;
  COHORT_RETURN_IF_ERROR(r.read("jitter", &dyn.jitter, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read("dropout", &dyn.dropout, Range::half_open(0, 1)));
  COHORT_RETURN_IF_ERROR(
      r.read("task_timeout_factor", &dyn.task_timeout_factor, Range::at_least(1)));
  const MapReader a = r.section("availability");
  COHORT_RETURN_IF_ERROR(a.open({"mean_online_s", "mean_offline_s", "distribution"}));
  COHORT_RETURN_IF_ERROR(
      a.read("mean_online_s", &dyn.availability.mean_online_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      a.read("mean_offline_s", &dyn.availability.mean_offline_s, Range::above(0)));
  COHORT_RETURN_IF_ERROR(a.read_enum("distribution", &dyn.availability.distribution,
                                     kAvailabilityDistributions));
  return Status();
}

Status read_model(const MapReader& top, ModelConfig* m) {
  const MapReader r = top.section("model");
  COHORT_RETURN_IF_ERROR(r.open({"name", "hidden"}));
  COHORT_RETURN_IF_ERROR(r.read_enum("name", &m->name, kModels));
  if (const Node* h = r.get("hidden")) {
    const std::string path = r.child("hidden");
    if (h->kind != Node::Kind::kSeq) {
      return r.error("hidden", "expected a sequence of integers, got " + describe(*h));
    }
    std::vector<int64_t> hidden;
    for (size_t i = 0; i < h->items.size(); ++i) {
      COHORT_ASSIGN_OR_RETURN(int64_t width, to_int(r.ctx(), h->items[i],
                                                    path + "[" + std::to_string(i) + "]",
                                                    Range::at_least(1)));
      hidden.push_back(width);
    }
    m->hidden = std::move(hidden);
  }
  return Status();
}

// The range checks repeat TrainConfig::validate's rules so messages quote the value as the
// user wrote it and name an override; validate() then runs as the authority, so a rule
// added there applies here too.
Status read_training(const MapReader& top, TrainConfig* t) {
  const MapReader r = top.section("training");
  COHORT_RETURN_IF_ERROR(r.open({"optimizer", "lr", "momentum", "weight_decay", "batch_size",
                                 "local_epochs", "local_steps"}));
  COHORT_RETURN_IF_ERROR(r.read_enum("optimizer", &t->optimizer, kOptimizers));
  COHORT_RETURN_IF_ERROR(r.read("lr", &t->lr, Range::above(0)));
  COHORT_RETURN_IF_ERROR(r.read("momentum", &t->momentum, Range::half_open(0, 1)));
  COHORT_RETURN_IF_ERROR(r.read("weight_decay", &t->weight_decay, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read("batch_size", &t->batch_size, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(r.read("local_epochs", &t->local_epochs));
  COHORT_RETURN_IF_ERROR(r.read("local_steps", &t->local_steps, Range::at_least(0)));
  if (t->local_steps == 0 && !(t->local_epochs > 0)) {
    return r.error("local_epochs", "must be > 0 when local_steps is 0, got " +
                                       format_number(t->local_epochs));
  }
  const Status s = t->validate();
  if (!s.ok()) return r.ctx().plain_error(s.message());
  return Status();
}

Status read_strategy(const MapReader& top, StrategyConfig* s) {
  if (top.get("strategy") == nullptr) return Status();
  const MapReader r = top.section("strategy");
  COHORT_RETURN_IF_ERROR(r.open({}));
  if (r.get("name") == nullptr) {
    return r.error("name", "required key is missing (the strategy to run, e.g. fedavg)");
  }
  COHORT_RETURN_IF_ERROR(r.read("name", &s->name));
  // Parameters are not checked here: the strategy registry knows each strategy's keys.
  ConfigRecord params;
  for (const auto& [key, value] : r.node().entries) {
    if (key == "name") continue;
    COHORT_ASSIGN_OR_RETURN(params[key], to_param(r.ctx(), value, r.child(key)));
  }
  s->params = std::move(params);
  return Status();
}

// A label names a directory of `cohort compare`'s output, so it must be one safe path
// component on every platform.
bool valid_label(const std::string& label) {
  if (label.empty() || label[0] == '.' || label[0] == '-') return false;
  for (char ch : label) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == '+';
    if (!ok) return false;
  }
  return true;
}

Status read_strategies(const MapReader& top, std::vector<StrategyConfig>* out) {
  const Node* list = top.get("strategies");
  if (list == nullptr) return Status();
  const Context& ctx = top.ctx();
  if (top.get("strategy") != nullptr) {
    return ctx.error("strategies", "cannot be combined with a strategy: section; use "
                                   "strategies: (a list, for cohort compare) or strategy: "
                                   "(one strategy, for cohort simulate)");
  }
  if (list->kind != Node::Kind::kSeq) {
    return ctx.error("strategies", "expected a sequence of mappings (- name: fedavg ...), got " +
                                       describe(*list));
  }
  if (list->items.empty()) return ctx.error("strategies", "must list at least one strategy");
  std::vector<StrategyConfig> result;
  for (size_t i = 0; i < list->items.size(); ++i) {
    const std::string path = "strategies[" + std::to_string(i) + "]";
    const Node& item = list->items[i];
    if (item.kind != Node::Kind::kMap) {
      return ctx.error(path, "expected a mapping (name: ... plus parameters), got " +
                                 describe(item));
    }
    const MapReader r(ctx, item, path);
    if (r.get("name") == nullptr) {
      return r.error("name", "required key is missing (the strategy to run, e.g. fedavg)");
    }
    StrategyConfig s;
    COHORT_RETURN_IF_ERROR(r.read("name", &s.name));
    s.label = s.name;
    COHORT_RETURN_IF_ERROR(r.read("label", &s.label));
    if (!valid_label(s.label)) {
      return r.error(r.get("label") != nullptr ? "label" : "name",
                     "'" + s.label + "' cannot be used as a label (a directory name): use "
                     "letters, digits, '.', '_', '-' or '+', not starting with '.' or '-'" +
                     (r.get("label") != nullptr ? "" : "; add a label: key"));
    }
    for (size_t j = 0; j < result.size(); ++j) {
      if (result[j].label != s.label) continue;
      const std::string other = "strategies[" + std::to_string(j) + "]";
      if (r.get("label") != nullptr) {
        return r.error("label", "'" + s.label + "' is already the label of " + other +
                                    "; labels must be unique");
      }
      return r.error("name", "'" + s.label + "' is already the label of " + other +
                                 " (a label defaults to the name); add a distinct label: "
                                 "key, e.g. label: " + s.label + "-2");
    }
    for (const auto& [key, value] : item.entries) {
      if (key == "name" || key == "label") continue;
      COHORT_ASSIGN_OR_RETURN(s.params[key], to_param(ctx, value, r.child(key)));
    }
    result.push_back(std::move(s));
  }
  *out = std::move(result);
  return Status();
}

Status read_run(const MapReader& top, RunConfig* run) {
  const MapReader r = top.section("run");
  COHORT_RETURN_IF_ERROR(r.open({"rounds", "max_virtual_time_s", "eval_every", "eval_interval_s",
                                 "target_accuracy", "seed", "threads"}));
  COHORT_RETURN_IF_ERROR(r.read("rounds", &run->rounds, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      r.read("max_virtual_time_s", &run->max_virtual_time_s, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read("eval_every", &run->eval_every, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(r.read("eval_interval_s", &run->eval_interval_s, Range::at_least(0)));
  if (run->eval_every == 0 && !(run->eval_interval_s > 0)) {
    return r.error("eval_every", "must be >= 1 unless run.eval_interval_s > 0, got 0");
  }
  COHORT_RETURN_IF_ERROR(r.read("target_accuracy", &run->target_accuracy, Range::closed(0, 1)));
  COHORT_RETURN_IF_ERROR(r.read("seed", &run->seed));
  COHORT_RETURN_IF_ERROR(r.read("threads", &run->threads, Range::at_least(0)));
  if (run->rounds == 0 && run->max_virtual_time_s == 0) {
    return r.ctx().error("run", "rounds and max_virtual_time_s are both 0 (no limit), so the "
                                "run would never stop; set at least one of them");
  }
  return Status();
}

Result<SimulationConfig> build_config(const Node& root, const Context& ctx) {
  SimulationConfig c;
  const MapReader top(ctx, root, "");
  COHORT_RETURN_IF_ERROR(top.open({"data", "clients", "model", "training", "strategy",
                                   "strategies", "run"}));
  COHORT_RETURN_IF_ERROR(read_data(top, &c.data));
  COHORT_RETURN_IF_ERROR(read_clients(top, &c.clients));
  COHORT_RETURN_IF_ERROR(read_model(top, &c.model));
  COHORT_RETURN_IF_ERROR(read_training(top, &c.training));
  // The list first: with both keys given, that conflict is the error to report.
  COHORT_RETURN_IF_ERROR(read_strategies(top, &c.strategies));
  COHORT_RETURN_IF_ERROR(read_strategy(top, &c.strategy));
  COHORT_RETURN_IF_ERROR(read_run(top, &c.run));
  return c;
}

Json distribution_json(const sim::Distribution& d) {
  Json j = Json::object();
  j["distribution"] = d.kind;
  j["mean"] = d.mean;
  j["std"] = d.std;
  j["low"] = d.low;
  j["high"] = d.high;
  j["sigma"] = d.sigma;
  j["min"] = d.min;
  j["max"] = d.max;
  return j;
}

}  // namespace

Result<SimulationConfig> parse_simulation_config(const std::string& yaml_text,
                                                 const std::string& source,
                                                 const std::vector<std::string>& overrides) {
  Context ctx(source);
  COHORT_ASSIGN_OR_RETURN(Node root, parse_yaml(yaml_text, "", "", ctx));
  if (root.kind != Node::Kind::kNull && root.kind != Node::Kind::kMap) {
    return ctx.plain_error("expected a mapping at the top level, got " + describe(root));
  }
  for (const std::string& ov : overrides) COHORT_RETURN_IF_ERROR(apply_override(ov, &root, &ctx));
  return build_config(root, ctx);
}

Result<SimulationConfig> load_simulation_config(const std::string& path,
                                                const std::vector<std::string>& overrides) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    return Status::not_found("cannot read config file '" + path + "': " + std::strerror(errno));
  }
  std::string text;
  char buf[1 << 14];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get())) {
    // fopen succeeds on a directory on Linux; the read then fails with EISDIR.
    return Status::not_found("cannot read config file '" + path + "': " + std::strerror(errno));
  }
  return parse_simulation_config(text, path, overrides);
}

Json to_json(const SimulationConfig& config) {
  const DataConfig& d = config.data;
  Json data = Json::object();
  data["dataset"] = d.dataset;
  data["path"] = d.path;
  data["train_limit"] = d.train_limit;
  data["test_limit"] = d.test_limit;
  data["partition"] = d.partition.kind;
  data["alpha"] = d.partition.alpha;
  data["shards_per_client"] = d.partition.shards_per_client;
  data["min_size"] = d.partition.min_size;
  data["size_skew"] = d.partition.size_skew;
  data["holdout_fraction"] = d.holdout_fraction;
  Json synthetic = Json::object();
  synthetic["num_examples"] = d.synthetic.num_examples;
  synthetic["test_examples"] = d.synthetic_test_examples;
  synthetic["dim"] = d.synthetic.dim;
  synthetic["classes"] = d.synthetic.num_classes;
  synthetic["separation"] = d.synthetic.separation;
  synthetic["noise"] = d.synthetic.noise;
  data["synthetic"] = std::move(synthetic);

  const sim::PopulationOptions& p = config.clients;
  Json clients = Json::object();
  clients["count"] = p.num_clients;
  clients["speed"] = distribution_json(p.speed);
  clients["up_mbps"] = distribution_json(p.up_mbps);
  clients["down_mbps"] = distribution_json(p.down_mbps);
  clients["latency_ms"] = distribution_json(p.latency_ms);
  clients["trace"] = p.trace.empty() ? Json(nullptr) : Json(p.trace);
  clients["jitter"] = p.dynamics.jitter;
  clients["dropout"] = p.dynamics.dropout;
  clients["task_timeout_factor"] = p.dynamics.task_timeout_factor;
  Json availability = Json::object();
  availability["mean_online_s"] = p.dynamics.availability.mean_online_s;
  availability["mean_offline_s"] = p.dynamics.availability.mean_offline_s;
  availability["distribution"] = p.dynamics.availability.distribution;
  clients["availability"] = std::move(availability);

  Json model = Json::object();
  model["name"] = config.model.name;
  model["hidden"] = config.model.hidden;

  const TrainConfig& t = config.training;
  Json training = Json::object();
  training["optimizer"] = t.optimizer;
  training["lr"] = t.lr;
  training["momentum"] = t.momentum;
  training["weight_decay"] = t.weight_decay;
  training["batch_size"] = t.batch_size;
  training["local_epochs"] = t.local_epochs;
  training["local_steps"] = t.local_steps;

  Json strategy = Json::object();
  strategy["name"] = config.strategy.name;
  for (const auto& [key, value] : config.strategy.params) {
    strategy[key] = std::visit([](const auto& v) { return Json(v); }, value);
  }

  const RunConfig& r = config.run;
  Json run = Json::object();
  run["rounds"] = r.rounds;
  run["max_virtual_time_s"] = r.max_virtual_time_s;
  run["eval_every"] = r.eval_every;
  run["eval_interval_s"] = r.eval_interval_s;
  run["target_accuracy"] = r.target_accuracy;
  run["seed"] = r.seed;
  run["threads"] = r.threads;

  Json j = Json::object();
  j["data"] = std::move(data);
  j["clients"] = std::move(clients);
  j["model"] = std::move(model);
  j["training"] = std::move(training);
  if (config.strategies.empty()) {
    j["strategy"] = std::move(strategy);
  } else {
    Json list = Json::array();
    for (const StrategyConfig& sc : config.strategies) {
      Json item = Json::object();
      item["name"] = sc.name;
      item["label"] = sc.label;
      for (const auto& [key, value] : sc.params) {
        item[key] = std::visit([](const auto& v) { return Json(v); }, value);
      }
      list.push_back(std::move(item));
    }
    j["strategies"] = std::move(list);
  }
  j["run"] = std::move(run);
  return j;
}

}  // namespace cohort
