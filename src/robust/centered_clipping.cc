// Centered clipping (Karimireddy, He, Jaggi, "Learning from History for Byzantine Robust
// Optimization", ICML 2021, Algorithm 1 / eq. 2): starting from the previous aggregate v
// (Inputs::previous, zero when empty), repeat L = `iterations` times
//   v <- v + sum_i w_i (v_i - v) min(1, tau / |v_i - v|) / sum_i w_i,
// i.e. move v by the weighted mean of the inputs' offsets from it, each clipped to radius tau.
// An input far from the centre moves it by at most tau times its weight share per iteration.
// Influence: the clip factor min(1, tau / |v_i - v|) of the last iteration.
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

// acc[j] += b * (x[j] - v[j])
COHORT_MULTIVERSION void k_add_offset(float b, const float* __restrict x, const float* __restrict v,
                                      float* __restrict acc, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += b * (x[j] - v[j]);
}

// v <- v + sum_i beta[i] (v_i - v), element by element in input order (independent of where
// chunk and block boundaries fall).
void step(const Inputs& in, const std::vector<float>& beta, std::span<float> v) {
  constexpr int64_t kBlock = 2048;
  const auto d = static_cast<int64_t>(v.size());
  kernel_pool().parallel_for(0, d, ops::kChunk, [&](int64_t lo, int64_t hi) {
    float acc[kBlock];
    for (int64_t b = lo; b < hi; b += kBlock) {
      const int64_t m = std::min(kBlock, hi - b);
      std::fill(acc, acc + m, 0.0f);
      for (size_t i = 0; i < in.vectors.size(); ++i) {
        if (beta[i] != 0.0f) k_add_offset(beta[i], in.vectors[i].data() + b, v.data() + b, acc, m);
      }
      for (int64_t j = 0; j < m; ++j) v[static_cast<size_t>(b + j)] += acc[j];
    }
  });
}

class CenteredClipping final : public Rule {
 public:
  explicit CenteredClipping(const RuleOptions& o) : tau_(o.tau), iterations_(o.iterations) {}

  std::string describe() const override {
    return "centered_clipping(tau=" + format_number(tau_) +
           ", iterations=" + std::to_string(iterations_) + ")";
  }

  Status check(size_t n) const override {
    if (n == 0) return Status::invalid_argument("centered_clipping: needs at least 1 update");
    return Status();
  }

  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    COHORT_RETURN_IF_ERROR(check_inputs("centered_clipping", in, out));
    COHORT_RETURN_IF_ERROR(check(in.vectors.size()));
    const size_t n = in.vectors.size();
    double total = 0;
    for (double w : in.weights) total += w;
    if (in.previous.empty()) {
      ops::fill(out, 0.0f);
    } else if (in.previous.data() != out.data()) {
      ops::copy(in.previous, out);
    }
    std::vector<double> factor(n, 1.0);
    std::vector<float> beta(n);
    for (int64_t l = 0; l < iterations_; ++l) {
      const std::vector<double> dist = distances_to(in, out);
      for (size_t i = 0; i < n; ++i) {
        factor[i] = dist[i] > tau_ ? tau_ / dist[i] : 1.0;
        beta[i] = static_cast<float>(in.weights[i] / total * factor[i]);
      }
      step(in, beta, out);
    }

    if (outcome) {
      outcome->influence = factor;
      const auto clipped = std::count_if(factor.begin(), factor.end(), [](double f) {
        return f < 1.0;
      });
      outcome->stats = {{"clipped", static_cast<double>(clipped)}};
    }
    return Status();
  }

 private:
  double tau_;
  int64_t iterations_;
};

}  // namespace

Result<std::unique_ptr<Rule>> make_centered_clipping(const RuleOptions& o) {
  if (!(o.tau > 0) || !std::isfinite(o.tau)) {
    return Status::invalid_argument("robust.tau: must be finite and > 0, got " +
                                    format_number(o.tau));
  }
  if (o.iterations < 1) {
    return Status::invalid_argument("robust.iterations: must be >= 1, got " +
                                    std::to_string(o.iterations));
  }
  return std::unique_ptr<Rule>(std::make_unique<CenteredClipping>(o));
}

}  // namespace cohort::robust
