// Robust aggregation rules: the pure math that turns the updates of one aggregation group (a
// synchronous round, or a FedBuff buffer) into one vector that a minority of arbitrary
// (Byzantine) updates cannot drag far. Each rule is one file in src/robust/; the strategies
// never see them: robust/group_aggregator.h keeps a group's updates and applies the configured
// rule where a plain weighted mean would have been (docs/robustness.md).
//
// A rule is a pure function of its inputs (stateless; what must persist across groups, such
// as centered clipping's centre, is handed in as Inputs::previous), deterministic for any
// number of kernel threads, and reports per input how much it used it (Outcome::influence),
// from which trust scores are built.
//
// Thread safety: a Rule object is immutable after creation; aggregate() may run concurrently
// on different inputs. Kernels run on kernel_pool() (core/parallel.h).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cohort/core/status.h"

namespace cohort::robust {

// The updates of one group, all of the same length d >= 1.
struct Inputs {
  // n vectors (update deltas, or per-client momenta of them).
  std::vector<std::span<const float>> vectors;
  // n weights > 0 (example counts, staleness-discounted weights). Rules that are weighted by
  // definition (mean, multi-Krum's average, geometric median, centered clipping, norm clip,
  // flag) use them; median and trimmed mean are unweighted (as in Flower and Yin et al.).
  std::vector<double> weights;
  // The previous aggregate this rule produced (length d), or empty before the first group.
  // Centered clipping starts from it (zero when empty).
  std::span<const float> previous;
  // Seed for rules with randomness (bucketing's permutation, flag's initial subspace): the
  // same seed gives the same result.
  uint64_t seed = 0;
};

// What a rule reports about one aggregation besides the vector.
struct Outcome {
  // Per input, in [0, 1]: how much of it the rule kept, 1 = as much as a plain mean would,
  // 0 = discarded (Krum: 1 if selected else 0; trimmed mean: fraction of coordinates kept;
  // norm / centered clipping: the clip factor; median, geometric median: min(1, median
  // distance to the aggregate / own distance); flag: reconstruction ratio). Trust scores
  // (robust/trust.h) are running averages of it.
  std::vector<double> influence;
  // Rule-specific numbers for the metrics stream (e.g. "selected": [...], "iterations": 3).
  // Small; a JSON object text is not needed, so plain name -> value pairs.
  std::vector<std::pair<std::string, double>> stats;
};

// Every parameter any rule takes, with the defaults of docs/robustness.md. Config keys
// `robust.<name>` map one to one.
struct RuleOptions {
  // mean | krum | multi_krum | median | trimmed_mean | geometric_median | centered_clipping |
  // norm_clip | flag
  std::string rule = "mean";
  // Declared number of Byzantine inputs (Krum, multi-Krum). Krum needs n > 2f + 2.
  int64_t f = 1;
  // Multi-Krum: how many lowest-score inputs are averaged (0 = n - f).
  int64_t m = 0;
  // Trimmed mean: fraction cut at each end per coordinate, 0 <= beta < 0.5.
  double beta = 0.1;
  // Centered clipping: clipping radius tau > 0 and iterations L >= 1.
  double tau = 10.0;
  int64_t iterations = 1;
  // Geometric median (smoothed Weiszfeld, RFA): at most this many iterations, stop when the
  // objective improves by less than `tolerance` (relative); `nu` smooths distances near 0.
  int64_t max_iterations = 100;
  double tolerance = 1e-6;
  double nu = 1e-6;
  // Norm clip: clip each input to this L2 norm before the weighted mean; 0 = the median of the
  // group's norms.
  double max_norm = 0.0;
  // Flag aggregator: subspace dimension r >= 1, pairwise regulariser lambda >= 0, IRLS
  // iterations >= 1.
  int64_t flag_r = 1;
  double flag_lambda = 0.0;
  int64_t flag_iterations = 1;
  // Bucketing in front of the rule: average random buckets of s inputs first (s = 0 or 1:
  // off).
  int64_t bucketing = 0;
};

class Rule {
 public:
  virtual ~Rule() = default;
  // Canonical description with every parameter, e.g. "trimmed_mean(beta=0.1)".
  virtual std::string describe() const = 0;
  // Whether the rule can aggregate `n` inputs: InvalidArgument naming the parameter and the
  // bound otherwise ("krum: needs more than 2f + 2 = 4 updates per group (f = 1), got 4").
  virtual Status check(size_t n) const = 0;
  // Writes the aggregate of `in` into `out` (length d) and fills `outcome` (may be null).
  // InvalidArgument for mismatched lengths, no inputs, non-positive weights, or check(n).
  virtual Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const = 0;
};

// Validates `options` (InvalidArgument naming `robust.<key>`, e.g. "robust.beta: must be in
// [0, 0.5), got 0.6") and builds the rule, wrapped in bucketing when options.bucketing > 1.
Result<std::unique_ptr<Rule>> make_rule(const RuleOptions& options);

// The rule names make_rule knows, in documentation order.
std::vector<std::string> rule_names();

}  // namespace cohort::robust
