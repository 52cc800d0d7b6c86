// Differential-privacy accounting for the Poisson-subsampled Gaussian mechanism (DP-SGD, and
// DP-FedAvg with client sampling) with Renyi differential privacy (RDP).
//
// One step samples each record (example, or client) independently with probability q, sums
// the clipped contributions (sensitivity 1 after clipping) and adds N(0, z^2) noise per
// coordinate, z being the noise multiplier. Its RDP at order alpha is (Mironov, Talwar, Zhang,
// "Renyi Differential Privacy of the Sampled Gaussian Mechanism", 2019)
//   eps_RDP(alpha) = log A_alpha / (alpha - 1),  A_alpha = E_{x ~ N(0, z^2)} [
//                    ((1 - q) + q exp((2x - 1) / (2 z^2)))^alpha ],
// evaluated by the binomial expansion for integer alpha and by the two-series expansion of
// Sec. 3.3 for fractional alpha (src/privacy/rdp.cc). RDP composes by addition, so an
// accountant keeps, per order, the sum over the steps taken, and converts to (epsilon, delta)
// by minimising over the orders:
//   classic  (Mironov 2017, Prop. 3):  eps = rdp - log(delta) / (alpha - 1)
//   improved (Balle, Barthe, Gaboardi, Hsu, Sato 2020; Canonne, Kamath, Steinke 2020):
//            eps = rdp + log1p(-1/alpha) - (log(delta) + log(alpha)) / (alpha - 1), >= 0.
// The improved epsilon is always below the classic one; it is what TensorFlow Privacy and
// dp_accounting report, while the epsilons in Opacus's MNIST README were computed with the
// classic one (the tests reproduce both).
//
// The neighbouring relation is add/remove-one (Poisson sampling). Everything is computed in
// log space, so tiny q, large orders and small z neither overflow nor lose the result.
//
// Errors: InvalidArgument naming the parameter as it is spelled here ("q: must be in [0, 1],
// got 1.5"); callers add the config key with Status::with_context.
//
// Thread safety: the free functions are pure and may run concurrently. RdpAccountant is a
// value type: const methods may run concurrently, a non-const one needs exclusive access.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cohort/core/status.h"

namespace cohort::privacy {

// How RDP is converted to (epsilon, delta); see the file comment.
enum class Conversion { kClassic, kImproved };

// "classic" | "improved".
std::string_view to_string(Conversion c);
// InvalidArgument "conversion: unknown 'x' (known: classic, improved)" for anything else.
Result<Conversion> parse_conversion(std::string_view text);

// The orders an accountant tracks by default, sorted and unique: {1.25, 1.5, 1.75, 2, 2.25,
// 2.5, 3, 3.5, 4, 4.5}, the integers 5..63, the grid 1 + x/10 for x = 1..99 (1.1 .. 10.9,
// the fractional orders of Opacus and TensorFlow Privacy) and {64, 128, 256, 512}. Small
// orders matter for large epsilon, large orders for small q and large z.
std::vector<double> default_orders();

// The largest order accepted: the integer expansion has alpha + 1 terms.
inline constexpr double kMaxOrder = 1e5;

// RDP at order `alpha` in (1, kMaxOrder] (may be fractional) of ONE step of the sampled
// Gaussian mechanism with sampling rate q in [0, 1] and noise multiplier z > 0 (both finite).
// q == 0 gives 0, q == 1 the plain Gaussian alpha / (2 z^2). May be +inf when z is so small
// (below about 1e-150) that the result overflows a double. Integer orders are exact to
// rounding; fractional ones have an absolute error of about 1e-15 in log A_alpha, which only
// matters in relative terms for RDP values below about 1e-10 (large z).
Result<double> sampled_gaussian_rdp(double q, double z, double alpha);

// The best (epsilon, delta) guarantee over the orders: the smallest epsilon and the order
// that gave it (the first such order on ties).
struct EpsilonResult {
  double epsilon = 0;
  double order = 0;
};

// Minimises the conversion `c` over the orders. InvalidArgument when the spans differ in size
// or are empty, an order is not in (1, kMaxOrder], an rdp value is NaN or < 0 (+inf is allowed
// and gives epsilon +inf at that order), or delta is not in (0, 1).
Result<EpsilonResult> epsilon_from_rdp(std::span<const double> orders, std::span<const double> rdp,
                                       double delta, Conversion c);

// epsilon after `steps` >= 0 steps of (q, z) at `delta`; empty `orders` = default_orders().
Result<EpsilonResult> compute_epsilon(double q, double z, int64_t steps, double delta, Conversion c,
                                      std::span<const double> orders = {});

// The smallest noise multiplier, up to a relative `tolerance` in (0, 1), whose epsilon after
// `steps` >= 1 steps with sampling rate q in (0, 1] at `delta` is <= target_epsilon (> 0), over
// default_orders(). Bracketing by doubling / halving from z = 1, then bisection as Opacus's
// get_noise_multiplier, but stopping on z rather than on epsilon: the result z satisfies
// epsilon(z) <= target and epsilon(z * (1 - tolerance)) > target. z is searched in
// [0.001, 1e6]: a target already met at 0.001 gives 0.001, and InvalidArgument
// "target_epsilon: ..." when 1e6 does not reach it (below the conversion's floor at the
// largest order, about 0.02 for delta 1e-5).
Result<double> noise_multiplier_for(double target_epsilon, double q, int64_t steps, double delta,
                                    Conversion c, double tolerance = 0.01);

// Composes steps of the sampled Gaussian mechanism, possibly with different (q, z) (a run
// whose sampling rate or noise changes), and reports the epsilon spent so far.
class RdpAccountant {
 public:
  // `orders` must be non-empty, finite, > 1 and at most kMaxOrder; otherwise every call
  // returns InvalidArgument "orders: ..." until restore() succeeds.
  explicit RdpAccountant(std::vector<double> orders = default_orders());

