// The Flag Aggregator (Almasi, Mishra, Vamanan, Ravi, "Flag Aggregator: Scalable Distributed
// Training under Failures and Augmented Losses using Convex Optimization", arXiv:2302.05865;
// reference code hamidralmasi/FlagAggregator, aggregators/flag.py and
// center_algorithms_torch.py): the inputs' directions x_i = g_i / |g_i| are summarised by the
// r-dimensional subspace Y (d x r, orthonormal) minimising the flag-median objective
//   sum_i a_i sin(x_i, Y) = sum_i a_i sqrt(1 - |Y^T x_i|^2),
// found by FlagIRLS: Y starts at a seeded random Gaussian d x r matrix, orthonormalised; each
// iteration weights x_i by (|1 - |Y^T x_i|^2| + 1e-7)^(-1/4) (and, when lambda > 0, adds the
// pairwise differences x_i - x_j weighted (|1 - |Y^T (x_i - x_j)|^2| + 1e-7)^(-1/4) *
// lambda / (p (p - 1)), both orders, as the reference does), and takes as the new Y the first r
// left singular vectors of the weighted columns (a weighted flag mean). It stops after
// `flag_iterations`, or as soon as the objective stops decreasing, keeping the better Y. As in
// the reference, the "1" is min(r, 1): each x_i spans one dimension.
//
// Choices that differ from the reference:
//  - Scale. The reference returns (1/r) sum_i Y Y^T x_i, an average of unit vectors' projections.
//    We return median_i(|g_i|) * sum_i a'_i Y Y^T x_i, so the aggregate has an update's scale
//    (the median norm is what a Byzantine minority cannot inflate).
//  - Weights. Inputs::weights enter as a_i = p w_i / sum w (1 for equal weights, so the
//    reference's unweighted rule is the special case): x_i's column is scaled by sqrt(a_i), a pair
//    (i, j)'s by sqrt(a_i a_j), the objective is weighted by a_i, and the output averages with
//    a'_i = w_i / sum w. The median norm is unweighted.
//  - Randomness: Y's initial Gaussian entries come from Rng::derive(seed, "flag", chunk, column)
//    per ops::kChunk block of rows (reproducible and independent of the thread count).
//  - Zero inputs are x_i = 0 (the reference's F.normalize does the same): influence 0.
//
// Computation. Every column (the x_i, their differences, Y's) lies in the span of
// E = [g_1 .. g_p, z_1 .. z_r] (the inputs and the random initial matrix), so the whole IRLS runs
// on coefficient vectors over E after one pass over d computes the Gram matrix K = E^T E (double,
// chunk-ordered sums). With the weighted columns C = X S (X = the unit inputs), C C^T = X W X^T
// for the p x p matrix W = S S^T; with W = L L^T (Cholesky) the left singular vectors of C are
// those of X L, obtained from the p x p Gram L^T K_x L by a Jacobi eigendecomposition:
// u_k = X L v_k / sqrt(lambda_k). A second pass over d writes the output as a combination of E.
// Influence: the reconstruction ratio x_i^T Y Y^T x_i in [0, 1].
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/core/rng.h"
#include "robust/rules.h"

