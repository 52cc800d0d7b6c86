// A plain double-precision implementation of the FedOpt server step (Reddi et al. 2021, as
// written in cohort/strategy/fedopt.h), independent of the vectorised kernel, for tests.
#pragma once

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "testing/fake_host.h"
#include "testing/round_driver.h"

namespace cohort::testing {

enum class RefRule { kAdam, kYogi, kAdagrad };

struct RefFedOpt {
  RefRule rule;
  double beta_1, beta_2, tau;
  std::vector<double> w, m, v;

  RefFedOpt(RefRule r, double b1, double b2, double t, std::vector<double> w0)
      : rule(r),
        beta_1(b1),
        beta_2(b2),
        tau(t),
        w(std::move(w0)),
        m(w.size(), 0.0),
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

// The scenario the FedOpt strategy tests share: three rounds of two clients (100 and 300
// examples) on a 3-element model; the third coordinate never moves, which exercises
// 0 / (0 + tau).
inline const std::vector<int64_t> kExamples = {100, 300};
inline const std::vector<std::vector<std::vector<float>>> kDeltas = {
    {{-2.0f, 0.0f, 0.0f}, {0.0f, -4.0f, 0.0f}},  // Delta_bar = (-0.5, -3, 0)
    {{1.0f, 1.0f, 0.0f}, {1.0f, -1.0f, 0.0f}},   // Delta_bar = (1, -0.5, 0)
    {{0.4f, 2.0f, 0.0f}, {0.0f, 2.0f, 0.0f}},    // Delta_bar = (0.1, 2, 0)
};

inline void expect_near(const std::vector<float>& got, const std::vector<double>& want,
                        double tol = 1e-5) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

// Fixture: clients 0 and 1 registered; round(s, r) runs round r of kDeltas.
class FedOptRounds : public ::testing::Test {
 protected:
  void SetUp() override {
    host.add_client(0, 100);
    host.add_client(1, 300);
  }
  bool round(Strategy& s, int r) { return run_round(host, s, {0, 1}, kDeltas[r], kExamples); }
  FakeHost host;
};

}  // namespace cohort::testing