  // Adds `steps` >= 0 steps with sampling rate q and noise multiplier z. InvalidArgument naming
  // the bad value ("z: must be > 0, got 0"); the state is unchanged on error.
  Status step(double q, double z, int64_t steps = 1);

  // The epsilon spent so far at `delta`. With no step taken (or only q = 0 steps) this is the
  // conversion's floor at the largest order, not 0.
  Result<EpsilonResult> epsilon(double delta, Conversion c = Conversion::kImproved) const;

  // The epsilon if `steps` more steps of (q, z) were taken, without taking them: a run that
  // must not exceed a budget stops when this exceeds it.
  Result<EpsilonResult> epsilon_after(double q, double z, int64_t steps, double delta,
                                      Conversion c = Conversion::kImproved) const;

  int64_t steps() const { return steps_; }
  const std::vector<double>& orders() const { return orders_; }
  // Per order, the RDP of all steps so far.
  const std::vector<double>& rdp() const { return rdp_; }

  // Replaces the state with a checkpointed one (orders(), rdp(), steps() of an accountant).
  // InvalidArgument, leaving the state unchanged, when the sizes differ or are 0, an order is
  // invalid, an rdp value is not finite or < 0, or steps < 0.
  Status restore(std::vector<double> orders, std::vector<double> rdp, int64_t steps);

 private:
  std::vector<double> orders_;
  std::vector<double> rdp_;
  int64_t steps_ = 0;
  Status orders_status_;  // not OK when the constructor got invalid orders
  // Per-step RDP of the last (q, z) given to step(), reused while they repeat.
  double cached_q_ = 0;
  double cached_z_ = 0;
  std::vector<double> cached_rdp_;
};

// The two evaluations of log A_alpha behind sampled_gaussian_rdp (for 0 < q < 1), exposed so
// tests can compare them at the same order; callers use sampled_gaussian_rdp. The integer
// expansion needs an integer alpha >= 2; the series takes any alpha > 1.
namespace internal {
double log_a_integer(double q, double z, int64_t alpha);
double log_a_series(double q, double z, double alpha);
// log(erfc(x)) for any x, also where erfc(x) underflows (x > 26.5): an asymptotic series
// from x = 25 on.
double log_erfc(double x);
}  // namespace internal

}  // namespace cohort::privacy
