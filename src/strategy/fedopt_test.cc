// The fused FedOpt kernel on inputs large enough to be split across kernel_pool() threads,
// against the plain double-precision reference.
#include "cohort/strategy/fedopt.h"

#include <cmath>

#include <gtest/gtest.h>

#include "cohort/core/ops.h"
#include "cohort/core/rng.h"
#include "testing/fedopt_reference.h"

namespace cohort {
namespace {

using testing::RefFedOpt;
using testing::RefRule;

void check_rule(FedOptRule rule, RefRule ref_rule, double lr, double b1, double b2, double tau) {
  // Not a multiple of the chunk, so the last chunk is partial.
  const int64_t n = 3 * ops::kChunk + 1234;
  Rng rng(42);
  std::vector<float> w(n), m(n, 0.0f), v(n, 0.0f);
  std::vector<double> w0(n);
  for (int64_t i = 0; i < n; ++i) {
    w[i] = static_cast<float>(rng.uniform() * 2 - 1);
    w0[i] = w[i];
  }
  RefFedOpt ref(ref_rule, b1, b2, tau, w0);
  for (int round = 0; round < 3; ++round) {
    std::vector<float> d(n);
    std::vector<double> dd(n);
    for (int64_t i = 0; i < n; ++i) {
      // Some exact zeros, to exercise 0 / (0 + tau) and Yogi's sign(0).
      d[i] = (i % 97 == 0) ? 0.0f : static_cast<float>(rng.uniform() * 0.2 - 0.1);
      dd[i] = d[i];
    }
    fedopt_update(rule, static_cast<float>(lr), static_cast<float>(b1), static_cast<float>(b2),
                  static_cast<float>(tau), d, m, v, w);
    ref.step(lr, dd);
  }
  double max_err_w = 0, max_err_v = 0;
  for (int64_t i = 0; i < n; ++i) {
    max_err_w = std::max(max_err_w, std::fabs(w[i] - ref.w[i]));
    max_err_v = std::max(max_err_v, std::fabs(v[i] - ref.v[i]));
    ASSERT_NEAR(m[i], ref.m[i], 1e-6) << "m at " << i;
  }
  EXPECT_LT(max_err_w, 1e-5);
  EXPECT_LT(max_err_v, 1e-7);
}

TEST(FedOptKernelTest, AdamMatchesReferenceAcrossChunks) {
  check_rule(FedOptRule::kAdam, RefRule::kAdam, 0.01, 0.9, 0.99, 1e-3);
}

TEST(FedOptKernelTest, YogiMatchesReferenceAcrossChunks) {
  check_rule(FedOptRule::kYogi, RefRule::kYogi, 0.01, 0.9, 0.99, 1e-3);
}

TEST(FedOptKernelTest, AdagradMatchesReferenceAcrossChunks) {
  check_rule(FedOptRule::kAdagrad, RefRule::kAdagrad, 0.1, 0.5, 0.0, 1e-3);
}

TEST(FedOptKernelTest, EmptyInputIsANoOp) {
  std::vector<float> none;
  fedopt_update(FedOptRule::kAdam, 0.1f, 0.9f, 0.99f, 1e-3f, none, none, none, none);
  SUCCEED();
}

}  // namespace
}  // namespace cohort
