#include "cohort/data/synthetic.h"

#include <cmath>
#include <sstream>
#include <string>

#include "cohort/core/rng.h"
#include "cohort/core/validate.h"

namespace cohort {
namespace {}  // namespace

Status SyntheticOptions::validate() const {
  COHORT_RETURN_IF_ERROR(
      check_field("data.synthetic.num_examples", num_examples, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("data.synthetic.dim", dim, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("data.synthetic.classes", num_classes, Range::at_least(2)));
  if (num_examples > (int64_t{1} << 31) / dim) {
    return field_error("data.synthetic.num_examples", std::to_string(num_examples) +
                                                          " examples x " + std::to_string(dim) +
                                                          " features exceeds 2^31 values");
  }
  COHORT_RETURN_IF_ERROR(check_field("data.synthetic.separation", separation, Range::at_least(0)));
  return check_field("data.synthetic.noise", noise, Range::at_least(0));
}

Result<Dataset> make_synthetic(const SyntheticOptions& options, uint64_t split_salt) {
  COHORT_RETURN_IF_ERROR(options.validate());
  const int64_t n = options.num_examples;
  const int64_t d = options.dim;
  const int64_t k = options.num_classes;

  // Means come from a stream that depends on the seed alone, so every split (salt) and every
  // num_examples sees the same task. Each coordinate ~ N(0, separation^2 / dim), so
  // E|mean|^2 = separation^2; drawing the norm too (rather than fixing it) keeps classes
  // apart even when dim is 1.
  Rng mean_rng = Rng::derive(options.seed, "synthetic.means");
  const double mean_scale = options.separation / std::sqrt(static_cast<double>(d));
  std::vector<double> means(static_cast<size_t>(k * d));
  for (double& m : means) m = mean_rng.normal(0.0, mean_scale);

  Rng rng = Rng::derive(options.seed, "synthetic.samples", split_salt);
  Dataset ds;
  ds.name = "synthetic";
  ds.sample_shape = {d};
  ds.num_classes = k;
  // Balanced: class counts differ by at most one; shuffled so the order carries no label.
  ds.labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ds.labels[static_cast<size_t>(i)] = static_cast<int32_t>(i % k);
  rng.shuffle(ds.labels);

  ds.features.resize(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    const double* mu = means.data() + ds.labels[static_cast<size_t>(i)] * d;
    float* x = ds.features.data() + i * d;
    for (int64_t j = 0; j < d; ++j) {
      x[j] = static_cast<float>(mu[j] + rng.normal(0.0, options.noise));
    }
  }
  return ds;
}

}  // namespace cohort
