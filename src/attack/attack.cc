// Simulated Byzantine clients (include/cohort/attack/attack.h).
//
// Local attacks: sign flipping and scaling (the classic Byzantine baselines), Gaussian noise
// (Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent",
// NeurIPS 2017) and free riders (Lin et al., "Free-riders in Federated Learning: Attacks and
// Defenses", 2019; Fraboni et al., "Free-rider Attacks on Model Aggregation in Federated
// Learning", AISTATS 2021).
//
// Colluding attacks, which see the honest updates of their group:
// - ALIE: Baruch, Baruch, Goldberg, "A Little Is Enough: Circumventing Defenses For
//   Distributed Learning" (NeurIPS 2019). Algorithm 3: s = floor(n / 2 + 1) - m honest
//   "supporters" are needed for a majority, z_max = max z with Phi(z) < (n - s) / n, and every
//   attacker sends mu_j + z_max * sigma_j per coordinate j.
// - IPM: Xie, Koyejo, Gupta, "Fall of Empires: Breaking Byzantine-tolerant SGD by Inner
//   Product Manipulation" (UAI 2019): every attacker sends -epsilon * mean(honest).
#include "cohort/attack/attack.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "cohort/core/multiversion.h"
#include "cohort/core/ops.h"
#include "cohort/core/rng.h"
#include "cohort/core/validate.h"

