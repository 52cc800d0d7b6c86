// The report's privacy section: per run, the (epsilon, delta) spent, the noise multiplier and
// the final clip norm (privacy.dp), and the groups summed by secure aggregation and those it
// failed (privacy.secagg). Empty when no run used either. Private to src/report.
#pragma once

#include <string>
#include <vector>

#include "report/table.h"

namespace cohort::report_detail {

// Whether any run spent a privacy budget (its evaluations carry "epsilon").
bool any_epsilon(const std::vector<ReportSeries>& series);

std::string render_privacy(const std::vector<Row>& rows);

}  // namespace cohort::report_detail
