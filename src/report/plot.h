// The report's SVG plots: the series colours, the axes, and one plot of test accuracy against
// virtual time, accepted updates or bytes. Private to src/report.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "cohort/report/report.h"

namespace cohort::report_detail {

// The colour of series `i`, and the stroke-dasharray attribute (with its leading space; ""
// for the first ten) that tells apart series sharing a colour. The plot lines, the legend
// and the table's swatches all use them.
const char* colour(size_t i);
std::string dash(size_t i);

// A plot axis: its range, its scale and its ticks with their labels.
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

// What a plot's x axis shows: virtual time, accepted updates, or total bytes (up + down).
// kBytes: bytes sent up and down; kUplink: bytes sent up only; kEpsilon: the privacy budget
// spent (the evaluations' "epsilon").
enum class XKind { kTime, kUpdates, kBytes, kUplink, kEpsilon };

// The accuracy axis all three plots share: the range of every evaluation and the target.
Axis accuracy_axis(const std::vector<ReportSeries>& series, double target);

// One <svg> plot of each series' eval accuracy (on `y_axis`) against `kind`, the target
// (when > 0) as a dashed line, and the legend above. `aria` is its accessible label.
std::string render_plot(const std::string& aria, XKind kind,
                        const std::vector<ReportSeries>& series, const Axis& y_axis, double target);

}  // namespace cohort::report_detail
