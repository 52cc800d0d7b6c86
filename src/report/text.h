// Text helpers of the HTML report: HTML escaping, the number, byte, percentage and time
// formats of its cells, tooltips and tick labels, and reading fields of the JSON rows.
// Private to src/report.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cohort/core/metrics.h"

namespace cohort::report_detail {

// `s` with & < > " ' replaced by their entities, for HTML text and attribute values.
std::string esc(std::string_view s);

// SVG coordinates: two decimals keep the file small and the lines smooth.
std::string num(double v);

// An integer with thousands separators: "1,234,567".
std::string with_commas(int64_t v);

// Shortest "%g"-style text for parameters and distribution values (0.5, 100, 1e-06).
std::string short_num(double v);

// Three significant digits ("%.3g"): table cells of scores and budgets.
std::string sig3(double v);

// A byte count in its decimal unit with three significant digits or so: "512 B", "1.25 MB".
std::string fmt_bytes(double b);

// A tick label in the decimal unit of the value, with the decimals the step needs (so a
// 50 MB step reads "50 MB", "100 MB", a 0.5 MB step "1.5 MB"); step 0 = as few as exact.
std::string bytes_tick(double v, double step);

// A fraction as a percentage: 0.9123 -> "91.23%".
std::string fmt_pct(double v, int decimals = 2);

// A duration in seconds: "1.25 s", "12.5 s", "1,234 s".
std::string fmt_seconds(double s);

inline constexpr const char* kDash = "&ndash;";

// j[key] when `j` is an object holding a number there.
std::optional<double> opt_number(const Json& j, const char* key);

// j[key] as text: a string as is, anything else as JSON; "" when absent.
std::string json_text(const Json& j, const char* key);

// A strategy parameter's value as text.
std::string param_value(const Json& v);

}  // namespace cohort::report_detail
