#include "cohort/strategy/fedopt.h"

#include <cassert>
#include <cmath>

#include "cohort/core/multiversion.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"


namespace cohort {
namespace {

// One loop per rule so each is a straight-line body the compiler vectorises; every element
// of the four buffers is read once and m, v, w written once. v stays >= 0 under all three
// rules when it starts at 0, so sqrt never sees a negative argument.
COHORT_MULTIVERSION void k_adam(const float* __restrict d, float* __restrict m,
                                       float* __restrict v, float* __restrict w, int64_t n,
                                       float lr, float b1, float b2, float tau) {
  for (int64_t i = 0; i < n; ++i) {
    const float di = d[i];
    const float mi = b1 * m[i] + (1.0f - b1) * di;
    const float vi = b2 * v[i] + (1.0f - b2) * di * di;
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr * mi / (std::sqrt(vi) + tau);
  }
}

COHORT_MULTIVERSION void k_yogi(const float* __restrict d, float* __restrict m,
                                       float* __restrict v, float* __restrict w, int64_t n,
                                       float lr, float b1, float b2, float tau) {
  for (int64_t i = 0; i < n; ++i) {
    const float di = d[i];
    const float d2 = di * di;
    const float mi = b1 * m[i] + (1.0f - b1) * di;
    const float sign = static_cast<float>(v[i] > d2) - static_cast<float>(v[i] < d2);
    const float vi = v[i] - (1.0f - b2) * d2 * sign;
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr * mi / (std::sqrt(vi) + tau);
  }
}

COHORT_MULTIVERSION void k_adagrad(const float* __restrict d, float* __restrict m,
                                          float* __restrict v, float* __restrict w, int64_t n,
                                          float lr, float b1, float tau) {
  for (int64_t i = 0; i < n; ++i) {
    const float di = d[i];
    const float mi = b1 * m[i] + (1.0f - b1) * di;
    const float vi = v[i] + di * di;
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr * mi / (std::sqrt(vi) + tau);
  }
}

}  // namespace

void fedopt_update(FedOptRule rule, float lr, float beta_1, float beta_2, float tau,
                   std::span<const float> delta, std::span<float> m, std::span<float> v,
                   std::span<float> w) {
  assert(delta.size() == m.size() && delta.size() == v.size() && delta.size() == w.size());
  const auto n = static_cast<int64_t>(w.size());
  auto run = [&](int64_t lo, int64_t hi) {
    const float* d = delta.data() + lo;
    float* mp = m.data() + lo;
    float* vp = v.data() + lo;
    float* wp = w.data() + lo;
    switch (rule) {
      case FedOptRule::kAdam:
        k_adam(d, mp, vp, wp, hi - lo, lr, beta_1, beta_2, tau);
        break;
      case FedOptRule::kYogi:
        k_yogi(d, mp, vp, wp, hi - lo, lr, beta_1, beta_2, tau);
        break;
      case FedOptRule::kAdagrad:
        k_adagrad(d, mp, vp, wp, hi - lo, lr, beta_1, tau);
        break;
    }
  };
  // Elementwise, so the chunking affects speed only, never the result.
  if (n < 2 * ops::kChunk) {
    run(0, n);
  } else {
    kernel_pool().parallel_for(0, n, ops::kChunk, run);
  }
}

FedOpt::FedOpt(FedOptOptions options, FedOptRule rule)
    : FedAvg(FedAvgOptions{.round = options.round, .server_lr = options.server_lr}),
      opt_(options),
      rule_(rule) {}

FedOptOptions FedOpt::read_options(StrategyParams& p, FedOptOptions o, bool read_beta_2) {
  o.round = read_round_options(p);
  o.server_lr = p.number("server_lr", o.server_lr);
  p.check(o.server_lr > 0, "server_lr", "must be > 0", o.server_lr);
  o.beta_1 = p.number("beta_1", o.beta_1);
  p.check(o.beta_1 >= 0 && o.beta_1 < 1, "beta_1", "must be in [0, 1)", o.beta_1);
  if (read_beta_2) {
    o.beta_2 = p.number("beta_2", o.beta_2);
    p.check(o.beta_2 >= 0 && o.beta_2 < 1, "beta_2", "must be in [0, 1)", o.beta_2);
  }
  o.tau = p.number("tau", o.tau);
  p.check(o.tau > 0, "tau", "must be > 0", o.tau);
  return o;
}

Status FedOpt::on_start() {
  COHORT_RETURN_IF_ERROR(FedAvg::on_start());
  m_ = ArrayRecord(model_->layout());
  v_ = ArrayRecord(model_->layout());
  track_optimizer_state(&m_);
  track_optimizer_state(&v_);
  return Status();
}

Status FedOpt::apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) {
  fedopt_update(rule_, static_cast<float>(step_size()), static_cast<float>(opt_.beta_1),
                static_cast<float>(opt_.beta_2), static_cast<float>(opt_.tau), avg_delta.flat(),
                m_.flat(), v_.flat(), next.flat());
  return Status();
}

Status FedOpt::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(FedAvg::io_state(io));
  io.array("m", m_);
  io.array("v", v_);
  return io.status();
}

}  // namespace cohort
