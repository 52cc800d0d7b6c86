// The report's sections on what some runs have and others not: privacy (per run, the
// (epsilon, delta) spent, the noise multiplier and the final clip norm (privacy.dp), and the
// groups summed by secure aggregation and those it failed (privacy.secagg)) and several models
// at once. Each is empty when no run has it. Private to src/report.
#pragma once

#include <string>
#include <vector>

#include "report/table.h"

namespace cohort::report_detail {

// Whether any run spent a privacy budget (its evaluations carry "epsilon").
bool any_epsilon(const std::vector<ReportSeries>& series);

std::string render_privacy(const std::vector<Row>& rows);

// Several models at once (`models:`, FedAST): per run and model, the target, the time it took
// to reach it, the final and the best accuracy. Empty when no run trained several models.
std::string render_models(const std::vector<Row>& rows);

}  // namespace cohort::report_detail
