// Contribution estimates: leave-one-out differences and Shapley values of a utility U(S).
//
// Shapley value (Shapley, "A Value for n-Person Games", 1953):
//   phi_i = sum over S in N \ {i} of |S|! (n - |S| - 1)! / n! * (U(S + i) - U(S)),
// exact by enumerating all 2^n subsets when 2^n - 2 <= options.evaluations (and n <= 30).
// Otherwise phi_i is estimated as the average marginal U(prefix + i) - U(prefix) of player i
// over random permutations (Castro, Gomez & Tejada, "Polynomial calculation of the Shapley
// value based on sampling", Comput. Oper. Res. 2009), with the truncations of TMC-Shapley
// (Ghorbani & Zou, "Data Shapley: Equitable Valuation of Data for Machine Learning", ICML
// 2019) and GTG-Shapley (Liu et al., "GTG-Shapley: Efficient and Accurate Participant
// Contribution Evaluation in Federated Learning", ACM TIST 2022):
//  - within a permutation: once |U(full) - U(prefix)| < truncation * max(|U(full) - U(empty)|,
//    tiny), the remaining players of that permutation get marginal 0 without evaluations;
//  - between rounds: when |U(full) - U(empty)| < truncation * max(|U(empty)|, tiny) the round
//    changed nothing measurable and every value is 0 (2 evaluations).
// Both apply to the Monte-Carlo estimate only; the exact enumeration ignores `truncation`.
//
// Every subset's utility is cached (key: the bitset of its players), so the budget counts
// distinct subsets. Permutation k is shuffled by Rng::derive(seed, "contribution.shapley", k).
// The walk stops at the first subset that is not cached and would exceed the budget; that last,
// partially walked permutation is discarded (its marginals are not counted, the subsets it
// evaluated stay in `evaluations`), so the values average complete permutations only (a
// truncated permutation is complete). When the cache and truncation make permutations free,
// at most 8 * evaluations (in [64, 65536]) permutations are walked.
#include "cohort/robust/contribution.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cohort/core/format.h"
#include "cohort/core/rng.h"
#include "cohort/core/validate.h"