namespace cohort::attack {
namespace {

struct KindEntry {
  Kind kind;
  const char* name;
};

constexpr std::array<KindEntry, 8> kKinds = {{
    {Kind::kNone, "none"},
    {Kind::kSignFlip, "sign_flip"},
    {Kind::kScaling, "scaling"},
    {Kind::kGaussian, "gaussian"},
    {Kind::kLabelFlip, "label_flip"},
    {Kind::kAlie, "alie"},
    {Kind::kIpm, "ipm"},
    {Kind::kFreeRider, "free_rider"},
}};

std::string known_kinds() {
  std::string s;
  for (const KindEntry& e : kKinds) {
    if (!s.empty()) s += ", ";
    s += e.name;
  }
  return s;
}

// The kind's default when options.scale is 0.
double effective_scale(const AttackOptions& options, Kind kind) {
  if (options.scale != 0.0) return options.scale;
  return kind == Kind::kScaling ? 10.0 : 1.0;
}

// Phi^{-1}(p) for p in (0, 1): Acklam's rational approximation (relative error < 1.2e-9)
// refined by one Halley step on Phi(x) - p, with Phi from std::erfc, which brings it to about
// double precision. +-infinity at 1 and 0, NaN outside [0, 1].
double inverse_normal_cdf(double p) {
  if (!(p >= 0.0 && p <= 1.0)) return std::nan("");
  if (p == 0.0) return -HUGE_VAL;
  if (p == 1.0) return HUGE_VAL;
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  double x;
  if (p < kLow || p > 1.0 - kLow) {
    // Tails; the upper one by symmetry.
    const double q = std::sqrt(-2.0 * std::log(p < kLow ? p : 1.0 - p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    if (p > 1.0 - kLow) x = -x;
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  // Halley: e = Phi(x) - p, u = e / phi(x), x <- x - u / (1 + x u / 2).
  const double e = 0.5 * std::erfc(-x / std::numbers::sqrt2) - p;
  const double u = e * std::sqrt(2.0 * std::numbers::pi) * std::exp(0.5 * x * x);
  return x - u / (1.0 + 0.5 * x * u);
}

// Coordinates per block of the ALIE / IPM reductions: the block's double accumulators (two
// of them, 32 KiB) stay in L1/L2 while every honest vector streams through once per pass.
constexpr int64_t kBlock = 2048;

COHORT_MULTIVERSION void add_block(const float* __restrict x, int64_t m, double* __restrict acc) {
  for (int64_t i = 0; i < m; ++i) acc[i] += static_cast<double>(x[i]);
}

COHORT_MULTIVERSION void add_sq_dev_block(const float* __restrict x, const double* __restrict mean,
                                          int64_t m, double* __restrict acc) {
  for (int64_t i = 0; i < m; ++i) {
    const double dev = static_cast<double>(x[i]) - mean[i];
    acc[i] += dev * dev;
  }
}

// The block [lo, lo + m) of the honest mean, in double.
void mean_block(std::span<const std::span<const float>> honest, int64_t lo, int64_t m,
                double* mean) {
  std::fill(mean, mean + m, 0.0);
  for (const std::span<const float>& h : honest) add_block(h.data() + lo, m, mean);
  const double inv = 1.0 / static_cast<double>(honest.size());
  for (int64_t i = 0; i < m; ++i) mean[i] *= inv;
}

Status check_group(const char* what, std::span<const std::span<const float>> honest,
                   std::span<float> out) {
  if (honest.empty()) return Status::invalid_argument(std::string(what) + ": no honest updates");
  for (size_t k = 0; k < honest.size(); ++k) {
    if (honest[k].size() != out.size()) {
      return Status::invalid_argument(std::string(what) + ": honest update " + std::to_string(k) +
                                      " has " + std::to_string(honest[k].size()) +
                                      " values, the output " + std::to_string(out.size()));
    }
  }
  return Status();
}

}  // namespace

Result<Kind> parse_kind(const std::string& kind) {
  for (const KindEntry& e : kKinds) {
    if (kind == e.name) return e.kind;
  }
  return field_error("attack.kind", "unknown '" + kind + "' (known: " + known_kinds() + ")");
}

std::string kind_name(Kind kind) {
  for (const KindEntry& e : kKinds) {
    if (kind == e.kind) return e.name;
  }
  return "unknown";
}

Status check_options(const AttackOptions& options) {
  COHORT_RETURN_IF_ERROR(parse_kind(options.kind).status());
  COHORT_RETURN_IF_ERROR(check_field("attack.fraction", options.fraction, Range::closed(0, 1)));
  std::vector<ClientId> sorted = options.clients;
  std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) {
    return field_error("attack.clients", "client " + std::to_string(*dup) + " listed twice");
  }
  COHORT_RETURN_IF_ERROR(check_field("attack.start", options.start, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("attack.scale", options.scale, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("attack.sigma", options.sigma, Range::above(0)));
  COHORT_RETURN_IF_ERROR(check_field("attack.z", options.z, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("attack.epsilon", options.epsilon, Range::above(0)));
  if (options.free_rider != "zero" && options.free_rider != "noise") {
    return field_error("attack.free_rider",
                       "unknown value '" + options.free_rider + "' (known: zero, noise)");
  }
  return Status();
}

Result<std::vector<ClientId>> choose_attackers(const AttackOptions& options,
                                               const std::vector<ClientId>& ids, uint64_t seed) {
  COHORT_RETURN_IF_ERROR(check_options(options));
  COHORT_ASSIGN_OR_RETURN(const Kind kind, parse_kind(options.kind));
  if (kind == Kind::kNone) return std::vector<ClientId>();
  if (!options.clients.empty()) {
    std::vector<ClientId> population = ids;
    std::sort(population.begin(), population.end());
    for (const ClientId c : options.clients) {
      if (!std::binary_search(population.begin(), population.end(), c)) {
        return field_error("attack.clients",
                           "client " + std::to_string(c) + " is not in the population");
      }
    }
    std::vector<ClientId> out = options.clients;
    std::sort(out.begin(), out.end());
    return out;
  }
  // std::round: halves away from zero (0.5 of 5 clients is 3 of them).
  const auto n = static_cast<uint64_t>(ids.size());
  const auto k =
      std::min(n, static_cast<uint64_t>(std::round(options.fraction * static_cast<double>(n))));
  Rng rng(Rng::mix_seed(seed, "attack"));
  std::vector<ClientId> out;
  out.reserve(k);
  for (const uint64_t i : rng.sample_without_replacement(n, k)) out.push_back(ids[i]);
  std::sort(out.begin(), out.end());
  return out;
}

bool is_local(Kind kind) {
  return kind == Kind::kSignFlip || kind == Kind::kScaling || kind == Kind::kGaussian ||
         kind == Kind::kFreeRider;
}

bool is_colluding(Kind kind) { return kind == Kind::kAlie || kind == Kind::kIpm; }

Status apply_local(const AttackOptions& options, Kind kind, std::span<float> delta, uint64_t seed) {
  switch (kind) {
    case Kind::kSignFlip:
    case Kind::kScaling: {
      COHORT_RETURN_IF_ERROR(check_field("attack.scale", options.scale, Range::at_least(0)));
      const double s = effective_scale(options, kind);
      ops::scale(delta, static_cast<float>(kind == Kind::kSignFlip ? -s : s));
      return Status();
    }
    case Kind::kGaussian: {
      COHORT_RETURN_IF_ERROR(check_field("attack.sigma", options.sigma, Range::above(0)));
      Rng rng(seed);
      for (float& v : delta) v = static_cast<float>(rng.normal(0.0, options.sigma));
      return Status();
    }
    case Kind::kFreeRider: {
      if (options.free_rider == "zero") {
        ops::fill(delta, 0.0f);
        return Status();
      }
      if (options.free_rider != "noise") {
        return field_error("attack.free_rider",
                           "unknown value '" + options.free_rider + "' (known: zero, noise)");
      }
      // A random direction with the norm the honest update would have had.
      const double norm = ops::l2_norm(delta);
      Rng rng(seed);
      for (float& v : delta) v = static_cast<float>(rng.normal());
      const double noise_norm = ops::l2_norm(delta);
      ops::scale(delta, noise_norm > 0.0 ? static_cast<float>(norm / noise_norm) : 0.0f);
      return Status();
    }
    case Kind::kNone:
    case Kind::kLabelFlip:
    case Kind::kAlie:
    case Kind::kIpm:
      break;
  }
  return Status::invalid_argument("attack.kind: '" + kind_name(kind) +
                                  "' is not a per-update attack");
}

Status alie(std::span<const std::span<const float>> honest, double z, std::span<float> out) {
  COHORT_RETURN_IF_ERROR(check_group("alie", honest, out));
  if (!std::isfinite(z)) return Status::invalid_argument("alie: z must be finite");
  const int64_t d = static_cast<int64_t>(out.size());
  const double inv = 1.0 / static_cast<double>(honest.size());
  std::vector<double> mean(static_cast<size_t>(std::min(d, kBlock)));
  std::vector<double> sq(mean.size());
  for (int64_t lo = 0; lo < d; lo += kBlock) {
    const int64_t m = std::min(kBlock, d - lo);
    mean_block(honest, lo, m, mean.data());
    // Two passes (mean, then squared deviations): no cancellation when |mean| >> std.
    std::fill(sq.begin(), sq.begin() + m, 0.0);
    for (const std::span<const float>& h : honest) {
      add_sq_dev_block(h.data() + lo, mean.data(), m, sq.data());
    }
    float* o = out.data() + lo;
    for (int64_t i = 0; i < m; ++i) o[i] = static_cast<float>(mean[i] + z * std::sqrt(sq[i] * inv));
  }
  return Status();
}

Status ipm(std::span<const std::span<const float>> honest, double epsilon, std::span<float> out) {
  COHORT_RETURN_IF_ERROR(check_group("ipm", honest, out));
  if (!std::isfinite(epsilon)) return Status::invalid_argument("ipm: epsilon must be finite");
  const int64_t d = static_cast<int64_t>(out.size());
  std::vector<double> mean(static_cast<size_t>(std::min(d, kBlock)));
  for (int64_t lo = 0; lo < d; lo += kBlock) {
    const int64_t m = std::min(kBlock, d - lo);
    mean_block(honest, lo, m, mean.data());
    float* o = out.data() + lo;
    for (int64_t i = 0; i < m; ++i) o[i] = static_cast<float>(-epsilon * mean[i]);
  }
  return Status();
}

// s = floor(n / 2 + 1) - f honest supporters make a majority with the f attackers, and the
// attackers may go as far as the point that (n - s) of the n updates still lie beyond:
// z = Phi^{-1}((n - s) / n). Clamped where the formula leaves (0, 1):
// - s <= 0 (the attackers are a majority on their own, f >= floor(n / 2) + 1): the formula
//   tends to +infinity; s is clamped to 1, the largest finite shift it gives for this n,
//   Phi^{-1}((n - 1) / n), instead of returning 0, which would turn the attack off exactly when
//   the attackers are strongest.
// - s >= n (only without attackers, n <= 2): 0, no shift. So are n <= 0 and f < 0.
double alie_z(int64_t n, int64_t f) {
  if (n <= 0 || f < 0) return 0.0;
  const int64_t s = std::max<int64_t>(1, n / 2 + 1 - f);
  if (s >= n) return 0.0;
  return inverse_normal_cdf(static_cast<double>(n - s) / static_cast<double>(n));
}

}  // namespace cohort::attack
