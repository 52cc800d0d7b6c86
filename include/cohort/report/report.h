// Report: a self-contained HTML page comparing runs, generated from their output files.
//
// The report is a reader of the metrics stream: its curves come from each run's
// metrics.jsonl ("eval" events), its table and setting from comparison.json, so
// `cohort report DIR` regenerates exactly the page `cohort compare` wrote. It can also
// render a single `cohort simulate` directory (metrics.jsonl, summary.json, config.json).
//
// The page needs no network and no JavaScript: inline CSS, and inline SVG plots of test
// accuracy against virtual time, against accepted updates and against total bytes (up +
// down; a log axis when the strategies' totals differ by more than 10x), one line per
// strategy, the target accuracy as a dashed line; the comparison table sorted by time to
// target (then best accuracy) with the best values marked; and the setting. Hovering a
// point shows its values (SVG <title>). Output depends only on the input files (no dates).
//
// Thread safety: the functions share no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cohort/core/metrics.h"
#include "cohort/core/status.h"

namespace cohort {

// One plotted run: its legend name, its "start" event (null if absent) and its "eval"
// events in stream order.
struct ReportSeries {
  std::string label;
  Json start;
  std::vector<Json> evals;
};

// The first evaluation whose accuracy reached `target` (target > 0), from a run's "eval" events.
struct TargetCrossing {
  int64_t round = 0;
  int64_t updates = 0;
  int64_t bytes = 0;     // up + down
  int64_t bytes_up = 0;  // up only (what compression of updates saves)
};
std::optional<TargetCrossing> first_target_crossing(const std::vector<Json>& evals, double target);

// The page for comparison.json's content and one series per entry of its "strategies"
// (matched by position). Never fails: missing fields render as "–".
std::string render_report(const Json& comparison, const std::vector<ReportSeries>& series);

// Reads DIR/comparison.json and DIR/<label>/metrics.jsonl for each of its strategies; or,
// when DIR has no comparison.json, DIR/summary.json, DIR/metrics.jsonl and DIR/config.json
// of a single run (rendered as a comparison of one). Returns the page.
// Errors: NotFound when DIR holds neither layout or a listed metrics.jsonl is missing
// (naming the file); DataLoss for a file that is not valid JSON, or a metrics.jsonl line
// that is not (naming the file and line).
Result<std::string> render_report_from_dir(const std::string& dir);

// render_report_from_dir, written atomically to `out_path` (default DIR/report.html).
// Errors: those of render_report_from_dir, Unavailable when the file cannot be written.
Status write_report(const std::string& dir, const std::string& out_path = "");

}  // namespace cohort
