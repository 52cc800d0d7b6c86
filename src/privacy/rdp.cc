// RDP of the Poisson-subsampled Gaussian mechanism, its conversion to (epsilon, delta), the
// noise calibration and the accountant (include/cohort/privacy/accountant.h).
//
// With x ~ N(0, z^2) and r(x) = exp((2x - 1) / (2 z^2)) the likelihood ratio of N(1, z^2) to
// N(0, z^2), one step has A_alpha = E[((1 - q) + q r(x))^alpha] and RDP log A_alpha /
// (alpha - 1). Two evaluations:
//
// Integer alpha: the binomial expansion gives A = sum_i C(alpha, i) q^i (1 - q)^(alpha - i)
// E[r^i], E[r^i] = exp((i^2 - i) / (2 z^2)). Since the binomial weights sum to 1 and the i = 0,
// 1 terms have E[r^i] = 1, A - 1 = sum_{i >= 2} C(alpha, i) q^i (1 - q)^(alpha - i)
// expm1((i^2 - i) / (2 z^2)): all terms positive, summed in log space, then log A =
// log1p(A - 1). Same value as the plain sum, but exact to rounding when A is close to 1
// (small q or large z), where the plain sum would lose log A to cancellation.
//
// Fractional alpha (Mironov, Talwar, Zhang 2019, Sec. 3.3): split the line at z0 = z^2
// log(1/q - 1) + 1/2, where q r(x) = 1 - q. Below z0 expand ((1 - q) + q r)^alpha around
// 1 - q, above around q r; with the generalised binomial C(alpha, i) (signs alternate once
// i > alpha) and the truncated moments
//   int_{-inf}^{z0} N(x; 0, z^2) r^k dx = exp((k^2 - k) / (2 z^2)) erfc((k - z0) / (sqrt2 z)) / 2
//   int_{z0}^{inf}  N(x; 0, z^2) r^k dx = exp((k^2 - k) / (2 z^2)) erfc((z0 - k) / (sqrt2 z)) / 2
// A = sum_{i >= 0} C(alpha, i) [q^i (1 - q)^(alpha - i) lower(i) + q^(alpha - i) (1 - q)^i
// upper(alpha - i)]. The terms are added with their signs in log space and the sum stops,
// once i > alpha (where the tail alternates and shrinks, so its error is below the next
// term), when both terms are below e^-30 of the running total. For an integer alpha the
// coefficients vanish past alpha and the two halves of each term add up to the integer
// expansion's term, which the tests use.
//
// For a large erfc argument x, exp((k^2 - k) / (2 z^2)) erfc(x) multiplies a huge and a tiny
// number; with x^2 = (k - z0)^2 / (2 z^2) their exponents combine exactly into k log(1/q - 1) -
// z0^2 / (2 z^2), leaving erfc(x) exp(x^2), which the asymptotic series gives.
//
// The binomial coefficients come from the product recurrence C(alpha, i + 1) = C(alpha, i)
// (alpha - i) / (i + 1) with a compensated running log, which tracks the sign directly and,
// unlike std::lgamma (it writes the global signgam), is safe to run on several threads.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "cohort/core/format.h"
#include "cohort/core/validate.h"
#include "cohort/privacy/accountant.h"

namespace cohort::privacy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLogHalf = -0.693147180559945309417;
constexpr double kHalfLogPi = 0.572364942924700087072;  // log(pi) / 2
constexpr double kSqrt2 = 1.41421356237309504880;
// erfc(x) is computed directly below this (erfc(25) = 8e-274 is still a normal double) and by
// the asymptotic series above it, whose first term left out is then below 3e-17 of the sum.
constexpr double kAsymptoticFrom = 25.0;
// The series stops when its terms are below e^-kStopGap of the running total.
constexpr double kStopGap = 30.0;
// A bound on the fractional series' length; reached only for q near 1/2 with a huge z, where
// the alternating tail's error (below the last term) is then under 1e-12 of A.
constexpr int64_t kMaxSeriesTerms = 1'000'000;
// noise_multiplier_for searches z in [kMinNoise, kMaxNoise].
constexpr double kMinNoise = 1e-3;
constexpr double kMaxNoise = 1e6;

// A running sum sign * exp(log_mag) of signed terms given by their logs.
struct SignedLogSum {
  int sign = 0;  // 0: the sum is 0
  double log_mag = -kInf;

