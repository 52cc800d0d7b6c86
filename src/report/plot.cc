// The report's SVG plots (report/plot.h): tick placement and labels, the legend layout, the
// plot itself and the shared accuracy axis.
#include "report/plot.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>

#include "cohort/core/format.h"
#include "report/text.h"

namespace cohort::report_detail {

namespace {

// Colour-blind-friendly and distinct on white (Tableau 10); lines past ten also get dashes.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1",
                                    "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#7f7f7f"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

}  // namespace

const char* colour(size_t i) { return kPalette[i % kPaletteSize]; }
std::string dash(size_t i) {
  static const char* kDashes[] = {"", "7 4", "2 3", "9 3 2 3"};
  const size_t k = (i / kPaletteSize) % 4;
  return k == 0 ? "" : std::string(" stroke-dasharray=\"") + kDashes[k] + "\"";
}

namespace {

// ---------------------------------------------------------------------------------------
// Axes.

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

double eval_x(const Json& e, XKind kind) {
  switch (kind) {
    case XKind::kTime:
      return e.value("virtual_time_s", 0.0);
    case XKind::kUpdates:
      return static_cast<double>(e.value("updates", int64_t{0}));
    case XKind::kBytes:
      return static_cast<double>(e.value("bytes_up", int64_t{0}) +
                                 e.value("bytes_down", int64_t{0}));
    case XKind::kUplink:
      return static_cast<double>(e.value("bytes_up", int64_t{0}));
    case XKind::kEpsilon:
      return e.value("epsilon", 0.0);
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

}  // namespace

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
  if ((kind == XKind::kBytes || kind == XKind::kUplink) && finals.size() > 1) {
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
    x_axis = linear_axis(0, x_max / u.scale, 8, [](double v, double step) {
      return strformat("%.*f", decimals_for(step), v);
    });
  } else if (kind == XKind::kUpdates) {
    x_title = "accepted client updates";
    x_axis = linear_axis(
        0, x_max, 8,
        [](double v, double) {
          return with_commas(static_cast<int64_t>(std::llround(v)));
        },
        1.0);
  } else if (kind == XKind::kEpsilon) {
    x_title = "privacy spent: \xce\xb5 at the run's \xce\xb4";
    x_axis = linear_axis(0, x_max, 8, [](double v, double step) {
      return strformat("%.*f", decimals_for(step), v);
    });
  } else {
    x_title = kind == XKind::kUplink ? "bytes sent up" : "bytes sent up + down";
    if (log) x_title += " (log scale)";
    if (log && std::isfinite(x_min_pos)) {
      x_axis = log_axis(x_min_pos, x_max, [](double v, double) {
        return bytes_tick(v, 0);
      });
    } else {
      x_axis = linear_axis(0, x_max, 8, [](double v, double step) {
        return bytes_tick(v, step);
      });
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
  auto X = [&](double v) {
    return px0 + x_axis.frac(v / x_scale) * (px1 - px0);
  };
  auto Y = [&](double v) {
    return py0 - y_axis.frac(v) * (py0 - py1);
  };

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

}  // namespace cohort::report_detail
