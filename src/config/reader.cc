#include "config/reader.h"

#include <charconv>
#include <cmath>

namespace cohort::config_detail {

Result<int64_t> to_int(const Context& ctx, const Node& n, const std::string& path) {
  const ScalarValue v = classify(n);
  if (v.kind != ScalarKind::kInt) return ctx.error(path, "expected an integer, got " + describe(n));
  if (v.int_out_of_range) {
    return ctx.error(path, "integer out of the 64-bit range, got " + describe(n));
  }
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

Result<double> to_number(const Context& ctx, const Node& n, const std::string& path) {
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
  return d;
}

Result<bool> to_bool(const Context& ctx, const Node& n, const std::string& path) {
  const ScalarValue v = classify(n);
  if (v.kind != ScalarKind::kBool)
    return ctx.error(path, "expected true or false, got " + describe(n));
  return v.b;
}

Result<std::string> to_string_value(const Context& ctx, const Node& n, const std::string& path) {
  if (n.kind != Node::Kind::kScalar)
    return ctx.error(path, "expected a string, got " + describe(n));
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

}  // namespace cohort::config_detail