namespace cohort::robust {
namespace {

// The reference's perturbation of the IRLS weights and its convergence threshold.
constexpr double kWeightEps = 1e-7;
constexpr double kObjectiveEps = 1e-10;
// Directions whose squared singular value is below this fraction of the largest are dropped
// (Y then has fewer than r columns: the data spans fewer dimensions).
constexpr double kRankTol = 1e-10;

// A small dense row-major matrix of doubles.
struct Mat {
  size_t rows = 0, cols = 0;
  std::vector<double> v;
  Mat() = default;
  Mat(size_t r, size_t c) : rows(r), cols(c), v(r * c, 0.0) {}
  double& operator()(size_t i, size_t j) { return v[i * cols + j]; }
  double operator()(size_t i, size_t j) const { return v[i * cols + j]; }
};

// a * b
Mat mul(const Mat& a, const Mat& b) {
  Mat c(a.rows, b.cols);
  for (size_t i = 0; i < a.rows; ++i) {
    for (size_t k = 0; k < a.cols; ++k) {
      const double x = a(i, k);
      if (x == 0) continue;
      for (size_t j = 0; j < b.cols; ++j) c(i, j) += x * b(k, j);
    }
  }
  return c;
}

// a^T * b
Mat tmul(const Mat& a, const Mat& b) {
  Mat c(a.cols, b.cols);
  for (size_t k = 0; k < a.rows; ++k) {
    for (size_t i = 0; i < a.cols; ++i) {
      const double x = a(k, i);
      if (x == 0) continue;
      for (size_t j = 0; j < b.cols; ++j) c(i, j) += x * b(k, j);
    }
  }
  return c;
}

// Eigendecomposition of the symmetric matrix `a` by cyclic Jacobi rotations: `values` in
// decreasing order, eigenvector k in column k of `vectors`.
void sym_eigen(Mat a, std::vector<double>* values, Mat* vectors) {
  const size_t n = a.rows;
  Mat v(n, n);
  for (size_t i = 0; i < n; ++i) v(i, i) = 1.0;
  double total = 0;
  for (double x : a.v) total += x * x;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (size_t p = 0; p < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) off += a(p, q) * a(p, q);
    }
    if (off <= 1e-30 * total || off == 0) break;
    for (size_t p = 0; p < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) {
        const double apq = a(p, q);
        if (apq == 0) continue;
        const double theta = (a(q, q) - a(p, p)) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::hypot(theta, 1.0));
        const double c = 1 / std::sqrt(t * t + 1);
        const double s = t * c;
        for (size_t k = 0; k < n; ++k) {  // A <- A J
          const double akp = a(k, p), akq = a(k, q);
          a(k, p) = c * akp - s * akq;
          a(k, q) = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {  // A <- J^T A
          const double apk = a(p, k), aqk = a(q, k);
          a(p, k) = c * apk - s * aqk;
          a(q, k) = s * apk + c * aqk;
        }
        a(p, q) = a(q, p) = 0;
        for (size_t k = 0; k < n; ++k) {  // V <- V J
          const double vkp = v(k, p), vkq = v(k, q);
          v(k, p) = c * vkp - s * vkq;
          v(k, q) = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return a(x, x) > a(y, y);
  });
  values->resize(n);
  *vectors = Mat(n, n);
  for (size_t k = 0; k < n; ++k) {
    (*values)[k] = a(order[k], order[k]);
    for (size_t i = 0; i < n; ++i) (*vectors)(i, k) = v(i, order[k]);
  }
}

// For the Gram matrix g = C^T C of some columns C: B with C B = the first (at most r) left
// singular vectors of C, b_k = v_k / sqrt(lambda_k). Directions with lambda_k <= kRankTol *
// lambda_1 are left out, so B may have fewer than r columns (none when C = 0).
Mat top_left_singular(const Mat& g, size_t r) {
  std::vector<double> lambda;
  Mat v;
  sym_eigen(g, &lambda, &v);
  size_t k = 0;
  while (k < std::min(r, lambda.size()) && lambda[k] > 0 && lambda[k] > kRankTol * lambda[0]) ++k;
  Mat b(g.rows, k);
  for (size_t j = 0; j < k; ++j) {
    const double inv = 1 / std::sqrt(lambda[j]);
    for (size_t i = 0; i < g.rows; ++i) b(i, j) = v(i, j) * inv;
  }
  return b;
}

// Lower-triangular L with L L^T = w (symmetric positive definite by construction; a pivot lost
// to rounding is clamped to a tiny positive value).
Mat cholesky(const Mat& w) {
  const size_t n = w.rows;
  Mat l(n, n);
  for (size_t j = 0; j < n; ++j) {
    double s = w(j, j);
    for (size_t k = 0; k < j; ++k) s -= l(j, k) * l(j, k);
    const double pivot = std::sqrt(std::max(s, 1e-300));
    l(j, j) = pivot;
    for (size_t i = j + 1; i < n; ++i) {
      double t = w(i, j);
      for (size_t k = 0; k < j; ++k) t -= l(i, k) * l(j, k);
      l(i, j) = t / pivot;
    }
  }
  return l;
}

// Writes the initial random matrix's rows [lo, hi) (lo a multiple of ops::kChunk, hi - lo at
// most one chunk) into z (r rows of hi - lo floats).
void random_rows(uint64_t seed, size_t r, int64_t lo, int64_t hi, float* z) {
  const auto chunk = static_cast<uint64_t>(lo / ops::kChunk);
  const int64_t m = hi - lo;
  for (size_t k = 0; k < r; ++k) {
    Rng rng = Rng::derive(seed, "flag", chunk, k);
    float* zk = z + static_cast<int64_t>(k) * m;
    for (int64_t j = 0; j < m; ++j) zk[j] = static_cast<float>(rng.normal());
  }
}

// K = E^T E for E = [inputs, random columns]: per chunk of ops::kChunk rows, pairwise dots over
// blocks, summed in block then chunk order (independent of the thread count).
Mat gram(const Inputs& in, size_t r, uint64_t seed, int64_t d) {
  const size_t p = in.vectors.size();
  const size_t m = p + r;
  const size_t tri = m * (m + 1) / 2;
  const int64_t chunks = (d + ops::kChunk - 1) / ops::kChunk;
  // Chunks are processed in batches that bound the memory of the partial sums (to 32 MB, or one
  // chunk per kernel thread); the batch size never changes the order of the additions.
  const int64_t batch = std::max(static_cast<int64_t>(kernel_threads()),
                                 static_cast<int64_t>((size_t{1} << 22) / tri));
  std::vector<double> sum(tri, 0.0);
  std::vector<double> parts;
  for (int64_t c0 = 0; c0 < chunks; c0 += batch) {
    const int64_t c1 = std::min(chunks, c0 + batch);
    parts.assign(static_cast<size_t>(c1 - c0) * tri, 0.0);
    kernel_pool().parallel_for(
        c0 * ops::kChunk, std::min(d, c1 * ops::kChunk), ops::kChunk, [&](int64_t lo, int64_t hi) {
          constexpr int64_t kBlock = 4096;
          std::vector<float> z(r * static_cast<size_t>(hi - lo));
          random_rows(seed, r, lo, hi, z.data());
          std::vector<const float*> col(m);
          double* part = parts.data() + static_cast<size_t>(lo / ops::kChunk - c0) * tri;
          for (int64_t b = lo; b < hi; b += kBlock) {
            const auto len = static_cast<size_t>(std::min(kBlock, hi - b));
            for (size_t i = 0; i < p; ++i) col[i] = in.vectors[i].data() + b;
            for (size_t k = 0; k < r; ++k) col[p + k] = z.data() + k * (hi - lo) + (b - lo);
            size_t idx = 0;
            for (size_t i = 0; i < m; ++i) {
              for (size_t j = 0; j <= i; ++j) {
                part[idx++] += ops::dot({col[i], len}, {col[j], len});
              }
            }
          }
        });
    for (int64_t c = 0; c < c1 - c0; ++c) {
      for (size_t t = 0; t < tri; ++t) sum[t] += parts[static_cast<size_t>(c) * tri + t];
    }
  }
  Mat k(m, m);
  size_t idx = 0;
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j <= i; ++j) k(i, j) = k(j, i) = sum[idx++];
  }
  return k;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

