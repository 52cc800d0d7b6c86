#include "cohort/data/synthetic.h"

#include <cmath>
#include <sstream>
#include <string>

#include "cohort/core/rng.h"

namespace cohort {
namespace {

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

Status validate(const SyntheticOptions& o) {
  if (o.num_examples < 1) {
    return Status::invalid_argument("data.synthetic.num_examples: must be >= 1, got " +
                                    std::to_string(o.num_examples));
  }
  if (o.dim < 1) {
    return Status::invalid_argument("data.synthetic.dim: must be >= 1, got " +
                                    std::to_string(o.dim));
  }
  if (o.num_classes < 1) {
    return Status::invalid_argument("data.synthetic.classes: must be >= 1, got " +
                                    std::to_string(o.num_classes));
  }
  if (o.num_examples > (int64_t{1} << 31) / o.dim) {
    return Status::invalid_argument("data.synthetic.num_examples: " +
                                    std::to_string(o.num_examples) + " examples x " +
                                    std::to_string(o.dim) + " features exceeds 2^31 values");
  }
  if (!(o.separation >= 0.0) || !std::isfinite(o.separation)) {
    return Status::invalid_argument("data.synthetic.separation: must be a finite number >= 0, got " +
                                    fmt(o.separation));
  }
  if (!(o.noise >= 0.0) || !std::isfinite(o.noise)) {
    return Status::invalid_argument("data.synthetic.noise: must be a finite number >= 0, got " +
                                    fmt(o.noise));
  }
  return Status();
}

}  // namespace

Result<Dataset> make_synthetic(const SyntheticOptions& options, uint64_t split_salt) {
  COHORT_RETURN_IF_ERROR(validate(options));
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