namespace cohort::robust {
namespace {

// Exact enumeration keeps all 2^n utilities in memory; beyond 2^30 it is never affordable.
constexpr int kMaxExactPlayers = 30;
constexpr int64_t kMaxPermutations = int64_t{1} << 16;
// Floor of the truncation scales, so that U(full) == U(empty) still truncates.
constexpr double kTiny = std::numeric_limits<double>::min();

// A subset of the n players: bit i of word i / 64 is player i.
using Subset = std::vector<uint64_t>;

struct SubsetHash {
  size_t operator()(const Subset& s) const {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (uint64_t w : s) {
      h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      h ^= h >> 31;
      h *= 0xbf58476d1ce4e5b9ull;
    }
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

Subset empty_subset(int n) { return Subset(static_cast<size_t>((n + 63) / 64), 0); }

void add_player(Subset& s, int i) { s[static_cast<size_t>(i >> 6)] |= uint64_t{1} << (i & 63); }

Subset full_subset(int n) {
  Subset s = empty_subset(n);
  for (int i = 0; i < n; ++i) add_player(s, i);
  return s;
}

// Calls the utility and rejects NaN and infinities, which would poison every value.
Result<double> call_utility(const Utility& utility, const std::vector<int>& members) {
  COHORT_ASSIGN_OR_RETURN(const double u, utility(members));
  if (!std::isfinite(u)) {
    return Status::invalid_argument("contribution: the utility of a subset of " +
                                    std::to_string(members.size()) + " players is " +
                                    format_number(u) + " (must be finite)");
  }
  return u;
}

// U with a cache of every subset evaluated; evaluations() counts distinct subsets.
class CachedUtility {
 public:
  CachedUtility(int n, const Utility& utility) : n_(n), utility_(utility) {}

  // The cached U(s), or nullptr.
  const double* find(const Subset& s) const {
    const auto it = cache_.find(s);
    return it == cache_.end() ? nullptr : &it->second;
  }

  Result<double> get(const Subset& s) {
    if (const double* u = find(s)) return *u;
    members_.clear();
    for (int i = 0; i < n_; ++i) {
      if ((s[static_cast<size_t>(i >> 6)] >> (i & 63)) & 1) members_.push_back(i);
    }
    COHORT_ASSIGN_OR_RETURN(const double u, call_utility(utility_, members_));
    cache_.emplace(s, u);
    return u;
  }

  int64_t evaluations() const { return static_cast<int64_t>(cache_.size()); }

 private:
  int n_;
  const Utility& utility_;
  std::vector<int> members_;
  std::unordered_map<Subset, double, SubsetHash> cache_;
};

Status check_players(int n) {
  if (n < 0) {
    return Status::invalid_argument("contribution: the number of players must be >= 0, got " +
                                    std::to_string(n));
  }
  return Status();
}

// Shapley values by enumeration of all 2^n subsets (1 <= n <= kMaxExactPlayers).
Result<ContributionResult> exact_shapley(int n, const Utility& utility) {
  const int64_t count = int64_t{1} << n;
  std::vector<double> u(static_cast<size_t>(count));
  std::vector<int> members;
  members.reserve(static_cast<size_t>(n));
  for (int64_t mask = 0; mask < count; ++mask) {
    members.clear();
    for (int i = 0; i < n; ++i) {
      if ((mask >> i) & 1) members.push_back(i);
    }
    COHORT_ASSIGN_OR_RETURN(u[static_cast<size_t>(mask)], call_utility(utility, members));
  }
  // weight[s] = s! (n - s - 1)! / n! = 1 / (n * C(n - 1, s)); C(n - 1, s) <= C(29, 14) is an
  // integer held exactly in a long double, so every weight is correctly rounded.
  std::vector<long double> weight(static_cast<size_t>(n));
  long double binom = 1.0L;
  for (int s = 0; s < n; ++s) {
    weight[static_cast<size_t>(s)] = 1.0L / (static_cast<long double>(n) * binom);
    binom = binom * static_cast<long double>(n - 1 - s) / static_cast<long double>(s + 1);
  }
  ContributionResult result;
  result.values.assign(static_cast<size_t>(n), 0.0);
  for (int i = 0; i < n; ++i) {
    const int64_t bit = int64_t{1} << i;
    long double sum = 0.0L;
    for (int64_t mask = 0; mask < count; ++mask) {
      if (mask & bit) continue;
      const long double marginal = static_cast<long double>(u[static_cast<size_t>(mask | bit)]) -
                                   static_cast<long double>(u[static_cast<size_t>(mask)]);
      sum += weight[static_cast<size_t>(std::popcount(static_cast<uint64_t>(mask)))] * marginal;
    }
    result.values[static_cast<size_t>(i)] = static_cast<double>(sum);
  }
  result.evaluations = count;
  result.exact = true;
  return result;
}

// Truncated Monte-Carlo permutations (n >= 2), see the top of the file.
Result<ContributionResult> monte_carlo_shapley(int n, const Utility& utility,
                                               const ContributionOptions& options, uint64_t seed) {
  CachedUtility cache(n, utility);
  const Subset empty = empty_subset(n);
  COHORT_ASSIGN_OR_RETURN(const double u_empty, cache.get(empty));
  COHORT_ASSIGN_OR_RETURN(const double u_full, cache.get(full_subset(n)));

  ContributionResult result;
  result.values.assign(static_cast<size_t>(n), 0.0);
  const double gain = u_full - u_empty;
  if (std::abs(gain) < options.truncation * std::max(std::abs(u_empty), kTiny)) {
    result.evaluations = cache.evaluations();  // GTG between-round truncation
    return result;
  }
  const double tolerance = options.truncation * std::max(std::abs(gain), kTiny);
  // Distinct subsets, full and empty included (saturating at int64 max).
  const int64_t budget = std::min(options.evaluations, std::numeric_limits<int64_t>::max() - 2) + 2;
  const int64_t max_permutations =
      std::clamp<int64_t>(options.evaluations, 8, kMaxPermutations / 8) * 8;

  std::vector<long double> sums(static_cast<size_t>(n), 0.0L);
  std::vector<double> marginal(static_cast<size_t>(n));
  std::vector<int> order(static_cast<size_t>(n));
  Subset prefix;
  int64_t counted = 0;
  bool spent = false;
  for (int64_t k = 0; k < max_permutations && !spent; ++k) {
    std::iota(order.begin(), order.end(), 0);
    Rng rng = Rng::derive(seed, "contribution.shapley", static_cast<uint64_t>(k));
    rng.shuffle(order);
    std::fill(marginal.begin(), marginal.end(), 0.0);
    prefix = empty;
    double previous = u_empty;
    for (int j = 0; j < n; ++j) {
      if (std::abs(u_full - previous) < tolerance) break;  // the rest get marginal 0
      const int i = order[static_cast<size_t>(j)];
      add_player(prefix, i);
      double current;
      if (const double* cached = cache.find(prefix)) {
        current = *cached;
      } else if (cache.evaluations() >= budget) {
        spent = true;  // this permutation stays partial: discarded below
        break;
      } else {
        COHORT_ASSIGN_OR_RETURN(current, cache.get(prefix));
      }
      marginal[static_cast<size_t>(i)] = current - previous;
      previous = current;
    }
    if (spent) break;
    for (int i = 0; i < n; ++i) sums[static_cast<size_t>(i)] += marginal[static_cast<size_t>(i)];
    ++counted;
  }
  if (counted > 0) {
    for (int i = 0; i < n; ++i) {
      result.values[static_cast<size_t>(i)] =
          static_cast<double>(sums[static_cast<size_t>(i)] / static_cast<long double>(counted));
    }
  }
  result.evaluations = cache.evaluations();
  result.complete = counted > 0;
  result.permutations = counted;
  return result;
}

}  // namespace

Status check_contribution_options(const ContributionOptions& options) {
  if (options.method != "none" && options.method != "loo" && options.method != "shapley") {
    return field_error("contribution.method", "unknown '" + printable(options.method, 64) +
                                                  "' (known: none, loo, shapley)");
  }
  COHORT_RETURN_IF_ERROR(
      check_field("contribution.evaluations", options.evaluations, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(
      check_field("contribution.truncation", options.truncation, Range::at_least(0)));
  return Status();
}

Result<ContributionResult> leave_one_out(int n, const Utility& utility,
                                         const ContributionOptions& options) {
  COHORT_RETURN_IF_ERROR(check_contribution_options(options));
  COHORT_RETURN_IF_ERROR(check_players(n));
  ContributionResult result;
  result.values.assign(static_cast<size_t>(n), 0.0);
  if (n == 0) {
    result.exact = true;
    return result;
  }
  CachedUtility cache(n, utility);
  COHORT_ASSIGN_OR_RETURN(const double u_full, cache.get(full_subset(n)));
  const int players = static_cast<int>(std::min<int64_t>(n, options.evaluations));
  for (int i = 0; i < players; ++i) {
    Subset rest = empty_subset(n);
    for (int j = 0; j < n; ++j) {
      if (j != i) add_player(rest, j);
    }
    COHORT_ASSIGN_OR_RETURN(const double u_rest, cache.get(rest));
    result.values[static_cast<size_t>(i)] = u_full - u_rest;
  }
  result.evaluations = cache.evaluations();
  result.exact = players == n;
  result.complete = players == n;
  return result;
}

Result<ContributionResult> shapley(int n, const Utility& utility,
                                   const ContributionOptions& options, uint64_t seed) {
  COHORT_RETURN_IF_ERROR(check_contribution_options(options));
  COHORT_RETURN_IF_ERROR(check_players(n));
  if (n == 0) {
    ContributionResult result;
    result.exact = true;
    return result;
  }
  if (n <= kMaxExactPlayers && (int64_t{1} << n) - 2 <= options.evaluations) {
    return exact_shapley(n, utility);
  }
  return monte_carlo_shapley(n, utility, options, seed);
}

}  // namespace cohort::robust
