// DataConfig: the YAML `data:` section (which dataset, how it is split across clients), its
// rules, and loading the configured dataset. Shared by the simulator's runner, `cohort serve`
// (server-side evaluation) and `cohort join` (one client's shard), so that all three read the
// same examples for the same config and seed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cohort/core/status.h"
#include "cohort/data/dataset.h"
#include "cohort/data/partition.h"
#include "cohort/data/text.h"
#include "cohort/data/synthetic.h"

namespace cohort {

struct DataConfig {
  std::string dataset = "fashion-mnist";  // "fashion-mnist" | "synthetic" | "text"
  // Where the dataset lives; the fashion-mnist default means "the dataset's own default"
  // (text: /usr/share/games/fortunes, Debian's fortunes packages). resolved_path() says which.
  std::string path = "/usr/share/datasets/fashion-mnist";
  // dataset text: a character-level corpus of the files under `path` (cohort/data/text.h).
  TextOptions text;
  int64_t train_limit = 0;  // > 0: keep only the first N training examples
  int64_t test_limit = 0;   // > 0: keep only the first N test examples
  PartitionOptions partition{.kind = "dirichlet"};
  SyntheticOptions synthetic;
  int64_t synthetic_test_examples = 1000;
  // Share of each client's examples held out for federated evaluation, in [0, 1).
  double holdout_fraction = 0.0;

  // InvalidArgument naming the key ("data.alpha: must be > 0, got -1").
  Status validate() const;
  std::string resolved_path() const;
};

// Loads split "train" or "test" of the configured dataset. Synthetic data is seeded from
// `run_seed` (the same for every process of a run). Errors from the loader name the file.
Result<std::shared_ptr<const Dataset>> load_split(const DataConfig& config, std::string_view split,
                                                  uint64_t run_seed);

}  // namespace cohort