class Flag final : public Rule {
 public:
  explicit Flag(const RuleOptions& o)
      : r_(o.flag_r), lambda_(o.flag_lambda), iterations_(o.flag_iterations) {}

  std::string describe() const override {
    return "flag(r=" + std::to_string(r_) + ", lambda=" + format_number(lambda_) +
           ", iterations=" + std::to_string(iterations_) + ")";
  }

  Status check(size_t n) const override {
    if (n == 0) return Status::invalid_argument("flag: needs at least 1 update");
    if (static_cast<uint64_t>(r_) > n) {
      return Status::invalid_argument("flag: robust.flag_r = " + std::to_string(r_) +
                                      " must be at most the number of updates per group, got " +
                                      std::to_string(n));
    }
    return Status();
  }

  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    COHORT_RETURN_IF_ERROR(check_inputs("flag", in, out));
    COHORT_RETURN_IF_ERROR(check(in.vectors.size()));
    const size_t p = in.vectors.size();
    const auto r = static_cast<size_t>(r_);
    const auto d = static_cast<int64_t>(out.size());
    const Mat k = gram(in, r, in.seed, d);

    // Norms, weights and the Gram matrix of the unit inputs.
    std::vector<double> norm(p), a(p), a_out(p);
    double total = 0;
    for (double w : in.weights) total += w;
    for (size_t i = 0; i < p; ++i) {
      norm[i] = std::sqrt(k(i, i));
      a[i] = static_cast<double>(p) * in.weights[i] / total;
      a_out[i] = in.weights[i] / total;
    }
    const auto inv = [&](size_t i) {
      return norm[i] > 0 ? 1 / norm[i] : 0.0;
    };
    Mat kx(p, p);
    for (size_t i = 0; i < p; ++i) {
      for (size_t j = 0; j < p; ++j) kx(i, j) = k(i, j) * inv(i) * inv(j);
    }

