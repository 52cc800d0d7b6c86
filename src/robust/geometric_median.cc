// Geometric median by the smoothed Weiszfeld algorithm of RFA (Pillutla, Kakade, Harchaoui,
// "Robust Aggregation for Federated Learning", IEEE Transactions on Signal Processing 2022,
// Algorithm 2): z starts at the weighted mean and is replaced by the average of the inputs
// weighted a_i / max(nu, |z - v_i|), until the objective sum_i a_i |z - v_i| improves by less
// than `tolerance` (relative) or after `max_iterations` steps. a_i are the weights normalised to
// sum 1. Influence: min(1, median distance / own distance) (distance_influence).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "robust/rules.h"

namespace cohort::robust {
namespace {

double objective(const std::vector<double>& a, const std::vector<double>& dist) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * dist[i];
  return s;
}

class GeometricMedian final : public Rule {
 public:
  explicit GeometricMedian(const RuleOptions& o)
      : max_iterations_(o.max_iterations), tolerance_(o.tolerance), nu_(o.nu) {}

  std::string describe() const override {
    return "geometric_median(max_iterations=" + std::to_string(max_iterations_) +
           ", tolerance=" + format_number(tolerance_) + ", nu=" + format_number(nu_) + ")";
  }

  Status check(size_t n) const override {
    if (n == 0) return Status::invalid_argument("geometric_median: needs at least 1 update");
    return Status();
  }

  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    COHORT_RETURN_IF_ERROR(check_inputs("geometric_median", in, out));
    COHORT_RETURN_IF_ERROR(check(in.vectors.size()));
    const size_t n = in.vectors.size();
    std::vector<const float*> ptrs(n);
    for (size_t i = 0; i < n; ++i) ptrs[i] = in.vectors[i].data();
    double total = 0;
    for (double w : in.weights) total += w;
    std::vector<double> a(n);
    for (size_t i = 0; i < n; ++i) a[i] = in.weights[i] / total;

    std::vector<float> beta(n);
    for (size_t i = 0; i < n; ++i) beta[i] = static_cast<float>(a[i]);
    ops::weighted_sum(ptrs, beta, out);
    std::vector<double> dist = distances_to(in, out);
    double obj = objective(a, dist);
    int64_t iterations = 0;
    while (iterations < max_iterations_) {
      double sum = 0;
      std::vector<double> b(n);
      for (size_t i = 0; i < n; ++i) {
        b[i] = a[i] / std::max(nu_, dist[i]);
        sum += b[i];
      }
      for (size_t i = 0; i < n; ++i) beta[i] = static_cast<float>(b[i] / sum);
      ops::weighted_sum(ptrs, beta, out);
      ++iterations;
      dist = distances_to(in, out);
      const double next = objective(a, dist);
      const bool converged = std::fabs(obj - next) <= tolerance_ * next;
      obj = next;
      if (converged) break;
    }

    if (outcome) {
      outcome->influence = distance_influence(in, out);
      outcome->stats = {{"iterations", static_cast<double>(iterations)}, {"objective", obj}};
    }
    return Status();
  }

 private:
  int64_t max_iterations_;
  double tolerance_;
  double nu_;
};

}  // namespace

Result<std::unique_ptr<Rule>> make_geometric_median(const RuleOptions& o) {
  if (o.max_iterations < 1) {
    return Status::invalid_argument("robust.max_iterations: must be >= 1, got " +
                                    std::to_string(o.max_iterations));
  }
  if (!(o.tolerance >= 0) || !std::isfinite(o.tolerance)) {
    return Status::invalid_argument("robust.tolerance: must be finite and >= 0, got " +
                                    format_number(o.tolerance));
  }
  if (!(o.nu > 0) || !std::isfinite(o.nu)) {
    return Status::invalid_argument("robust.nu: must be finite and > 0, got " +
                                    format_number(o.nu));
  }
  return std::unique_ptr<Rule>(std::make_unique<GeometricMedian>(o));
}

}  // namespace cohort::robust
