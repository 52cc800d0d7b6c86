// The report's text sections: the comparison table, the sentence or two of highlights above
// it, and the setting. Private to src/report.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "cohort/core/metrics.h"
#include "cohort/report/report.h"

namespace cohort::report_detail {

// One strategy of the page, in display order.
struct Row {
  size_t index;  // into comparison["strategies"] and the series
  const Json* j;
  std::optional<double> ttt;  // its time_to_target; nullopt when not reached or no target
};

// The results table of the sorted rows: time, rounds and traffic to `target` (columns left
// out when target is not > 0), accuracy and whole-run totals, the best values marked.
std::string render_table(const Json& cmp, const std::vector<Row>& rows, double target);

// One sentence or two on who won, from the sorted rows.
std::string render_highlights(const std::vector<Row>& rows, double target);

// The setting: data, partition, clients, model, local training and run settings from
// comparison.json's "setting", as a <dl>.
std::string render_setting(const Json& setting, const std::vector<ReportSeries>& series,
                           double target, const Json& comparison);

}  // namespace cohort::report_detail
