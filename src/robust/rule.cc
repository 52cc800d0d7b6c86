// make_rule, the rule registry, and what every rule shares: input checks and the
// distance-based influence of median and geometric median (rules.h). The rules themselves are
// one file each in this directory; docs/robustness.md describes them and cites their papers.
#include "cohort/robust/rule.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <vector>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/core/validate.h"
#include "rules.h"

namespace cohort::robust {
namespace {

// Coordinates per parallel chunk of distances_to; fixed, so the per-chunk partial sums
// (added in chunk order) do not depend on the number of threads.
constexpr int64_t kDistChunk = 1 << 15;

}  // namespace

std::vector<std::string> rule_names() {
  // In docs/robustness.md's order: no defence, selection, coordinate-wise, then the rest.
  static const char* const kNames[] = {"mean",
                                       "krum",
                                       "multi_krum",
                                       "median",
                                       "trimmed_mean",
                                       "geometric_median",
                                       "centered_clipping",
                                       "norm_clip",
                                       "flag"};
  return {std::begin(kNames), std::end(kNames)};
}

Result<std::unique_ptr<Rule>> make_rule(const RuleOptions& options) {
  const std::vector<std::string> names = rule_names();
  if (std::find(names.begin(), names.end(), options.rule) == names.end()) {
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    return field_error("robust.rule",
                       "unknown '" + printable(options.rule) + "' (known: " + known + ")");
  }
  COHORT_RETURN_IF_ERROR(check_field("robust.bucketing", options.bucketing, Range::at_least(0)));
  const std::string& r = options.rule;
  Result<std::unique_ptr<Rule>> rule = Status::internal("robust: no factory for " + r);
  if (r == "mean") {
    rule = make_mean(options);
  } else if (r == "krum" || r == "multi_krum") {
    rule = make_krum(options, r == "multi_krum");
  } else if (r == "median") {
    rule = make_median(options);
  } else if (r == "trimmed_mean") {
    rule = make_trimmed_mean(options);
  } else if (r == "geometric_median") {
    rule = make_geometric_median(options);
  } else if (r == "centered_clipping") {
    rule = make_centered_clipping(options);
  } else if (r == "norm_clip") {
    rule = make_norm_clip(options);
  } else if (r == "flag") {
    rule = make_flag(options);
  }
  if (!rule.has_value() || options.bucketing <= 1) return rule;
  return make_bucketing(options.bucketing, std::move(rule).value());
}

Status check_inputs(const char* rule, const Inputs& in, std::span<const float> out) {
  const std::string r = rule;
  const size_t n = in.vectors.size();
  if (n == 0) return Status::invalid_argument(r + ": no updates to aggregate");
  if (out.empty()) return Status::invalid_argument(r + ": updates must have at least one value");
  if (in.weights.size() != n) {
    return Status::invalid_argument(
        strformat("%s: %zu weights for %zu updates", rule, in.weights.size(), n));
  }
  for (size_t i = 0; i < n; ++i) {
    if (in.vectors[i].size() != out.size()) {
      return Status::invalid_argument(strformat("%s: update %zu has %zu values, expected %zu", rule,
                                                i, in.vectors[i].size(), out.size()));
    }
    const double w = in.weights[i];
    if (!(w > 0) || !std::isfinite(w)) {
      return Status::invalid_argument(r + ": weight of update " + std::to_string(i) +
                                      " must be positive and finite, got " + format_number(w));
    }
  }
  if (!in.previous.empty() && in.previous.size() != out.size()) {
    return Status::invalid_argument(strformat("%s: previous aggregate has %zu values, expected %zu",
                                              rule, in.previous.size(), out.size()));
  }
  return Status();
}

std::vector<double> distances_to(const Inputs& in, std::span<const float> point) {
  const size_t k = in.vectors.size();
  const auto d = static_cast<int64_t>(point.size());
  const int64_t n_chunks = std::max<int64_t>(1, (d + kDistChunk - 1) / kDistChunk);
  std::vector<double> parts(static_cast<size_t>(n_chunks) * k, 0.0);
  kernel_pool().parallel_for(0, d, kDistChunk, [&](int64_t lo, int64_t hi) {
    double* p = parts.data() + static_cast<size_t>(lo / kDistChunk) * k;
    for (size_t i = 0; i < k; ++i) {
      p[i] = ops::squared_distance_serial(in.vectors[i].data() + lo, point.data() + lo, hi - lo);
    }
  });
  std::vector<double> dist(k, 0.0);
  for (int64_t c = 0; c < n_chunks; ++c) {
    for (size_t i = 0; i < k; ++i) dist[i] += parts[static_cast<size_t>(c) * k + i];
  }
  for (double& x : dist) x = std::sqrt(x);
  return dist;
}

std::vector<double> influence_from_distances(const std::vector<double>& dist) {
  const size_t k = dist.size();
  std::vector<double> sorted = dist;
  std::sort(sorted.begin(), sorted.end());
  double med = 0.0;
  if (k > 0) med = k % 2 == 1 ? sorted[k / 2] : 0.5 * (sorted[k / 2 - 1] + sorted[k / 2]);
  std::vector<double> influence(k, 1.0);
  for (size_t i = 0; i < k; ++i) {
    if (dist[i] > 0) influence[i] = std::min(1.0, med / dist[i]);
  }
  return influence;
}

std::vector<double> distance_influence(const Inputs& in, std::span<const float> aggregate) {
  return influence_from_distances(distances_to(in, aggregate));
}

}  // namespace cohort::robust
