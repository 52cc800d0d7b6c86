// Norm clipping: each input is scaled down to L2 norm at most S, then the weighted mean is
// taken. S is `max_norm`, or when that is 0 the median of the group's input norms (adaptive
// clipping as in Sun, Kairouz, Suresh, McMahan, "Can You Really Backdoor Federated Learning?",
// 2019, with the median as the threshold). Influence: the clip factor min(1, S / |v_i|).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "robust/rules.h"

namespace cohort::robust {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

class NormClip final : public Rule {
 public:
  explicit NormClip(const RuleOptions& o) : max_norm_(o.max_norm) {}

  std::string describe() const override {
    return "norm_clip(max_norm=" + format_number(max_norm_) + ")";
  }

  Status check(size_t n) const override {
    if (n == 0) return Status::invalid_argument("norm_clip: needs at least 1 update");
    return Status();
  }

  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    COHORT_RETURN_IF_ERROR(check_inputs("norm_clip", in, out));
    COHORT_RETURN_IF_ERROR(check(in.vectors.size()));
    const size_t n = in.vectors.size();
    std::vector<double> norms(n);
    for (size_t i = 0; i < n; ++i) norms[i] = ops::l2_norm(in.vectors[i]);
    const double s = max_norm_ > 0 ? max_norm_ : median(norms);
    double total = 0;
    for (double w : in.weights) total += w;
    std::vector<double> factor(n);
    std::vector<float> beta(n);
    std::vector<const float*> ptrs(n);
    for (size_t i = 0; i < n; ++i) {
      factor[i] = norms[i] > s ? s / norms[i] : 1.0;
      beta[i] = static_cast<float>(in.weights[i] / total * factor[i]);
      ptrs[i] = in.vectors[i].data();
    }
    ops::weighted_sum(ptrs, beta, out);

    if (outcome) {
      outcome->influence = factor;
      const auto clipped = std::count_if(factor.begin(), factor.end(), [](double f) {
        return f < 1.0;
      });
      outcome->stats = {{"clip_norm", s}, {"clipped", static_cast<double>(clipped)}};
    }
    return Status();
  }

 private:
  double max_norm_;
};

}  // namespace

Result<std::unique_ptr<Rule>> make_norm_clip(const RuleOptions& o) {
  if (!(o.max_norm >= 0) || !std::isfinite(o.max_norm)) {
    return Status::invalid_argument(
        "robust.max_norm: must be finite and >= 0 (0 = the median "
        "norm of the group), got " +
        format_number(o.max_norm));
  }
  return std::unique_ptr<Rule>(std::make_unique<NormClip>(o));
}

}  // namespace cohort::robust
