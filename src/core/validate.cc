#include "cohort/core/validate.h"

#include <cmath>

#include "cohort/core/format.h"

namespace cohort {

bool Range::contains(double x) const {
  if (!std::isfinite(x)) return false;
  if (lo == Bound::kClosed && !(x >= lo_v)) return false;
  if (lo == Bound::kOpen && !(x > lo_v)) return false;
  if (hi == Bound::kClosed && !(x <= hi_v)) return false;
  if (hi == Bound::kOpen && !(x < hi_v)) return false;
  return true;
}

std::string Range::describe() const {
  if (lo == Bound::kNone && hi == Bound::kNone) return "a number";
  if (hi == Bound::kNone) {
    return std::string(lo == Bound::kOpen ? "> " : ">= ") + format_number(lo_v);
  }
  if (lo == Bound::kNone) {
    return std::string(hi == Bound::kOpen ? "< " : "<= ") + format_number(hi_v);
  }
  return std::string("in ") + (lo == Bound::kOpen ? "(" : "[") + format_number(lo_v) + ", " +
         format_number(hi_v) + (hi == Bound::kOpen ? ")" : "]");
}

Status field_error(std::string_view path, std::string_view what) {
  std::string m(path);
  m += ": ";
  m += what;
  return Status::invalid_argument(std::move(m));
}

Status check_field(std::string_view path, double v, const Range& range) {
  if (range.contains(v)) return Status();
  return field_error(path, "must be " + range.describe() + ", got " + format_number(v));
}

Status check_field(std::string_view path, int64_t v, const Range& range) {
  if (range.contains(static_cast<double>(v))) return Status();
  return field_error(path, "must be " + range.describe() + ", got " + std::to_string(v));
}

std::pair<std::string, std::string> split_field_error(const std::string& message) {
  const size_t colon = message.find(": ");
  if (colon == std::string::npos || colon == 0) return {"", message};
  for (size_t i = 0; i < colon; ++i) {
    const char c = message[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '[' || c == ']' || c == '-';
    if (!ok) return {"", message};
  }
  return {message.substr(0, colon), message.substr(colon + 2)};
}

}  // namespace cohort
