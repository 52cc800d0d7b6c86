// Synthetic classification tasks: quick, file-free datasets for tests and scaling studies.
#pragma once

#include <cstdint>

#include "cohort/core/status.h"
#include "cohort/data/dataset.h"

namespace cohort {

struct SyntheticOptions {
  int64_t num_examples = 2000;
  int64_t dim = 20;  // features per example; sample_shape {dim}
  int64_t num_classes = 4;
  double separation = 3.0;  // distance scale between class means (larger = easier)
  double noise = 1.0;       // per-feature Gaussian noise stddev
  uint64_t seed = 0;
  // InvalidArgument naming the key ("data.synthetic.classes: must be >= 2, got 1").
  Status validate() const;
};

// Gaussian blobs: class c has a random mean (norm ~ separation) and isotropic noise. Labels
// are balanced. Two calls with the same seed (and different num_examples) share class means,
// so a train and a test set drawn with the same seed but different `split` salt match.
Result<Dataset> make_synthetic(const SyntheticOptions& options, uint64_t split_salt = 0);

}  // namespace cohort
