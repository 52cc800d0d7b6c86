// The report's text helpers (report/text.h).
#include "report/text.h"

#include <algorithm>
#include <cmath>

#include "cohort/core/format.h"

namespace cohort::report_detail {

std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string num(double v) { return strformat("%.2f", v); }

std::string sig3(double v) { return strformat("%.3g", v); }

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string short_num(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return with_commas(static_cast<int64_t>(v));
  }
  return strformat("%.6g", v);
}

std::string fmt_bytes(double b) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (std::fabs(b) >= 1000.0 && u < 5) {
    b /= 1000.0;
    ++u;
  }
  if (u == 0) return strformat("%.0f B", b);
  const double a = std::fabs(b);
  return strformat(a < 10 ? "%.2f %s" : a < 100 ? "%.1f %s" : "%.0f %s", b, kUnits[u]);
}

std::string bytes_tick(double v, double step) {
  if (v == 0) return "0";
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  double scale = 1.0;
  while (std::fabs(v) >= 1000.0 * scale && u < 5) {
    scale *= 1000.0;
    ++u;
  }
  int decimals = 0;
  if (step > 0) {
    const double s = step / scale;
    decimals = s >= 1 ? 0 : std::min(3, static_cast<int>(std::ceil(-std::log10(s) - 1e-9)));
  } else {
    while (decimals < 3 && std::fabs(v / scale * std::pow(10.0, decimals) -
                                     std::round(v / scale * std::pow(10.0, decimals))) > 1e-6) {
      ++decimals;
    }
  }
  return strformat("%.*f %s", decimals, v / scale, kUnits[u]);
}

std::string fmt_pct(double v, int decimals) { return strformat("%.*f%%", decimals, v * 100.0); }

std::string fmt_seconds(double s) {
  if (s < 10) return strformat("%.2f s", s);
  if (s < 1000) return strformat("%.1f s", s);
  return with_commas(static_cast<int64_t>(std::llround(s))) + " s";
}

std::optional<double> opt_number(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}

std::string json_text(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

std::string param_value(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return short_num(v.get<double>());
  return v.dump();
}

}  // namespace cohort::report_detail
