// The HTML report. Everything is computed here, at generation time, so the page is static:
// inline CSS, inline SVG, no script and no external resource (no URL at all; inline SVG in
// HTML needs no xmlns).
#include "cohort/runner/report.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>

#include "cohort/runner/compare.h"

namespace cohort {

namespace {

// ---------------------------------------------------------------------------------------
// Text helpers.

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

std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return "";
  if (static_cast<size_t>(n) < sizeof buf) return std::string(buf, static_cast<size_t>(n));
  std::string big(static_cast<size_t>(n) + 1, '\0');
  va_start(ap, fmt);
  std::vsnprintf(big.data(), big.size(), fmt, ap);
  va_end(ap);
  big.resize(static_cast<size_t>(n));
  return big;
}

// SVG coordinates: two decimals keep the file small and the lines smooth.
std::string num(double v) { return strf("%.2f", v); }

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

// Shortest "%g"-style text for parameters and distribution values (0.5, 100, 1e-06).
std::string short_num(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return with_commas(static_cast<int64_t>(v));
  }
  return strf("%.6g", v);
}

std::string fmt_bytes(double b) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (std::fabs(b) >= 1000.0 && u < 5) {
    b /= 1000.0;
    ++u;
  }
  if (u == 0) return strf("%.0f B", b);
  const double a = std::fabs(b);
  return strf(a < 10 ? "%.2f %s" : a < 100 ? "%.1f %s" : "%.0f %s", b, kUnits[u]);
}

// A tick label in the decimal unit of the value, with the decimals the step needs (so a
// 50 MB step reads "50 MB", "100 MB", a 0.5 MB step "1.5 MB"); step 0 = as few as exact.
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
  return strf("%.*f %s", decimals, v / scale, kUnits[u]);
}

std::string fmt_pct(double v, int decimals = 2) { return strf("%.*f%%", decimals, v * 100.0); }

std::string fmt_seconds(double s) {
  if (s < 10) return strf("%.2f s", s);
  if (s < 1000) return strf("%.1f s", s);
  return with_commas(static_cast<int64_t>(std::llround(s))) + " s";
}

constexpr const char* kDash = "&ndash;";

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

// ---------------------------------------------------------------------------------------
// Axes.

// Colour-blind-friendly and distinct on white (Tableau 10); lines past ten also get dashes.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1",
                                    "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#7f7f7f"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);
const char* colour(size_t i) { return kPalette[i % kPaletteSize]; }
std::string dash(size_t i) {
  static const char* kDashes[] = {"", "7 4", "2 3", "9 3 2 3"};
  const size_t k = (i / kPaletteSize) % 4;
  return k == 0 ? "" : std::string(" stroke-dasharray=\"") + kDashes[k] + "\"";
}

// A step of 1, 2 or 5 times a power of ten giving about `count` intervals over `range`.
double nice_step(double range, int count) {
  if (!(range > 0)) return 1.0;
  const double raw = range / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  return (r < 1.5 ? 1.0 : r < 3.0 ? 2.0 : r < 7.0 ? 5.0 : 10.0) * mag;
}

int decimals_for(double step) {
  if (!(step > 0)) return 0;
  return std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
}

struct Axis {
  double lo = 0.0;
  double hi = 1.0;
  bool log = false;
  std::vector<double> ticks;
  std::vector<std::string> labels;

  // Position in [0, 1].
  double frac(double v) const {
    if (log) return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (v - lo) / (hi - lo);
  }
};

using TickFormat = std::function<std::string(double value, double step)>;

Axis linear_axis(double lo, double hi, int count, const TickFormat& format, double min_step = 0.0) {
  if (!(hi > lo)) hi = lo + (lo == 0 ? 1.0 : std::fabs(lo) * 0.1);
  double step = std::max(nice_step(hi - lo, count), min_step);
  Axis a;
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  if (!(a.hi > a.lo)) a.hi = a.lo + step;
  for (int k = 0;; ++k) {
    const double v = a.lo + k * step;
    if (v > a.hi + step * 1e-6) break;
    a.ticks.push_back(v);
    a.labels.push_back(format(v, step));
  }
  return a;
}