  void add(int s, double log_t) {
    if (log_t == -kInf) return;
    if (sign == 0) {
      sign = s;
      log_mag = log_t;
    } else if (s == sign) {
      const double hi = std::max(log_mag, log_t);
      const double lo = std::min(log_mag, log_t);
      log_mag = hi == kInf ? kInf : hi + std::log1p(std::exp(lo - hi));
    } else if (log_t < log_mag) {
      log_mag += std::log1p(-std::exp(log_t - log_mag));
    } else if (log_t > log_mag) {
      sign = s;
      log_mag = log_t + std::log1p(-std::exp(log_mag - log_t));
    } else {
      sign = 0;
      log_mag = -kInf;
    }
  }
};

// sum += v with Kahan's compensation `comp`.
void add_compensated(double& sum, double& comp, double v) {
  const double y = v - comp;
  const double t = sum + y;
  comp = (t - sum) - y;
  sum = t;
}

// log(expm1(x)) for x >= 0 (-inf at 0).
double log_expm1(double x) {
  if (x > 50) return x + std::log1p(-std::exp(-x));
  return std::log(std::expm1(x));
}

// log(1 + exp(x)).
double log1p_exp(double x) {
  if (x > 35) return x + std::log1p(std::exp(-x));
  return std::log1p(std::exp(x));
}

// log(erfc(x) exp(x^2)) for x >= kAsymptoticFrom: erfc(x) = exp(-x^2) / (x sqrt(pi)) (1 -
// 1/(2x^2) + 3/(2x^2)^2 - 15/(2x^2)^3 + ...), the terms being (-1)^n (2n - 1)!! / (2x^2)^n.
double log_erfc_scaled(double x) {
  const double r = 1.0 / (2.0 * x * x);
  double term = 1.0;
  double sum = 1.0;
  for (int n = 1; n <= 6; ++n) {
    term *= -(2.0 * n - 1.0) * r;
    sum += term;
  }
  return -std::log(x) - kHalfLogPi + std::log(sum);
}

// (k^2 - k) / (2 z^2) given inv = 1 / (2 z^2); 0 for k in {0, 1} even when inv is +inf.
double half_square_term(double k, double inv) {
  const double n = k * k - k;
  return n == 0 ? 0.0 : n * inv;
}

// What the fractional series needs about (q, z).
struct SeriesConstants {
  double log_q;
  double log_1mq;
  double log_odds;  // log(1/q - 1)
  double z0;        // z^2 log(1/q - 1) + 1/2
  double inv;       // 1 / (2 z^2)
  double c;         // z0^2 / (2 z^2) = z^2 L^2 / 2 + L / 2 + 1 / (8 z^2), L = log_odds
  double sqrt2_z;
};

// log(exp((k^2 - k) / (2 z^2)) erfc(x) / 2) where x^2 = (k - z0)^2 / (2 z^2).
double log_truncated_moment(double k, double x, const SeriesConstants& s) {
  if (x < kAsymptoticFrom) return kLogHalf + internal::log_erfc(x) + half_square_term(k, s.inv);
  return kLogHalf + k * s.log_odds - s.c + log_erfc_scaled(x);
}

bool is_integer(double v) { return std::floor(v) == v; }

const Range kOrderRange{Range::Bound::kOpen, 1.0, Range::Bound::kClosed, kMaxOrder};
const Range kDeltaRange{Range::Bound::kOpen, 0.0, Range::Bound::kOpen, 1.0};

Status check_q_z(double q, double z) {
  COHORT_RETURN_IF_ERROR(check_field("q", q, Range::closed(0, 1)));
  return check_field("z", z, Range::above(0));
}

Status check_orders(std::span<const double> orders) {
  if (orders.empty()) return field_error("orders", "must not be empty");
  for (size_t k = 0; k < orders.size(); ++k) {
    COHORT_RETURN_IF_ERROR(
        check_field("orders[" + std::to_string(k) + "]", orders[k], kOrderRange));
  }
  return Status();
}

// sampled_gaussian_rdp at every order, for arguments already checked.
Result<std::vector<double>> rdp_per_step(double q, double z, std::span<const double> orders) {
  std::vector<double> out(orders.size());
  for (size_t k = 0; k < orders.size(); ++k) {
    COHORT_ASSIGN_OR_RETURN(out[k], sampled_gaussian_rdp(q, z, orders[k]));
  }
  return out;
}

