// The coordinate-wise median (Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed
// Learning: Towards Optimal Statistical Rates", ICML 2018), unweighted as Flower's FedMedian:
// numpy.median per coordinate (an even count averages the two middle values). Computed by the
// trimmed-mean kernel with lo = (n - 1) / 2 (coordinate_trim.h), which also gives each input's
// squared distance to the median in the same pass; influence is then distance_influence's
// min(1, median distance / own distance).
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "coordinate_trim.h"
#include "rules.h"

namespace cohort::robust {
namespace {

class MedianRule final : public Rule {
 public:
  std::string describe() const override { return "median"; }

  Status check(size_t n) const override {
    if (n == 0) return Status::invalid_argument("median: no updates to aggregate");
    return Status();
  }

  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    COHORT_RETURN_IF_ERROR(check_inputs("median", in, out));
    const size_t n = in.vectors.size();
    TrimStats stats;
    coordinate_trimmed_mean(in.vectors, static_cast<int64_t>((n - 1) / 2), out, false,
                            outcome != nullptr, &stats);
    if (outcome != nullptr) {
      // distance_influence's formula, on the distances computed in the pass.
      std::vector<double> dist(n);
      for (size_t i = 0; i < n; ++i) dist[i] = std::sqrt(stats.sq_dist[i]);
      outcome->influence = influence_from_distances(dist);
      outcome->stats.clear();
    }
    return Status();
  }
};

}  // namespace

Result<std::unique_ptr<Rule>> make_median(const RuleOptions& /*o*/) {
  return std::unique_ptr<Rule>(std::make_unique<MedianRule>());
}

}  // namespace cohort::robust