Axis log_axis(double lo, double hi, const TickFormat& format) {
  Axis a;
  a.log = true;
  a.lo = lo / 1.15;
  a.hi = hi * 1.15;
  const int e0 = static_cast<int>(std::floor(std::log10(a.lo)));
  const int e1 = static_cast<int>(std::ceil(std::log10(a.hi)));
  // 1-2-5 ticks over a few decades, powers of ten only over many.
  const std::vector<double> mults =
      e1 - e0 <= 3 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
  for (int e = e0; e <= e1; ++e) {
    for (double m : mults) {
      const double v = m * std::pow(10.0, e);
      if (v >= a.lo && v <= a.hi) {
        a.ticks.push_back(v);
        a.labels.push_back(format(v, v));
      }
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------
// Plots.

enum class XKind { kTime, kUpdates, kBytes };

double eval_x(const Json& e, XKind kind) {
  switch (kind) {
    case XKind::kTime:
      return e.value("virtual_time_s", 0.0);
    case XKind::kUpdates:
      return static_cast<double>(e.value("updates", int64_t{0}));
    case XKind::kBytes:
      return static_cast<double>(e.value("bytes_up", int64_t{0}) +
                                 e.value("bytes_down", int64_t{0}));
  }
  return 0.0;
}

struct TimeUnit {
  double scale;
  const char* name;
};

TimeUnit time_unit(double max_s) {
  if (max_s >= 36000) return {3600.0, "h"};
  if (max_s >= 1200) return {60.0, "min"};
  return {1.0, "s"};
}

std::string eval_tooltip(const std::string& label, const Json& e) {
  return label + " \xe2\x80\x94 round " + std::to_string(e.value("round", int64_t{0})) + ": " +
         fmt_pct(e.value("accuracy", 0.0)) + " at " + fmt_seconds(e.value("virtual_time_s", 0.0)) +
         ", " + with_commas(e.value("updates", int64_t{0})) + " updates, " +
         fmt_bytes(eval_x(e, XKind::kBytes));
}

constexpr double kWidth = 1000;
constexpr double kMarginLeft = 72;
constexpr double kMarginRight = 28;
constexpr double kMarginBottom = 54;
constexpr double kPlotHeight = 340;
constexpr size_t kMaxMarkers = 80;  // points per line above which markers are left out

struct LegendItem {
  double x, y;
};

// Legend entries laid out in rows above the plot area; returns their positions and the
// height used.
std::vector<LegendItem> legend_layout(const std::vector<ReportSeries>& series, double* height) {
  std::vector<LegendItem> out;
  const double x0 = kMarginLeft;
  const double x1 = kWidth - kMarginRight;
  double x = x0;
  double y = 22;
  for (const auto& s : series) {
    // 7.3 px per character approximates 13 px sans-serif text.
    const double w = 34 + 7.3 * static_cast<double>(s.label.size()) + 22;
    if (x > x0 && x + w > x1) {
      x = x0;
      y += 22;
    }
    out.push_back({x, y});
    x += w;
  }
  *height = y + 18;
  return out;
}

std::string render_plot(const std::string& aria, XKind kind,
                        const std::vector<ReportSeries>& series, const Axis& y_axis,
                        double target) {
  // The x range over every point of every line.
  double x_max = 0.0;
  double x_min_pos = std::numeric_limits<double>::infinity();
  std::vector<double> finals;  // per series, the last x (for the log-scale decision)
  for (const auto& s : series) {
    for (const Json& e : s.evals) {
      const double x = eval_x(e, kind);
      x_max = std::max(x_max, x);
      if (x > 0) x_min_pos = std::min(x_min_pos, x);
    }
    if (!s.evals.empty()) finals.push_back(eval_x(s.evals.back(), kind));
  }
  bool log = false;
  if (kind == XKind::kBytes && finals.size() > 1) {
    const double lo = *std::min_element(finals.begin(), finals.end());
    const double hi = *std::max_element(finals.begin(), finals.end());
    log = lo > 0 && hi / lo > 10.0;
  }

  std::string x_title;
  double x_scale = 1.0;
  Axis x_axis;
  if (kind == XKind::kTime) {
    const TimeUnit u = time_unit(x_max);
    x_scale = u.scale;
    x_title = std::string("virtual time (") + u.name + ")";
    x_axis = linear_axis(0, x_max / u.scale, 8,
                         [](double v, double step) { return strf("%.*f", decimals_for(step), v); });
  } else if (kind == XKind::kUpdates) {
    x_title = "accepted client updates";
    x_axis = linear_axis(
        0, x_max, 8,
        [](double v, double) { return with_commas(static_cast<int64_t>(std::llround(v))); }, 1.0);
  } else {
    x_title = log ? "bytes sent up + down (log scale)" : "bytes sent up + down";
    if (log && std::isfinite(x_min_pos)) {
      x_axis = log_axis(x_min_pos, x_max, [](double v, double) { return bytes_tick(v, 0); });
    } else {
      x_axis = linear_axis(0, x_max, 8, [](double v, double step) { return bytes_tick(v, step); });
    }
  }

  double legend_h = 0;
  const std::vector<LegendItem> legend = legend_layout(series, &legend_h);
  const double top = legend_h + 14;
  const double height = top + kPlotHeight + kMarginBottom;
  const double px0 = kMarginLeft;
  const double px1 = kWidth - kMarginRight;
  const double py0 = top + kPlotHeight;  // y of the bottom of the plot area
  const double py1 = top;
  auto X = [&](double v) { return px0 + x_axis.frac(v / x_scale) * (px1 - px0); };
  auto Y = [&](double v) { return py0 - y_axis.frac(v) * (py0 - py1); };

  std::string svg;
  svg += "<svg class=\"plot\" viewBox=\"0 0 " + num(kWidth) + " " + num(height) +
         "\" role=\"img\" aria-label=\"" + esc(aria) + "\">\n";
  // Grid and tick labels.
  svg += "<g class=\"grid\">";
  for (size_t k = 0; k < y_axis.ticks.size(); ++k) {
    const double y = Y(y_axis.ticks[k]);
    svg += "<line x1=\"" + num(px0) + "\" x2=\"" + num(px1) + "\" y1=\"" + num(y) + "\" y2=\"" +
           num(y) + "\"/>";
  }
  for (size_t k = 0; k < x_axis.ticks.size(); ++k) {
    const double x = px0 + x_axis.frac(x_axis.ticks[k]) * (px1 - px0);
    svg += "<line x1=\"" + num(x) + "\" x2=\"" + num(x) + "\" y1=\"" + num(py1) + "\" y2=\"" +
           num(py0) + "\"/>";
  }
  svg += "</g>\n<g class=\"ticks\">";
  for (size_t k = 0; k < y_axis.ticks.size(); ++k) {
    svg += "<text x=\"" + num(px0 - 10) + "\" y=\"" + num(Y(y_axis.ticks[k]) + 4) +
           "\" text-anchor=\"end\">" + esc(y_axis.labels[k]) + "</text>";
  }
  for (size_t k = 0; k < x_axis.ticks.size(); ++k) {
    const double x = px0 + x_axis.frac(x_axis.ticks[k]) * (px1 - px0);
    svg += "<text x=\"" + num(x) + "\" y=\"" + num(py0 + 20) + "\" text-anchor=\"middle\">" +
           esc(x_axis.labels[k]) + "</text>";
  }
  svg += "</g>\n";
  svg += "<path class=\"axis\" d=\"M" + num(px0) + " " + num(py1) + "V" + num(py0) + "H" +
         num(px1) + "\"/>\n";
  svg += "<text class=\"axis-title\" x=\"" + num((px0 + px1) / 2) + "\" y=\"" + num(height - 10) +
         "\" text-anchor=\"middle\">" + esc(x_title) + "</text>\n";
  svg += "<text class=\"axis-title\" transform=\"translate(18 " + num((py0 + py1) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">test accuracy</text>\n";

  if (target > 0 && target >= y_axis.lo && target <= y_axis.hi) {
    const double y = Y(target);
    svg += "<line class=\"target\" x1=\"" + num(px0) + "\" x2=\"" + num(px1) + "\" y1=\"" + num(y) +
           "\" y2=\"" + num(y) + "\"/>";
    // At the left, where accuracy curves start low, so the label rarely covers a line.
    svg += "<text class=\"target-label\" x=\"" + num(px0 + 8) + "\" y=\"" + num(y - 6) +
           "\">target " + esc(fmt_pct(target, 1)) + "</text>\n";
  }

  // One polyline per series (even an empty one, so every strategy has its line).
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    std::string pts;
    std::string markers;
    const bool draw_markers = s.evals.size() <= kMaxMarkers;
    for (const Json& e : s.evals) {
      const double xv = eval_x(e, kind);
      if (x_axis.log && !(xv > 0)) continue;
      const double x = X(xv);
      const double y = Y(e.value("accuracy", 0.0));
      if (!pts.empty()) pts += ' ';
      pts += num(x) + "," + num(y);
      if (draw_markers) {
        markers += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"2.6\"><title>" +
                   esc(eval_tooltip(s.label, e)) + "</title></circle>";
      }
    }
    svg += "<g class=\"series\" stroke=\"" + std::string(colour(i)) + "\" fill=\"" + colour(i) +
           "\"><title>" + esc(s.label) + "</title>\n<polyline points=\"" + pts + "\"" + dash(i) +
           "/>\n" + markers + "</g>\n";
  }

  // Legend.
  svg += "<g class=\"legend\">";
  for (size_t i = 0; i < series.size(); ++i) {
    const LegendItem& li = legend[i];
    svg += "<line x1=\"" + num(li.x) + "\" x2=\"" + num(li.x + 26) + "\" y1=\"" + num(li.y) +
           "\" y2=\"" + num(li.y) + "\" stroke=\"" + colour(i) + "\"" + dash(i) + "/>";
    svg += "<text x=\"" + num(li.x + 34) + "\" y=\"" + num(li.y + 4.5) + "\">" +
           esc(series[i].label) + "</text>";
  }
  svg += "</g>\n</svg>\n";
  return svg;
}

// The accuracy axis all three plots share: the range of every evaluation and the target.
Axis accuracy_axis(const std::vector<ReportSeries>& series, double target) {
  double lo = 1.0;
  double hi = 0.0;
  for (const auto& s : series) {
    for (const Json& e : s.evals) {
      const double a = e.value("accuracy", 0.0);
      lo = std::min(lo, a);
      hi = std::max(hi, a);
    }
  }
  if (target > 0) {
    // A little room above the target so its line and label never sit on the frame.
    lo = std::min(lo, target);
    hi = std::max(hi, std::min(1.0, target + 0.02));
  }
  if (hi < lo) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 0.02) {
    lo -= 0.01;
    hi += 0.01;
  }
  Axis a = linear_axis(lo, hi, 6, [](double v, double step) {
    return fmt_pct(v, std::max(0, decimals_for(step * 100)));
  });
  // Accuracy lives in [0, 1]: never show ticks beyond it.
  if (a.lo < 0 || a.hi > 1) {
    const double step = a.ticks.size() > 1 ? a.ticks[1] - a.ticks[0] : 0.1;
    Axis b;
    b.lo = std::max(0.0, a.lo);
    b.hi = std::min(1.0, a.hi);
    for (size_t k = 0; k < a.ticks.size(); ++k) {
      if (a.ticks[k] >= -1e-9 && a.ticks[k] <= 1 + 1e-9) {
        b.ticks.push_back(a.ticks[k]);
        b.labels.push_back(a.labels[k]);
      }
    }
    (void)step;
    return b;
  }
  return a;
}

// ---------------------------------------------------------------------------------------
// The table.

struct Row {
  size_t index;  // into comparison["strategies"] and the series
  const Json* j;
  std::optional<double> ttt;
};

std::string params_text(const Json& params) {
  std::string out;
  if (!params.is_object()) return out;
  for (const auto& [key, value] : params.items()) {
    if (!out.empty()) out += " \xc2\xb7 ";
    out += key + " " + param_value(value);
  }
  return out;
}

// True when `v` is the best of `values` (the minimum when `lower`, else the maximum) and at
// least two rows have a value, so marking it says something.
bool is_best(const std::optional<double>& v, const std::vector<std::optional<double>>& values,
             bool lower) {
  if (!v) return false;
  size_t present = 0;
  for (const auto& o : values) {
    if (!o) continue;
    ++present;
    if (lower ? *o < *v : *o > *v) return false;
  }
  return present >= 2;
}

std::string render_table(const Json& cmp, const std::vector<Row>& rows, double target) {
  const bool has_target = target > 0;
  auto column = [&](const char* key) {
    std::vector<std::optional<double>> out;
    for (const Row& r : rows) out.push_back(opt_number(*r.j, key));
    return out;
  };
  std::vector<std::optional<double>> bytes_to_target = column("bytes_to_target");
  const auto ttt = column("time_to_target");
  const auto rtt = column("rounds_to_target");
  const auto fin = column("final_accuracy");
  const auto best = column("best_accuracy");

  std::string h;
  h += "<div class=\"table-wrap\"><table class=\"results\">\n<thead>\n<tr class=\"group\">"
       "<th rowspan=\"2\" class=\"rank\">#</th><th rowspan=\"2\" class=\"name\">Strategy</th>";
  if (has_target) {
    h += "<th colspan=\"3\">To reach " + esc(fmt_pct(target, 1)) + "</th>";
  }
  h += "<th colspan=\"2\">Test accuracy</th><th colspan=\"4\">Whole run</th></tr>\n<tr>";
  if (has_target) h += "<th>virtual time</th><th>rounds</th><th>traffic</th>";
  h += "<th>final</th><th>best</th><th>rounds</th><th>updates</th><th>traffic</th>"
       "<th>virtual time</th></tr>\n</thead>\n<tbody>\n";
  (void)cmp;
  for (size_t k = 0; k < rows.size(); ++k) {
    const Json& j = *rows[k].j;
    const size_t i = rows[k].index;
    const bool winner = k == 0 && rows.size() > 1 && (!has_target || rows[k].ttt.has_value());
    h += winner ? "<tr class=\"winner\">" : "<tr>";
    h += "<td class=\"rank\">" + std::to_string(k + 1) +
         (winner ? " <span class=\"star\" title=\"best\">\xe2\x98\x85</span>" : "") + "</td>";
    const std::string label = json_text(j, "label");
    const std::string name = json_text(j, "strategy");
    // The swatch is the legend's line, dashes included, so rows past the tenth colour
    // still match their plot line.
    h += "<td class=\"name\"><svg class=\"swatch\" viewBox=\"0 0 22 10\" width=\"22\" "
         "height=\"10\"><line x1=\"2\" x2=\"20\" y1=\"5\" y2=\"5\" stroke=\"" +
         std::string(colour(i)) + "\"" + dash(i) + "/></svg><b>" + esc(label) + "</b>";
    std::string sub;
    if (name != label) sub = name;
    const std::string params = params_text(j.value("params", Json::object()));
    if (!params.empty()) sub += (sub.empty() ? "" : ": ") + params;
    if (!sub.empty()) h += "<div class=\"params\">" + esc(sub) + "</div>";
    const std::string hash = json_text(j, "model_hash");
    if (!hash.empty())
      h += "<div class=\"hash\" title=\"final model hash\">model " + esc(hash) + "</div>";
    h += "</td>";

    auto cell = [&](const std::string& text, bool mark) {
      h += mark ? "<td class=\"num best\">" : "<td class=\"num\">";
      h += text + "</td>";
    };
    if (has_target) {
      const auto t = opt_number(j, "time_to_target");
      cell(t ? esc(fmt_seconds(*t)) : "<span class=\"never\">not reached</span>",
           is_best(t, ttt, true));
      const auto r = opt_number(j, "rounds_to_target");
      cell(r ? with_commas(static_cast<int64_t>(*r)) : kDash, is_best(r, rtt, true));
      const auto b = opt_number(j, "bytes_to_target");
      cell(b ? esc(fmt_bytes(*b)) : kDash, is_best(b, bytes_to_target, true));
    }
    const auto f = opt_number(j, "final_accuracy");
    cell(f ? esc(fmt_pct(*f)) : kDash, is_best(f, fin, false));
    const auto ba = opt_number(j, "best_accuracy");
    cell(ba ? esc(fmt_pct(*ba)) : kDash, is_best(ba, best, false));
    const auto rounds = opt_number(j, "rounds");
    cell(rounds ? with_commas(static_cast<int64_t>(*rounds)) : kDash, false);
    const auto updates = opt_number(j, "updates");
    cell(updates ? with_commas(static_cast<int64_t>(*updates)) : kDash, false);
    const auto up = opt_number(j, "bytes_up");
    const auto down = opt_number(j, "bytes_down");
    if (up && down) {
      cell(esc(fmt_bytes(*up + *down)) + "<div class=\"sub\">\xe2\x86\x91 " + esc(fmt_bytes(*up)) +
               " \xc2\xb7 \xe2\x86\x93 " + esc(fmt_bytes(*down)) + "</div>",
           false);
    } else {
      cell(kDash, false);
    }
    const auto vt = opt_number(j, "virtual_time_s");
    const auto wt = opt_number(j, "wall_time_s");
    cell((vt ? esc(fmt_seconds(*vt)) : std::string(kDash)) +
             (wt ? "<div class=\"sub\">wall " + esc(fmt_seconds(*wt)) + "</div>" : ""),
         false);
    h += "</tr>\n";
  }
  h += "</tbody>\n</table></div>\n";
  return h;
}

// One sentence or two on who won, from the sorted rows.
std::string render_highlights(const std::vector<Row>& rows, double target) {
  if (rows.empty()) return "<p class=\"lead\">No runs.</p>\n";
  std::string h = "<p class=\"lead\">";
  if (rows.size() == 1) {
    const Json& j = *rows[0].j;
    h += "<b>" + esc(json_text(j, "label")) + "</b>";
    if (target > 0 && rows[0].ttt) {
      h += " reached " + esc(fmt_pct(target, 1)) + " after " + esc(fmt_seconds(*rows[0].ttt)) +
           " of virtual time";
      if (auto r = opt_number(j, "rounds_to_target")) {
        h += " (round " + with_commas(static_cast<int64_t>(*r)) + ")";
      }
      h += ".";
    } else if (target > 0) {
      h += " did not reach the target accuracy of " + esc(fmt_pct(target, 1)) + ".";
    }
    const auto f = opt_number(j, "final_accuracy");
    const auto b = opt_number(j, "best_accuracy");
    if (f) {
      h += target > 0 ? " Final accuracy " : ": final accuracy ";
      h += esc(fmt_pct(*f));
      if (b) h += " (best " + esc(fmt_pct(*b)) + ")";
      h += ".";
    }
    return h + "</p>\n";
  }
  if (target > 0) {
    std::vector<const Row*> reached;
    std::vector<std::string> never;
    for (const Row& r : rows) {
      if (r.ttt) {
        reached.push_back(&r);
      } else {
        never.push_back(json_text(*r.j, "label"));
      }
    }
    if (reached.empty()) {
      h += "No strategy reached the target accuracy of " + esc(fmt_pct(target, 1)) + ".";
    } else {
      const Row& first = *reached.front();
      h += "<b>" + esc(json_text(*first.j, "label")) + "</b> reached " + esc(fmt_pct(target, 1)) +
           " first, after " + esc(fmt_seconds(*first.ttt)) + " of virtual time";
      if (auto r = opt_number(*first.j, "rounds_to_target")) {
        h += " (round " + with_commas(static_cast<int64_t>(*r)) + ")";
      }
      if (reached.size() > 1 && *first.ttt > 0) {
        const Row& last = *reached.back();
        h += strf(", %.1f&times; sooner than ", *last.ttt / *first.ttt) + "<b>" +
             esc(json_text(*last.j, "label")) + "</b>";
      }
      h += ".";
      if (!never.empty()) {
        std::string list;
        for (size_t k = 0; k < never.size(); ++k) {
          if (k > 0) list += k + 1 == never.size() ? " and " : ", ";
          list += "<b>" + esc(never[k]) + "</b>";
        }
        h += " " + list + (never.size() == 1 ? " never reached it." : " never reached it.");
      }
    }
    h += " ";
  }
  const Row* best = nullptr;
  for (const Row& r : rows) {
    const auto f = opt_number(*r.j, "final_accuracy");
    if (f && (best == nullptr || *f > *opt_number(*best->j, "final_accuracy"))) best = &r;
  }
  if (best != nullptr) {
    h += "Highest final accuracy: <b>" + esc(json_text(*best->j, "label")) + "</b>, " +
         esc(fmt_pct(*opt_number(*best->j, "final_accuracy"))) + ".";
  }
  h += "</p>\n";
  return h;
}

// ---------------------------------------------------------------------------------------
// The setting.

std::string describe_distribution(const Json& d, const std::string& unit) {
  if (d.is_number()) return short_num(d.get<double>()) + " " + unit;
  if (!d.is_object()) return esc(d.dump());
  const std::string kind = d.value("distribution", "constant");
  auto v = [&](const char* key) { return short_num(d.value(key, 0.0)); };
  std::string s;
  if (kind == "constant") {
    s = v("mean") + " " + unit;
  } else {
    if (kind == "normal") {
      s = "normal, mean " + v("mean") + " " + unit + ", std " + v("std");
    } else if (kind == "exponential") {
      s = "exponential, mean " + v("mean") + " " + unit;
    } else if (kind == "uniform") {
      s = "uniform, " + v("low") + " \xe2\x80\x93 " + v("high") + " " + unit;
    } else if (kind == "lognormal") {
      s = "lognormal, mean " + v("mean") + " " + unit + ", \xcf\x83 " + v("sigma");
    } else {
      s = kind + ", mean " + v("mean") + " " + unit;
    }
    const double mn = d.value("min", 1e-6);
    const double mx = d.value("max", 1e300);
    const bool has_min = mn != 1e-6;
    const bool has_max = mx < 1e299;
    if (has_min && has_max) {
      s += ", clamped to [" + short_num(mn) + ", " + short_num(mx) + "]";
    } else if (has_min) {
      s += ", at least " + short_num(mn);
    } else if (has_max) {
      s += ", at most " + short_num(mx);
    }
  }
  return esc(s);
}

std::string render_setting(const Json& setting, const std::vector<ReportSeries>& series,
                           double target, const Json& comparison) {
  std::vector<std::pair<std::string, std::string>> items;  // term, HTML
  const Json data = setting.value("data", Json::object());
  const Json clients = setting.value("clients", Json::object());
  const Json model = setting.value("model", Json::object());
  const Json training = setting.value("training", Json::object());
  const Json run = setting.value("run", Json::object());

  if (!data.empty()) {
    std::string d = esc(data.value("dataset", "?"));
    std::vector<std::string> parts;
    if (auto n = opt_number(setting, "train_examples")) {
      parts.push_back(with_commas(static_cast<int64_t>(*n)) + " training");
    }
    if (auto n = opt_number(setting, "test_examples")) {
      parts.push_back(with_commas(static_cast<int64_t>(*n)) + " test examples");
    }
    if (auto n = opt_number(setting, "classes")) {
      parts.push_back(with_commas(static_cast<int64_t>(*n)) + " classes");
    }
    for (size_t k = 0; k < parts.size(); ++k) d += (k == 0 ? ": " : ", ") + parts[k];
    items.emplace_back("Data", d);
    const std::string kind = data.value("partition", "");
    std::string p = esc(kind);
    if (kind == "dirichlet") {
      p += " over labels, \xce\xb1 = " + short_num(data.value("alpha", 0.0)) + ", at least " +
           short_num(data.value("min_size", 0.0)) + " examples per client";
    } else if (kind == "shards") {
      p += ", " + short_num(data.value("shards_per_client", 0.0)) + " shards per client";
    } else if (kind == "iid") {
      const double skew = data.value("size_skew", 0.0);
      p += skew > 0 ? ", size skew " + short_num(skew) : ", equal sizes";
    }
    items.emplace_back("Partition", p);
  }
  if (!clients.empty()) {
    items.emplace_back("Clients", esc(short_num(clients.value("count", 0.0))));
    const Json trace = clients.value("trace", Json(nullptr));
    if (trace.is_string()) {
      items.emplace_back("Devices",
                         "from the trace <code>" + esc(trace.get<std::string>()) + "</code>");
    } else {
      const std::pair<const char*, const char*> fields[] = {{"speed", "local steps/s"},
                                                            {"up_mbps", "Mbit/s"},
                                                            {"down_mbps", "Mbit/s"},
                                                            {"latency_ms", "ms"}};
      const char* names[] = {"Client speed", "Uplink", "Downlink", "Latency"};
      for (size_t k = 0; k < 4; ++k) {
        if (clients.contains(fields[k].first)) {
          items.emplace_back(names[k],
                             describe_distribution(clients[fields[k].first], fields[k].second));
        }
      }
    }
    const double jitter = clients.value("jitter", 0.0);
    if (jitter > 0) {
      items.emplace_back("Compute jitter", esc("each task's compute time \xc3\x97 max(0.05, N(1, " +
                                               short_num(jitter) + "))"));
    }
    const double dropout = clients.value("dropout", 0.0);
    if (dropout > 0) {
      items.emplace_back("Dropout",
                         esc(fmt_pct(dropout, 1) + " of tasks never return (noticed after " +
                             short_num(clients.value("task_timeout_factor", 3.0)) +
                             "\xc3\x97 the expected duration)"));
    }
    const Json avail = clients.value("availability", Json::object());
    if (avail.is_object() && avail.value("mean_online_s", 0.0) > 0) {
      items.emplace_back(
          "Availability",
          esc(avail.value("distribution", std::string("exponential")) + " on/off periods: online " +
              short_num(avail.value("mean_online_s", 0.0)) + " s, offline " +
              short_num(avail.value("mean_offline_s", 0.0)) + " s on average"));
    }
    // Keys this page does not know are still shown, as JSON.
    for (const auto& [key, value] : clients.items()) {
      if (key == "count" || key == "speed" || key == "up_mbps" || key == "down_mbps" ||
          key == "latency_ms" || key == "trace" || key == "jitter" || key == "dropout" ||
          key == "task_timeout_factor" || key == "availability") {
        continue;
      }
      items.emplace_back("clients." + key, "<code>" + esc(value.dump()) + "</code>");
    }
  }
  if (!model.empty()) {
    std::string m = esc(model.value("name", "?"));
    if (model.value("name", "") == "mlp" && model.contains("hidden")) {
      std::string widths;
      for (const Json& w : model["hidden"]) widths += (widths.empty() ? "" : ", ") + w.dump();
      m += ", hidden layers " + esc("[" + widths + "]");
    }
    for (const auto& s : series) {
      if (s.start.is_object() && s.start.contains("params")) {
        m += ", " + with_commas(s.start.value("params", int64_t{0})) + " parameters";
        break;
      }
    }
    items.emplace_back("Model", m);
  }
  if (!training.empty()) {
    std::string t = esc(training.value("optimizer", "sgd")) + ", lr " +
                    short_num(training.value("lr", 0.0)) + ", batch " +
                    short_num(training.value("batch_size", 0.0));
    if (training.value("momentum", 0.0) > 0)
      t += ", momentum " + short_num(training.value("momentum", 0.0));
    if (training.value("weight_decay", 0.0) > 0) {
      t += ", weight decay " + short_num(training.value("weight_decay", 0.0));
    }
    if (training.value("local_steps", int64_t{0}) > 0) {
      t += ", " + short_num(training.value("local_steps", 0.0)) + " local steps per task";
    } else {
      const double ep = training.value("local_epochs", 1.0);
      t += ", " + short_num(ep) + (ep == 1.0 ? " local epoch" : " local epochs") + " per task";
    }
    items.emplace_back("Local training", t);
  }
  if (!run.empty()) {
    std::vector<std::string> parts;
    if (run.value("rounds", int64_t{0}) > 0) {
      parts.push_back("up to " + with_commas(run.value("rounds", int64_t{0})) + " rounds");
    }
    if (run.value("max_virtual_time_s", 0.0) > 0) {
      parts.push_back("up to " + fmt_seconds(run.value("max_virtual_time_s", 0.0)) + " virtual");
    }
    const int64_t every = run.value("eval_every", int64_t{1});
    if (every > 0) {
      parts.push_back(every == 1 ? "evaluated every round"
                                 : "evaluated every " + with_commas(every) + " rounds");
    }
    if (run.value("eval_interval_s", 0.0) > 0) {
      parts.push_back("evaluated every " + fmt_seconds(run.value("eval_interval_s", 0.0)) +
                      " virtual");
    }
    parts.push_back("seed " + json_text(run, "seed"));
    std::string r;
    for (size_t k = 0; k < parts.size(); ++k) r += (k == 0 ? "" : ", ") + parts[k];
    items.emplace_back("Run", esc(r));
  }
  items.emplace_back("Target accuracy", target > 0 ? esc(fmt_pct(target, 1)) : "none");
  if (comparison.value("stopped_early", false)) {
    items.emplace_back("Note", "stopped early (interrupted); strategies not started are absent");
  }

  std::string h = "<dl class=\"setting\">\n";
  for (const auto& [term, html] : items) {
    h += "<dt>" + esc(term) + "</dt><dd>" + html + "</dd>\n";
  }
  h += "</dl>\n";
  return h;
}

constexpr const char* kStyle = R"CSS(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: #1f2328;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
  Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 40px; }
header h1 { font-size: 24px; margin: 0 0 2px; letter-spacing: -0.01em; }
header .subtitle { color: #59636e; margin: 0; }
.card { background: #fff; border: 1px solid #d8dee4; border-radius: 10px; padding: 18px 22px 14px;
  margin: 18px 0; box-shadow: 0 1px 2px rgba(31, 35, 40, 0.04); }
.card h2 { font-size: 16px; margin: 0 0 10px; }
.lead { margin: 0 0 14px; }
.warn { margin: 0 0 10px; padding: 8px 12px; border-radius: 6px; background: #fff8c5;
  border: 1px solid #eac54f; }
.table-wrap { overflow-x: auto; }
table.results { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums;
  font-size: 13px; }
.results th, .results td { padding: 7px; border-bottom: 1px solid #e6e9ed; vertical-align: top; }
.results thead th { font-weight: 600; color: #424a53; background: #f6f8fa; white-space: nowrap;
  text-align: right; }
.results thead tr.group th { text-align: center; border-bottom: 1px solid #d8dee4; }
.results thead tr.group th.name, .results thead tr.group th.rank { text-align: left;
  vertical-align: bottom; }
.results td.num { text-align: right; white-space: nowrap; }
.results td.rank { color: #59636e; white-space: nowrap; }
.results td.name { min-width: 170px; }
.results tr.winner td { background: #f3f9f1; }
.results td.best { font-weight: 700; color: #1a7f37; }
.results .star { color: #bf8700; }
.results .never { color: #9a6700; }
.results .sub, .results .params, .results .hash { font-size: 12px; color: #59636e;
  font-weight: 400; }
.results .hash { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11px; }
.swatch { margin-right: 6px; vertical-align: 0; }
.swatch line { stroke-width: 3; stroke-linecap: round; }
svg.plot { width: 100%; height: auto; display: block; font-size: 13px; }
svg.plot .grid line { stroke: #eaeef2; stroke-width: 1; }
svg.plot .ticks text { fill: #59636e; font-size: 12px; }
svg.plot .axis { fill: none; stroke: #8c959f; stroke-width: 1; }
svg.plot .axis-title { fill: #424a53; font-size: 13px; }
svg.plot .target { stroke: #57606a; stroke-width: 1.3; stroke-dasharray: 6 5; }
svg.plot .target-label { fill: #57606a; font-size: 12px; }
svg.plot .series polyline { fill: none; stroke-width: 2.2; stroke-linejoin: round;
  stroke-linecap: round; }
svg.plot .series circle { stroke: #fff; stroke-width: 0.8; }
svg.plot .series circle:hover { r: 5; }
svg.plot .legend line { stroke-width: 3; stroke-linecap: round; }
svg.plot .legend text { fill: #1f2328; }
dl.setting { display: grid; grid-template-columns: max-content 1fr; gap: 6px 22px; margin: 0; }
dl.setting dt { color: #59636e; }
dl.setting dd { margin: 0; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
footer { color: #6e7781; font-size: 12px; margin-top: 8px; }
)CSS";

// ---------------------------------------------------------------------------------------
// Reading the files.

Result<Json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot read '" + path + "': " + std::strerror(errno));
  try {
    return Json::parse(in);
  } catch (const std::exception& e) {
    return Status::data_loss("'" + path + "' is not valid JSON: " + e.what());
  }
}

Result<ReportSeries> read_series(const std::string& path, const std::string& label) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot read '" + path + "': " + std::strerror(errno));
  ReportSeries s;
  s.label = label;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json e;
    try {
      e = Json::parse(line);
    } catch (const std::exception& ex) {
      return Status::data_loss(path + ":" + std::to_string(n) +
                               ": not a JSON object: " + ex.what());
    }
    if (!e.is_object()) {
      return Status::data_loss(path + ":" + std::to_string(n) + ": not a JSON object");
    }
    const std::string kind = e.value("event", "");
    if (kind == "eval") {
      s.evals.push_back(std::move(e));
    } else if (kind == "start" && s.start.is_null()) {
      s.start = std::move(e);
    }
  }
  return s;
}

// A `cohort simulate` directory as a comparison of one.
Result<std::string> render_single_run(const std::string& dir) {
  COHORT_ASSIGN_OR_RETURN(Json summary, read_json(dir + "/summary.json"));
  Json config = Json::object();
  if (std::filesystem::exists(dir + "/config.json")) {
    COHORT_ASSIGN_OR_RETURN(config, read_json(dir + "/config.json"));
  }
  const std::string name = summary.value("strategy", "run");
  COHORT_ASSIGN_OR_RETURN(ReportSeries s, read_series(dir + "/metrics.jsonl", name));
  const double target = config.value("run", Json::object()).value("target_accuracy", 0.0);

  ComparisonEntry entry;
  fill_target_fields(s.evals, target, &entry);
  Json row = Json::object();
  row["label"] = name;
  row["strategy"] = name;
  Json params = config.value("strategy", Json::object());
  params.erase("name");
  row["params"] = params;
  row["time_to_target"] = summary.value("time_to_target", Json(nullptr));
  row["rounds_to_target"] = entry.rounds_to_target ? Json(*entry.rounds_to_target) : Json(nullptr);
  row["updates_to_target"] =
      entry.updates_to_target ? Json(*entry.updates_to_target) : Json(nullptr);
  row["bytes_to_target"] = entry.bytes_to_target ? Json(*entry.bytes_to_target) : Json(nullptr);
  for (const char* key :
       {"final_accuracy", "final_loss", "best_accuracy", "rounds", "updates", "rejected", "lost",
        "bytes_up", "bytes_down", "virtual_time_s", "wall_time_s", "model_hash"}) {
    if (summary.contains(key)) row[key] = summary[key];
  }
  Json setting = Json::object();
  for (const char* key : {"data", "clients", "model", "training", "run"}) {
    if (config.contains(key)) setting[key] = config[key];
  }
  if (std::filesystem::exists(dir + "/clients.json")) {
    COHORT_ASSIGN_OR_RETURN(Json clients, read_json(dir + "/clients.json"));
    int64_t total = 0;
    size_t classes = 0;
    for (const Json& c : clients) {
      total += c.value("examples", int64_t{0});
      if (c.contains("label_counts")) classes = std::max(classes, c["label_counts"].size());
    }
    setting["train_examples"] = total;
    if (classes > 0) setting["classes"] = classes;
  }
  Json cmp = Json::object();
  cmp["target_accuracy"] = target;
  cmp["stopped_early"] = false;
  cmp["strategies"] = Json::array({row});
  cmp["setting"] = setting;
  return render_report(cmp, {std::move(s)});
}

}  // namespace

std::string render_report(const Json& comparison, const std::vector<ReportSeries>& series_in) {
  const Json list = comparison.value("strategies", Json::array());
  const double target = comparison.value("target_accuracy", 0.0);
  const Json setting = comparison.value("setting", Json::object());

  // One series per strategy row, in row order (missing ones are empty).
  std::vector<ReportSeries> series;
  for (size_t i = 0; i < list.size(); ++i) {
    ReportSeries s = i < series_in.size() ? series_in[i] : ReportSeries{};
    if (s.label.empty()) s.label = json_text(list[i], "label");
    series.push_back(std::move(s));
  }

  // Rows: reached the target first (by time, then rounds), then by final accuracy.
  std::vector<Row> rows;
  for (size_t i = 0; i < list.size(); ++i) {
    rows.push_back(
        {i, &list[i], target > 0 ? opt_number(list[i], "time_to_target") : std::nullopt});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.ttt.has_value() != b.ttt.has_value()) return a.ttt.has_value();
    if (a.ttt && *a.ttt != *b.ttt) return *a.ttt < *b.ttt;
    const double fa = opt_number(*a.j, "final_accuracy").value_or(-1);
    const double fb = opt_number(*b.j, "final_accuracy").value_or(-1);
    return fa > fb;
  });

  std::string labels;
  for (size_t i = 0; i < series.size(); ++i) labels += (i ? ", " : "") + series[i].label;
  const bool single = series.size() == 1;
  const std::string title = single ? "Cohort run: " + labels : "Cohort comparison: " + labels;

  std::string subtitle;
  {
    const Json data = setting.value("data", Json::object());
    const Json clients = setting.value("clients", Json::object());
    const Json model = setting.value("model", Json::object());
    const Json run = setting.value("run", Json::object());
    std::vector<std::string> parts;
    if (data.contains("dataset")) parts.push_back(json_text(data, "dataset"));
    if (clients.contains("count")) {
      parts.push_back(short_num(clients.value("count", 0.0)) + " clients");
    }
    if (data.contains("partition")) {
      std::string p = json_text(data, "partition");
      if (p == "dirichlet") p += " \xce\xb1=" + short_num(data.value("alpha", 0.0));
      parts.push_back(p + " partition");
    }
    if (model.contains("name")) parts.push_back(json_text(model, "name"));
    if (run.contains("seed")) parts.push_back("seed " + json_text(run, "seed"));
    if (target > 0) parts.push_back("target " + fmt_pct(target, 1));
    for (size_t k = 0; k < parts.size(); ++k) subtitle += (k ? " \xc2\xb7 " : "") + parts[k];
  }

  const Axis y = accuracy_axis(series, target);
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<meta name=\"generator\" content=\"cohort report\">\n<title>" +
       esc(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  h += "<header>\n<h1>" + std::string(single ? "Run report" : "Strategy comparison") +
       "</h1>\n<p class=\"subtitle\">" + esc(subtitle) + "</p>\n</header>\n";

  const std::string stopped =
      comparison.value("stopped_early", false)
          ? "<p class=\"warn\">Stopped early (interrupted): the runs in flight were cut short "
            "and strategies not started are missing, so totals are not comparable.</p>\n"
          : "";
  h += "<section class=\"card\">\n<h2>Results</h2>\n" + stopped + render_highlights(rows, target) +
       render_table(comparison, rows, target) + "</section>\n";

  struct PlotDef {
    const char* title;
    XKind kind;
  };
  const PlotDef plots[] = {{"Accuracy against virtual time", XKind::kTime},
                           {"Accuracy against client updates", XKind::kUpdates},
                           {"Accuracy against communication", XKind::kBytes}};
  for (const PlotDef& p : plots) {
    h += "<section class=\"card\">\n<h2>" + esc(p.title) + "</h2>\n" +
         render_plot(p.title, p.kind, series, y, target) + "</section>\n";
  }
  h += "<section class=\"card\">\n<h2>Setting</h2>\n" +
       render_setting(setting, series, target, comparison) + "</section>\n";
  h += "<footer>Generated by <code>cohort report</code> from " +
       std::string(single ? "summary.json, config.json and metrics.jsonl"
                          : "comparison.json and each strategy&#39;s metrics.jsonl. Every "
                            "strategy ran on the same data partition, client population and "
                            "seed") +
       ". Hover a point for its values.</footer>\n</main>\n</body>\n</html>\n";
  return h;
}

Result<std::string> render_report_from_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) return Status::not_found("'" + dir + "' is not a directory");
  if (!fs::exists(dir + "/comparison.json")) {
    if (fs::exists(dir + "/metrics.jsonl") && fs::exists(dir + "/summary.json")) {
      return render_single_run(dir);
    }
    return Status::not_found("'" + dir +
                             "' holds neither comparison.json (from cohort compare) "
                             "nor metrics.jsonl and summary.json (from cohort simulate)");
  }
  const std::string path = dir + "/comparison.json";
  COHORT_ASSIGN_OR_RETURN(Json cmp, read_json(path));
  if (!cmp.is_object() || !cmp.contains("strategies") || !cmp["strategies"].is_array()) {
    return Status::data_loss("'" + path + "' has no \"strategies\" list");
  }
  std::vector<ReportSeries> series;
  for (const Json& entry : cmp["strategies"]) {
    const std::string label = json_text(entry, "label");
    std::string sub = json_text(entry, "dir");
    if (sub.empty()) sub = label;
    if (sub.empty() || sub.find('/') != std::string::npos || sub[0] == '.') {
      return Status::data_loss("'" + path + "': strategy directory '" + sub +
                               "' is not a plain directory name");
    }
    COHORT_ASSIGN_OR_RETURN(ReportSeries s, read_series(dir + "/" + sub + "/metrics.jsonl", label));
    series.push_back(std::move(s));
  }
  return render_report(cmp, series);
}

Status write_report(const std::string& dir, const std::string& out_path) {
  COHORT_ASSIGN_OR_RETURN(std::string html, render_report_from_dir(dir));
  const std::string path = out_path.empty() ? dir + "/report.html" : out_path;
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return Status::unavailable("cannot write '" + tmp + "': " + std::strerror(errno));
  }
  const bool ok = std::fwrite(html.data(), 1, html.size(), f) == html.size() &&
                  std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int err = errno;
  std::fclose(f);
  if (!ok) {
    std::remove(tmp.c_str());
    return Status::unavailable("cannot write '" + tmp + "': " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    return Status::unavailable("cannot write '" + path + "': " + std::strerror(e));
  }
  return Status();
}

}  // namespace cohort
