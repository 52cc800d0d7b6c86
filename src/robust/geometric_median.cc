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
#include "cohort/core/multiversion.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "robust/rules.h"

namespace cohort::robust {
namespace {

// sum_i (x_i - y_i)^2 in double, four accumulators as ops::dot.
COHORT_MULTIVERSION double k_sq_dist(const float* __restrict x, const float* __restrict y,
                                     int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const double t0 = static_cast<double>(x[i]) - y[i];
    const double t1 = static_cast<double>(x[i + 1]) - y[i + 1];
    const double t2 = static_cast<double>(x[i + 2]) - y[i + 2];
    const double t3 = static_cast<double>(x[i + 3]) - y[i + 3];
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; i < n; ++i) {
    const double t = static_cast<double>(x[i]) - y[i];
    s0 += t * t;
  }
  return (s0 + s1) + (s2 + s3);
}

// |z - v_i| for every input: squared distances summed per fixed chunk of ops::kChunk
// elements, chunks added in order, so the result does not depend on the thread count.
std::vector<double> distances(const Inputs& in, std::span<const float> z) {
  const size_t n = in.vectors.size();
  const auto d = static_cast<int64_t>(z.size());
  const int64_t chunks = (d + ops::kChunk - 1) / ops::kChunk;
  std::vector<double> parts(static_cast<size_t>(chunks) * n);
  kernel_pool().parallel_for(0, d, ops::kChunk, [&](int64_t lo, int64_t hi) {
    double* p = parts.data() + static_cast<size_t>(lo / ops::kChunk) * n;
    for (size_t i = 0; i < n; ++i)
      p[i] = k_sq_dist(in.vectors[i].data() + lo, z.data() + lo, hi - lo);
  });
  std::vector<double> dist(n, 0.0);
  for (int64_t c = 0; c < chunks; ++c) {
    for (size_t i = 0; i < n; ++i) dist[i] += parts[static_cast<size_t>(c) * n + i];
  }
  for (double& x : dist) x = std::sqrt(x);
  return dist;
}

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
    std::vector<double> dist = distances(in, out);
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
      dist = distances(in, out);
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
