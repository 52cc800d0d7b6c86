// The report's robustness section: per run, the robust rule, the attackers, how trust scores
// separate them from honest clients (means, extremes and the AUC: the probability that a
// random honest client's trust exceeds a random attacker's), and the contribution estimates;
// for a single run also the per-client table. Empty when no run has trust, contributions or
// attackers. Private to src/report.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cohort/core/metrics.h"
#include "report/table.h"

namespace cohort::report_detail {

// AUC of trust scores between honest clients and `attackers` (summary.json "trust" and
// "attackers"); nullopt without both.
std::optional<double> trust_auc(const Json& row);

std::string render_robustness(const std::vector<Row>& rows);

}  // namespace cohort::report_detail