    // Y0 = Z B0; its projections P0 = Y0^T X = B0^T (Z^T X).
    Mat kz(r, r), kzx(r, p);
    for (size_t s = 0; s < r; ++s) {
      for (size_t t = 0; t < r; ++t) kz(s, t) = k(p + s, p + t);
      for (size_t i = 0; i < p; ++i) kzx(s, i) = k(p + s, i) * inv(i);
    }
    const Mat b0 = top_left_singular(kz, r);
    Mat proj = tmul(b0, kzx);  // Y^T X, r' x p
    Mat b;                     // Y = X b once an iteration is accepted
    double obj = objective(proj, a, norm);
    int64_t done = 0;
    for (int64_t it = 0; it < iterations_ && obj > kObjectiveEps; ++it) {
      const Mat l = cholesky(weight_matrix(proj, a, norm));
      const Mat nb = mul(l, top_left_singular(tmul(l, mul(kx, l)), r));
      Mat nproj = tmul(nb, kx);
      const double next = objective(nproj, a, norm);
      if (!(next < obj)) break;  // not decreasing: keep the previous Y
      const double gain = obj - next;
      b = nb;
      proj = std::move(nproj);
      obj = next;
      ++done;
      if (gain <= kObjectiveEps) break;
    }

    // out = scale * Y t with t = Y^T (sum_i a'_i x_i), as a combination of E's columns.
    const double scale = median(norm);
    std::vector<double> t(proj.rows, 0.0);
    for (size_t s = 0; s < proj.rows; ++s) {
      for (size_t i = 0; i < p; ++i) t[s] += proj(s, i) * a_out[i];
    }
    std::vector<float> coef_g(p, 0.0f), coef_z(r, 0.0f);
    const Mat& basis = done > 0 ? b : b0;
    for (size_t row = 0; row < basis.rows; ++row) {
      double c = 0;
      for (size_t s = 0; s < basis.cols; ++s) c += basis(row, s) * t[s];
      if (done > 0) {
        coef_g[row] = static_cast<float>(scale * c * inv(row));
      } else {
        coef_z[row] = static_cast<float>(scale * c);
      }
    }
    combine(in, coef_g, coef_z, in.seed, out);

