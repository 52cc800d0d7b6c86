// The "mean" rule: the weighted mean sum_i w_i v_i / sum_i w_i, i.e. FedAvg's aggregation (McMahan
// et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
// AISTATS 2017). No defence: the baseline the robust rules are measured against. Every input
// has influence 1.
#include <memory>
#include <vector>

#include "cohort/core/ops.h"
#include "rules.h"

namespace cohort::robust {
namespace {

class MeanRule final : public Rule {
 public:
  std::string describe() const override { return "mean"; }

  Status check(size_t n) const override {
    if (n == 0) return Status::invalid_argument("mean: no updates to aggregate");
    return Status();
  }

  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    COHORT_RETURN_IF_ERROR(check_inputs("mean", in, out));
    const size_t n = in.vectors.size();
    double total = 0;
    for (double w : in.weights) total += w;
    std::vector<const float*> ptrs(n);
    std::vector<float> w(n);
    for (size_t i = 0; i < n; ++i) {
      ptrs[i] = in.vectors[i].data();
      w[i] = static_cast<float>(in.weights[i] / total);
    }
    ops::weighted_sum(ptrs, w, out);
    if (outcome != nullptr) {
      outcome->influence.assign(n, 1.0);
      outcome->stats.clear();
    }
    return Status();
  }
};

}  // namespace

Result<std::unique_ptr<Rule>> make_mean(const RuleOptions& /*o*/) {
  return std::unique_ptr<Rule>(std::make_unique<MeanRule>());
}

}  // namespace cohort::robust
