// A plain double-precision implementation of the FedOpt server step (Reddi et al. 2021, as
// written in cohort/strategy/fedopt.h), independent of the vectorised kernel, for tests.
#pragma once

#include <cmath>
#include <vector>

namespace cohort::testing {

enum class RefRule { kAdam, kYogi, kAdagrad };

struct RefFedOpt {
  RefRule rule;
  double beta_1, beta_2, tau;
  std::vector<double> w, m, v;

  RefFedOpt(RefRule r, double b1, double b2, double t, std::vector<double> w0)
      : rule(r), beta_1(b1), beta_2(b2), tau(t), w(std::move(w0)), m(w.size(), 0.0),
        v(w.size(), 0.0) {}

  // One server step with step size `lr` on the averaged pseudo-gradient `d`
  // (d = w_start - w_end, positive downhill).
  void step(double lr, const std::vector<double>& d) {
    for (size_t i = 0; i < w.size(); ++i) {
      m[i] = beta_1 * m[i] + (1 - beta_1) * d[i];
      const double d2 = d[i] * d[i];
      if (rule == RefRule::kAdam) {
        v[i] = beta_2 * v[i] + (1 - beta_2) * d2;
      } else if (rule == RefRule::kYogi) {
        const double sign = v[i] > d2 ? 1.0 : (v[i] < d2 ? -1.0 : 0.0);
        v[i] = v[i] - (1 - beta_2) * d2 * sign;
      } else {
        v[i] = v[i] + d2;
      }
      w[i] = w[i] - lr * m[i] / (std::sqrt(v[i]) + tau);
    }
  }
};

// Example-weighted mean of per-client pseudo-gradients.
inline std::vector<double> weighted_mean(const std::vector<std::vector<float>>& deltas,
                                         const std::vector<int64_t>& examples) {
  std::vector<double> out(deltas.front().size(), 0.0);
  double total = 0;
  for (size_t k = 0; k < deltas.size(); ++k) {
    total += static_cast<double>(examples[k]);
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] += static_cast<double>(examples[k]) * deltas[k][i];
    }
  }
  for (double& x : out) x /= total;
  return out;
}

}  // namespace cohort::testing
