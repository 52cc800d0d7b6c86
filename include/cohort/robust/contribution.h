// Contribution estimates: how much each update of one aggregation group helped, as
// leave-one-out differences or Shapley values of a utility U(S) over subsets S of the group
// (the runtime's U: validation accuracy of the model the subset's aggregate would give). Pure
// math over a utility callback; robust/group_aggregator.h and the runtime call it per group
// and add the values up per client (docs/robustness.md, "Contribution").
//
// Shapley values are exact (enumeration of all 2^n subsets) when that fits the evaluation
// budget, otherwise Monte-Carlo over random permutations with GTG-Shapley's truncation (a
// permutation's walk stops once the prefix's utility is within `truncation` of the full
// group's; the remaining marginals count as 0) and with every subset's utility cached, so a
// subset met twice costs one evaluation.
//
// Thread safety: the functions are reentrant; the utility is called from the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cohort/core/status.h"

namespace cohort::robust {

struct ContributionOptions {
  // none | loo | shapley
  std::string method = "shapley";
  // Utility evaluations allowed per group beyond U(full) and U(empty) (>= 1). LOO needs n;
  // with fewer it evaluates the first `budget` players and reports the others as 0
  // (ContributionResult::complete = false).
  int64_t evaluations = 64;
  // GTG truncation: relative tolerance >= 0 (0 = never truncate).
  double truncation = 0.01;
};

// U(members): `members` holds ascending player indices in [0, n); may fail (its Status ends
// the estimate).
using Utility = std::function<Result<double>(const std::vector<int>& members)>;

struct ContributionResult {
  std::vector<double> values;  // per player
  int64_t evaluations = 0;     // distinct subsets evaluated, U(full) and U(empty) included
  bool exact = false;          // Shapley by full enumeration / LOO of every player
  bool complete = true;        // every player got a value (budget permitting)
  int64_t permutations = 0;    // Monte-Carlo permutations walked (0 when exact)
};

// Validates options (InvalidArgument naming `contribution.<key>`).
Status check_contribution_options(const ContributionOptions& options);

// values[i] = U(all) - U(all \ {i}).
Result<ContributionResult> leave_one_out(int n, const Utility& utility,
                                         const ContributionOptions& options);

// Shapley values of U over n players: exact when 2^n - 2 <= options.evaluations, else
// truncated Monte-Carlo permutations (seeded by `seed`) until the budget is spent. The values
// sum to U(all) - U(empty) exactly when exact, and in expectation otherwise.
Result<ContributionResult> shapley(int n, const Utility& utility,
                                   const ContributionOptions& options, uint64_t seed);

}  // namespace cohort::robust
