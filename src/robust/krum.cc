// Krum and multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with
// Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017), computed as Flower's
// aggregate_krum (flwr/server/strategy/aggregate.py) does:
//   D[i][j]     squared L2 distance between inputs i and j;
//   score(i)    the sum of the num_closest = max(1, n - f - 2) smallest D[i][j], j != i;
//   Krum        the input of lowest score (ties: the lowest index);
//   multi-Krum  the mean of the m lowest-score inputs (m = robust.m, 0 = n - f), weighted by
//               their weights (Flower weights by example counts too).
// Krum's guarantee needs n > 2f + 2, which check() enforces.
//
// The distances come from the Gram matrix G = V V^T in double (D[i][j] = G_ii + G_jj - 2 G_ij,
// clamped at 0): one pass over the inputs, in parallel over fixed chunks of coordinates whose
// partial Gram matrices are added in chunk order, so the result is identical for any number
// of kernel threads. Influence: 1 for the selected inputs, 0 for the others.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/core/validate.h"
#include "rules.h"

namespace cohort::robust {
namespace {

// Coordinates per parallel chunk (fixed: the partial sums must not depend on the thread
// count) and per tile inside it (all n inputs' tiles stay in L1/L2 while every pair is dotted).
constexpr int64_t kGramChunk = 1 << 15;
constexpr int64_t kGramTile = 512;
// robust.f larger than this is surely a configuration mistake (and 2f + 2 must not overflow).
constexpr int64_t kMaxF = int64_t{1} << 30;

// The upper triangle (j >= i) of the Gram matrix of `v`, row-major n x n.
std::vector<double> gram(const std::vector<std::span<const float>>& v) {
  const size_t n = v.size();
  const auto d = static_cast<int64_t>(v[0].size());
  const int64_t n_chunks = (d + kGramChunk - 1) / kGramChunk;
  std::vector<double> parts(static_cast<size_t>(n_chunks) * n * n, 0.0);
  kernel_pool().parallel_for(0, d, kGramChunk, [&](int64_t lo, int64_t hi) {
    double* g = parts.data() + static_cast<size_t>(lo / kGramChunk) * n * n;
    for (int64_t t = lo; t < hi; t += kGramTile) {
      const int64_t len = std::min(hi, t + kGramTile) - t;
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = i; j < n; ++j) {
          g[i * n + j] += ops::dot_serial(v[i].data() + t, v[j].data() + t, len);
        }
      }
    }
  });
  std::vector<double> g(n * n, 0.0);
  for (int64_t c = 0; c < n_chunks; ++c) {
    const double* p = parts.data() + static_cast<size_t>(c) * n * n;
    for (size_t i = 0; i < n * n; ++i) g[i] += p[i];
  }
  return g;
}

class KrumRule final : public Rule {
 public:
  KrumRule(int64_t f, int64_t m, bool multi) : f_(f), m_(m), multi_(multi) {}

  std::string describe() const override {
    if (!multi_) return "krum(f=" + std::to_string(f_) + ")";
    return "multi_krum(f=" + std::to_string(f_) +
           ", m=" + (m_ == 0 ? std::string("n-f") : std::to_string(m_)) + ")";
  }

  Status check(size_t n) const override {
    const int64_t need = 2 * f_ + 2;
    if (static_cast<int64_t>(n) <= need) {
      return Status::invalid_argument(strformat(
          "%s: needs more than 2f + 2 = %lld updates per group (robust.f = %lld), got %zu", name(),
          static_cast<long long>(need), static_cast<long long>(f_), n));
    }
    if (multi_ && m_ > static_cast<int64_t>(n)) {
      return Status::invalid_argument(
          strformat("%s: robust.m = %lld is more than the %zu updates of the group", name(),
                    static_cast<long long>(m_), n));
    }
    return Status();
  }

  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    COHORT_RETURN_IF_ERROR(check_inputs(name(), in, out));
    const size_t n = in.vectors.size();
    COHORT_RETURN_IF_ERROR(check(n));

    const std::vector<double> g = gram(in.vectors);
    const auto num_closest =
        static_cast<size_t>(std::max<int64_t>(1, static_cast<int64_t>(n) - f_ - 2));
    std::vector<double> score(n, 0.0);
    std::vector<double> row;
    for (size_t i = 0; i < n; ++i) {
      row.clear();
      for (size_t j = 0; j < n; ++j) {
        if (j == i) continue;
        const size_t a = std::min(i, j), b = std::max(i, j);  // one value per pair: D symmetric
        row.push_back(std::max(0.0, g[a * n + a] + g[b * n + b] - 2.0 * g[a * n + b]));
      }
      std::sort(row.begin(), row.end());
      for (size_t c = 0; c < num_closest; ++c) score[i] += row[c];
    }
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return score[a] < score[b];
    });
    const size_t m = !multi_ ? 1 : m_ == 0 ? n - static_cast<size_t>(f_) : static_cast<size_t>(m_);

    if (m == 1) {
      ops::copy(in.vectors[order[0]], out);
    } else {
      double total = 0;
      for (size_t c = 0; c < m; ++c) total += in.weights[order[c]];
      std::vector<const float*> ptrs(m);
      std::vector<float> w(m);
      for (size_t c = 0; c < m; ++c) {
        ptrs[c] = in.vectors[order[c]].data();
        w[c] = static_cast<float>(in.weights[order[c]] / total);
      }
      ops::weighted_sum(ptrs, w, out);
    }
    if (outcome != nullptr) {
      outcome->influence.assign(n, 0.0);
      for (size_t c = 0; c < m; ++c) outcome->influence[order[c]] = 1.0;
      outcome->stats = {{"selected", static_cast<double>(m)},
                        {"first_selected", static_cast<double>(order[0])},
                        {"best_score", score[order[0]]}};
    }
    return Status();
  }

 private:
  const char* name() const { return multi_ ? "multi_krum" : "krum"; }

  int64_t f_;
  int64_t m_;
  bool multi_;
};

}  // namespace

Result<std::unique_ptr<Rule>> make_krum(const RuleOptions& o, bool multi) {
  COHORT_RETURN_IF_ERROR(check_field("robust.f", o.f, Range::at_least(0)));
  if (o.f > kMaxF) {
    return field_error("robust.f",
                       "must be at most " + std::to_string(kMaxF) + ", got " + std::to_string(o.f));
  }
  if (multi) COHORT_RETURN_IF_ERROR(check_field("robust.m", o.m, Range::at_least(0)));
  return std::unique_ptr<Rule>(std::make_unique<KrumRule>(o.f, o.m, multi));
}

}  // namespace cohort::robust