// `base` + steps * `per_step` per order (base empty = 0).
std::vector<double> compose(std::span<const double> base, std::span<const double> per_step,
                            int64_t steps) {
  std::vector<double> out(per_step.size(), 0.0);
  for (size_t k = 0; k < out.size(); ++k) {
    const double add = steps == 0 ? 0.0 : static_cast<double>(steps) * per_step[k];
    out[k] = (base.empty() ? 0.0 : base[k]) + add;
  }
  return out;
}

}  // namespace

namespace internal {

double log_erfc(double x) {
  if (x < kAsymptoticFrom) return std::log(std::erfc(x));
  return -x * x + log_erfc_scaled(x);
}

double log_a_integer(double q, double z, int64_t alpha) {
  const double a = static_cast<double>(alpha);
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double inv = 1.0 / (2.0 * z * z);
  SignedLogSum excess;  // A - 1
  double log_c = 0.0;   // log C(alpha, i)
  double comp = 0.0;
  for (int64_t i = 0; i <= alpha; ++i) {
    const double di = static_cast<double>(i);
    if (i >= 2) {
      excess.add(1, log_c + di * log_q + (a - di) * log_1mq + log_expm1(half_square_term(di, inv)));
    }
    if (i < alpha) add_compensated(log_c, comp, std::log((a - di) / (di + 1.0)));
  }
  return log1p_exp(excess.log_mag);
}

double log_a_series(double q, double z, double alpha) {
  SeriesConstants s;
  s.log_q = std::log(q);
  s.log_1mq = std::log1p(-q);
  s.log_odds = s.log_1mq - s.log_q;
  const double z2 = z * z;
  s.z0 = z2 * s.log_odds + 0.5;
  s.inv = 1.0 / (2.0 * z2);
  s.c = z2 * s.log_odds * s.log_odds / 2.0 + s.log_odds / 2.0 + 1.0 / (8.0 * z2);
  s.sqrt2_z = kSqrt2 * z;

  SignedLogSum total;
  double log_c = 0.0;  // log |C(alpha, i)|
  double comp = 0.0;
  int sign = 1;  // sign of C(alpha, i)
  for (int64_t i = 0;; ++i) {
    const double lo_k = static_cast<double>(i);  // moment below z0: r^i
    const double hi_k = alpha - lo_k;            // moment above z0: r^(alpha - i)
    const double log_s0 = log_c + lo_k * s.log_q + hi_k * s.log_1mq +
                          log_truncated_moment(lo_k, (lo_k - s.z0) / s.sqrt2_z, s);
    const double log_s1 = log_c + hi_k * s.log_q + lo_k * s.log_1mq +
                          log_truncated_moment(hi_k, (s.z0 - hi_k) / s.sqrt2_z, s);
    total.add(sign, log_s0);
    total.add(sign, log_s1);
    if (total.log_mag == kInf) break;
    const double ratio = (alpha - lo_k) / (lo_k + 1.0);
    if (ratio == 0.0) break;  // integer alpha: C(alpha, i) = 0 from here on
    if (lo_k > alpha && std::max(log_s0, log_s1) < total.log_mag - kStopGap) break;
    if (i >= kMaxSeriesTerms) break;
    add_compensated(log_c, comp, std::log(std::fabs(ratio)));
    if (ratio < 0) sign = -sign;
  }
  // The partial sums of A are positive; anything else is a numerical failure, reported by
  // the caller.
  return total.sign > 0 ? total.log_mag : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace internal

std::string_view to_string(Conversion c) {
  return c == Conversion::kClassic ? "classic" : "improved";
}

Result<Conversion> parse_conversion(std::string_view text) {
  if (text == "classic") return Conversion::kClassic;
  if (text == "improved") return Conversion::kImproved;
  return field_error("conversion", "unknown '" + printable(text) + "' (known: classic, improved)");
}

std::vector<double> default_orders() {
  std::vector<double> o = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
  for (int a = 5; a <= 63; ++a) o.push_back(a);
  for (int x = 1; x <= 99; ++x) o.push_back(1.0 + x / 10.0);
  for (double a : {64.0, 128.0, 256.0, 512.0}) o.push_back(a);
  std::sort(o.begin(), o.end());
  o.erase(std::unique(o.begin(), o.end()), o.end());
  return o;
}

Result<double> sampled_gaussian_rdp(double q, double z, double alpha) {
  COHORT_RETURN_IF_ERROR(check_q_z(q, z));
  COHORT_RETURN_IF_ERROR(check_field("alpha", alpha, kOrderRange));
  if (q == 0) return 0.0;
  // The unsampled Gaussian's RDP bounds the sampled one's; when it underflows, so does this.
  const double full = alpha / (2.0 * z * z);
  if (q == 1 || full == 0) return full;
  const double log_a = is_integer(alpha)
                           ? internal::log_a_integer(q, z, static_cast<int64_t>(alpha))
                           : internal::log_a_series(q, z, alpha);
  // A >= 1; the series may land a rounding error below it when A is within 1e-15 of 1.
  if (std::isnan(log_a) || log_a < -1e-9) {
    return Status::internal("sampled_gaussian_rdp: numerical failure at q = " + format_number(q) +
                            ", z = " + format_number(z) + ", alpha = " + format_number(alpha));
  }
  return std::max(log_a, 0.0) / (alpha - 1.0);
}

Result<EpsilonResult> epsilon_from_rdp(std::span<const double> orders, std::span<const double> rdp,
                                       double delta, Conversion c) {
  COHORT_RETURN_IF_ERROR(check_orders(orders));
  if (rdp.size() != orders.size()) {
    return field_error("rdp", "has " + std::to_string(rdp.size()) + " values, orders has " +
                                  std::to_string(orders.size()));
  }
  for (size_t k = 0; k < rdp.size(); ++k) {
    if (std::isnan(rdp[k]) || rdp[k] < 0) {
      return field_error("rdp[" + std::to_string(k) + "]",
                         "must be >= 0, got " + format_number(rdp[k]));
    }
  }
  COHORT_RETURN_IF_ERROR(check_field("delta", delta, kDeltaRange));
  const double log_delta = std::log(delta);
  EpsilonResult best{kInf, orders[0]};
  for (size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k];
    double eps;
    if (c == Conversion::kClassic) {
      eps = rdp[k] - log_delta / (a - 1.0);
    } else {
      eps = rdp[k] + std::log1p(-1.0 / a) - (log_delta + std::log(a)) / (a - 1.0);
      eps = std::max(eps, 0.0);
    }
    if (eps < best.epsilon) best = {eps, a};
  }
  return best;
}

Result<EpsilonResult> compute_epsilon(double q, double z, int64_t steps, double delta, Conversion c,
                                      std::span<const double> orders) {
  COHORT_RETURN_IF_ERROR(check_q_z(q, z));
  COHORT_RETURN_IF_ERROR(check_field("steps", steps, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("delta", delta, kDeltaRange));
  std::vector<double> defaults;
  if (orders.empty()) {
    defaults = default_orders();
    orders = defaults;
  }
  COHORT_RETURN_IF_ERROR(check_orders(orders));
  COHORT_ASSIGN_OR_RETURN(const std::vector<double> per_step, rdp_per_step(q, z, orders));
  const std::vector<double> total = compose({}, per_step, steps);
  return epsilon_from_rdp(orders, total, delta, c);
}

Result<double> noise_multiplier_for(double target_epsilon, double q, int64_t steps, double delta,
                                    Conversion c, double tolerance) {
  COHORT_RETURN_IF_ERROR(check_field("target_epsilon", target_epsilon, Range::above(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("q", q, Range{Range::Bound::kOpen, 0.0, Range::Bound::kClosed, 1.0}));
  COHORT_RETURN_IF_ERROR(check_field("steps", steps, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("delta", delta, kDeltaRange));
  COHORT_RETURN_IF_ERROR(check_field("tolerance", tolerance, kDeltaRange));
  const std::vector<double> orders = default_orders();
  auto epsilon_at = [&](double z) -> Result<double> {
    COHORT_ASSIGN_OR_RETURN(const EpsilonResult e, compute_epsilon(q, z, steps, delta, c, orders));
    return e.epsilon;
  };
  // Bracket: epsilon(lo) > target >= epsilon(hi), by doubling or halving from z = 1.
  double lo = 1.0;
  double hi = 1.0;
  COHORT_ASSIGN_OR_RETURN(double eps, epsilon_at(1.0));
  if (eps > target_epsilon) {
    while (eps > target_epsilon) {
      if (hi >= kMaxNoise) {
        return field_error("target_epsilon", "no noise multiplier up to " +
                                                 format_number(kMaxNoise) + " reaches " +
                                                 format_number(target_epsilon) + " (epsilon " +
                                                 format_number(eps) + " there)");
      }
      lo = hi;
      hi = std::min(2.0 * hi, kMaxNoise);
      COHORT_ASSIGN_OR_RETURN(eps, epsilon_at(hi));
    }
  } else {
    while (eps <= target_epsilon) {
      if (lo <= kMinNoise) return kMinNoise;
      hi = lo;
      lo = std::max(lo / 2.0, kMinNoise);
      COHORT_ASSIGN_OR_RETURN(eps, epsilon_at(lo));
    }
  }
  while (hi - lo > tolerance * hi) {
    const double mid = (lo + hi) / 2.0;
    COHORT_ASSIGN_OR_RETURN(eps, epsilon_at(mid));
    (eps <= target_epsilon ? hi : lo) = mid;
  }
  return hi;
}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : orders_(std::move(orders)),
      rdp_(orders_.size(), 0.0),
      orders_status_(check_orders(orders_)) {}

Status RdpAccountant::step(double q, double z, int64_t steps) {
  COHORT_RETURN_IF_ERROR(orders_status_);
  COHORT_RETURN_IF_ERROR(check_q_z(q, z));
  COHORT_RETURN_IF_ERROR(check_field("steps", steps, Range::at_least(0)));
  if (steps > std::numeric_limits<int64_t>::max() - steps_) {
    return field_error("steps", "the total would overflow, got " + std::to_string(steps) +
                                    " after " + std::to_string(steps_));
  }
  if (steps == 0) return Status();
  if (cached_rdp_.empty() || cached_q_ != q || cached_z_ != z) {
    COHORT_ASSIGN_OR_RETURN(cached_rdp_, rdp_per_step(q, z, orders_));
    cached_q_ = q;
    cached_z_ = z;
  }
  rdp_ = compose(rdp_, cached_rdp_, steps);
  steps_ += steps;
  return Status();
}

Result<EpsilonResult> RdpAccountant::epsilon(double delta, Conversion c) const {
  COHORT_RETURN_IF_ERROR(orders_status_);
  return epsilon_from_rdp(orders_, rdp_, delta, c);
}

Result<EpsilonResult> RdpAccountant::epsilon_after(double q, double z, int64_t steps, double delta,
                                                   Conversion c) const {
  COHORT_RETURN_IF_ERROR(orders_status_);
  COHORT_RETURN_IF_ERROR(check_q_z(q, z));
  COHORT_RETURN_IF_ERROR(check_field("steps", steps, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("delta", delta, kDeltaRange));
  std::vector<double> per_step;
  if (!cached_rdp_.empty() && cached_q_ == q && cached_z_ == z) {
    per_step = cached_rdp_;
  } else {
    COHORT_ASSIGN_OR_RETURN(per_step, rdp_per_step(q, z, orders_));
  }
  return epsilon_from_rdp(orders_, compose(rdp_, per_step, steps), delta, c);
}

Status RdpAccountant::restore(std::vector<double> orders, std::vector<double> rdp, int64_t steps) {
  COHORT_RETURN_IF_ERROR(check_orders(orders));
  if (rdp.size() != orders.size()) {
    return field_error("rdp", "has " + std::to_string(rdp.size()) + " values, orders has " +
                                  std::to_string(orders.size()));
  }
  for (size_t k = 0; k < rdp.size(); ++k) {
    if (!std::isfinite(rdp[k]) || rdp[k] < 0) {
      return field_error("rdp[" + std::to_string(k) + "]",
                         "must be finite and >= 0, got " + format_number(rdp[k]));
    }
  }
  COHORT_RETURN_IF_ERROR(check_field("steps", steps, Range::at_least(0)));
  orders_ = std::move(orders);
  rdp_ = std::move(rdp);
  steps_ = steps;
  orders_status_ = Status();
  cached_rdp_.clear();
  return Status();
}

}  // namespace cohort::privacy
