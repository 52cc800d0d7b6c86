// The YAML value tree the config loader reads, its scalar typing (YAML 1.2 core schema), the
// error context (file, overrides) and --set overrides. Internal to cohort_config.
#include "config/yaml_tree.h"

#include <charconv>
#include <exception>
#include <limits>
#include <regex>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "cohort/core/validate.h"

namespace cohort::config_detail {

// ---------------------------------------------------------------------------------------
// A YAML value tree we own. yaml-cpp's Node has reference semantics (assigning one Node to
// another rewrites the shared data; non-const operator[] inserts keys and turns null into a
// map), which makes the in-place edits that overrides need error-prone. Copying the parsed
// document into plain values first keeps editing and reading trivial.

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

// ---------------------------------------------------------------------------------------
// Plain scalars are resolved with the YAML 1.2 core schema (true/false only for booleans, so
// strings such as "no" or "on" stay strings); quoted or tagged scalars are always strings.

bool matches(std::string_view s, const std::regex& re) {
  return std::regex_match(s.data(), s.data() + s.size(), re);
}

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
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
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
// Error context.

Status Context::error(const std::string& path, const std::string& what) const {
  std::string m = prefix();
  if (!path.empty()) m += path + ": ";
  m += what;
  if (const std::string* ov = source_.override_for(path)) m += " (from override '" + *ov + "')";
  return Status::invalid_argument(std::move(m));
}

Status Context::plain_error(const std::string& what) const {
  return Status::invalid_argument(prefix() + what);
}

void Context::add_override(std::string path, std::string text) {
  source_.overrides.emplace_back(std::move(path), std::move(text));
}

std::string Context::prefix() const {
  return source_.file.empty() ? std::string() : source_.file + ": ";
}

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

// Receives the parser's events and drops them (counting documents needs no tree).
class NullEventHandler final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Parses one YAML document; `what` prefixes syntax errors, `base` prefixes key paths.
Result<Node> parse_yaml(const std::string& text, const std::string& what, const std::string& base,
                        const Context& ctx) {
  try {
    // Count the documents with a bounded loop instead of YAML::LoadAll: on some malformed
    // input (a stray ',') yaml-cpp 0.7's parser reports empty documents forever without
    // consuming anything, and LoadAll grows its vector until memory runs out (found by
    // fuzz/fuzz_config.cc; regression in fuzz/regressions/config/).
    constexpr int kMaxDocuments = 16;
    int documents = 0;
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      NullEventHandler ignore;
      while (documents <= kMaxDocuments && parser.HandleNextDocument(ignore)) ++documents;
    }
    if (documents > 1) {
      return ctx.plain_error(what + "expected one YAML document, found " +
                             (documents > kMaxDocuments ? "more than " + std::to_string(kMaxDocuments)
                                                        : std::to_string(documents)));
    }
    Node root;
    if (documents == 1) COHORT_RETURN_IF_ERROR(convert(YAML::Load(text), base, 0, ctx, &root));
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

const Node* find_path(const Node& root, const std::string& path) {
  const Node* cur = &root;
  size_t i = 0;
  while (i < path.size() && cur != nullptr) {
    if (path[i] == '.') ++i;
    if (path[i] == '[') {
      const size_t close = path.find(']', i);
      if (close == std::string::npos || cur->kind != Node::Kind::kSeq) return nullptr;
      size_t index = 0;
      auto r = std::from_chars(path.data() + i + 1, path.data() + close, index);
      if (r.ec != std::errc() || index >= cur->items.size()) return nullptr;
      cur = &cur->items[index];
      i = close + 1;
      continue;
    }
    const size_t end = path.find_first_of(".[", i);
    const std::string key = path.substr(i, end == std::string::npos ? std::string::npos : end - i);
    cur = cur->kind == Node::Kind::kMap ? cur->find(key) : nullptr;
    i = end == std::string::npos ? path.size() : end;
  }
  return cur;
}

}  // namespace cohort::config_detail

namespace cohort {

// The last override whose path is `path`, an ancestor of it (the override set a whole
// subtree) or a descendant of it (the override created `path` as an intermediate map).
const std::string* ConfigSource::override_for(const std::string& path) const {
  using config_detail::starts_with;
  if (path.empty()) return nullptr;
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
    const std::string& op = it->first;
    if (path == op || starts_with(path, op + ".") || starts_with(path, op + "[") ||
        starts_with(op, path + ".")) {
      return &it->second;
    }
  }
  return nullptr;
}

Status ConfigSource::explain(const Status& error) const {
  if (error.ok()) return error;
  auto [path, what] = split_field_error(error.message());
  std::string m = file.empty() ? std::string() : file + ": ";
  m += error.message();
  if (const std::string* ov = override_for(path)) m += " (from override '" + *ov + "')";
  return Status(error.code(), std::move(m));
}

}  // namespace cohort