    if (outcome) {
      outcome->influence.assign(p, 0.0);
      for (size_t i = 0; i < p; ++i) {
        double c2 = 0;
        for (size_t s = 0; s < proj.rows; ++s) c2 += proj(s, i) * proj(s, i);
        outcome->influence[i] = norm[i] > 0 ? std::clamp(c2, 0.0, 1.0) : 0.0;
      }
      outcome->stats = {{"iterations", static_cast<double>(done)},
                        {"objective", obj},
                        {"rank", static_cast<double>(proj.rows)},
                        {"scale", scale}};
    }
    return Status();
  }

 private:
  // sum_i a_i sin(x_i, Y) from the projections Y^T X (zero inputs count sin = 1, as there).
  static double objective(const Mat& proj, const std::vector<double>& a,
                          const std::vector<double>& norm) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      double c2 = 0;
      if (norm[i] > 0) {
        for (size_t k = 0; k < proj.rows; ++k) c2 += proj(k, i) * proj(k, i);
      }
      s += a[i] * std::sqrt(std::max(0.0, 1 - c2));
    }
    return s;
  }

  // W = S S^T for the weighted columns C = X S of one FlagIRLS step.
  Mat weight_matrix(const Mat& proj, const std::vector<double>& a,
                    const std::vector<double>& norm) const {
    const size_t p = a.size();
    const auto irls = [](double cos2) {
      return std::pow(std::fabs(1 - cos2) + kWeightEps, -0.25);
    };
    std::vector<double> cos2(p, 0.0);
    for (size_t i = 0; i < p; ++i) {
      if (norm[i] == 0) continue;
      for (size_t k = 0; k < proj.rows; ++k) cos2[i] += proj(k, i) * proj(k, i);
    }
    Mat w(p, p);
    for (size_t i = 0; i < p; ++i) {
      const double wi = irls(cos2[i]);
      w(i, i) = a[i] * wi * wi;
    }
    if (lambda_ > 0 && p > 1) {
      const double pair = lambda_ / static_cast<double>(p * (p - 1));
      for (size_t i = 0; i < p; ++i) {
        for (size_t j = i + 1; j < p; ++j) {
          double c2 = 0;
          for (size_t k = 0; k < proj.rows; ++k) {
            const double e = proj(k, i) - proj(k, j);
            c2 += e * e;
          }
          const double wij = irls(c2) * pair;
          // Columns x_i - x_j and x_j - x_i, each weighted wij * sqrt(a_i a_j).
          const double s = 2 * a[i] * a[j] * wij * wij;
          w(i, i) += s;
          w(j, j) += s;
          w(i, j) -= s;
          w(j, i) -= s;
        }
      }
    }
    return w;
  }

  // out <- sum_i coef_g[i] g_i + sum_k coef_z[k] z_k, chunk by chunk (the z rows regenerated).
  static void combine(const Inputs& in, const std::vector<float>& coef_g,
                      const std::vector<float>& coef_z, uint64_t seed, std::span<float> out) {
    const size_t p = in.vectors.size(), r = coef_z.size();
    const bool any_z = std::any_of(coef_z.begin(), coef_z.end(), [](float c) {
      return c != 0;
    });
    const auto d = static_cast<int64_t>(out.size());
    kernel_pool().parallel_for(0, d, ops::kChunk, [&](int64_t lo, int64_t hi) {
      const auto len = static_cast<size_t>(hi - lo);
      std::vector<const float*> ptrs(p);
      for (size_t i = 0; i < p; ++i) ptrs[i] = in.vectors[i].data() + lo;
      const std::span<float> o = out.subspan(static_cast<size_t>(lo), len);
      ops::weighted_sum(ptrs, coef_g, o);
      if (any_z) {
        std::vector<float> z(r * len);
        random_rows(seed, r, lo, hi, z.data());
        for (size_t k = 0; k < r; ++k) ops::axpy(coef_z[k], {z.data() + k * len, len}, o);
      }
    });
  }

  int64_t r_;
  double lambda_;
  int64_t iterations_;
};

}  // namespace

Result<std::unique_ptr<Rule>> make_flag(const RuleOptions& o) {
  if (o.flag_r < 1) {
    return Status::invalid_argument("robust.flag_r: must be >= 1, got " + std::to_string(o.flag_r));
  }
  if (!(o.flag_lambda >= 0) || !std::isfinite(o.flag_lambda)) {
    return Status::invalid_argument("robust.flag_lambda: must be finite and >= 0, got " +
                                    format_number(o.flag_lambda));
  }
  if (o.flag_iterations < 1) {
    return Status::invalid_argument("robust.flag_iterations: must be >= 1, got " +
                                    std::to_string(o.flag_iterations));
  }
  return std::unique_ptr<Rule>(std::make_unique<Flag>(o));
}

}  // namespace cohort::robust
