// Partitioners: how a training set is split across simulated clients (config keys in
// docs/config.md, `data:` section).
//
// Every partitioner is deterministic for a seed and, unless with_replacement, assigns every
// example to exactly one client (no duplicates, nothing dropped).
//   iid        shuffle, then near-equal contiguous slices;
//   dirichlet  label-Dirichlet(alpha) of Hsu, Qi, Brown 2019 (arXiv:1909.06335) as coded in
//              NIID-Bench's "noniid-labeldir" (Li, Diao, Chen, He, ICDE 2022,
//              arXiv:2102.02079), with the balance rule and min_size redraws; when 100 draws
//              leave some client below min_size (many clients with few examples each), the
//              draw whose smallest client is largest is topped up: each client below min_size
//              takes the examples it lacks, one at a time, from the client holding the most
//              (a random example of it), so the draw's label skew is kept;
//   file       read from data.partition_file (data/partition_file.h, via make_client_data);
//   shards     FedAvg's pathological non-IID split (McMahan et al., AISTATS 2017,
//              arXiv:1602.05629): sort by label, cut into
//              num_clients * shards_per_client equal shards, deal shards_per_client to each.
// size_skew > 0 (iid only) makes client sizes follow Dirichlet(1/size_skew) proportions
// instead of equal ones ("iid-diff-quantity"; topped up to min_size like dirichlet).
// with_replacement (iid, dirichlet): each client draws examples_per_client distinct examples
// of its own, independently of the others (seeded per client), so clients may share
// examples and there may be more clients than examples (scaling studies); iid draws
// uniformly, dirichlet first draws the client's class proportions q ~ Dir(alpha) (Hsu et al.'s
// per-client prior) and then that many distinct examples of each class.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cohort/core/status.h"

namespace cohort {

struct PartitionOptions {
  std::string kind = "iid";  // "iid" | "dirichlet" | "shards" | "natural" | "file"
  std::string file;          // kind "file": a partition.json (data/partition_file.h)
  double alpha = 0.5;        // dirichlet concentration; > 0
  int64_t shards_per_client = 2;
  int64_t min_size = 10;   // dirichlet: redraw until every client has >= min_size examples
  double size_skew = 0.0;  // iid: 0 = equal sizes
  // Each client draws examples_per_client examples of its own instead of a disjoint share
  // (iid, dirichlet): clients may share examples and may outnumber them.
  bool with_replacement = false;
  int64_t examples_per_client = 0;  // >= 1 with with_replacement
  uint64_t seed = 0;
  // InvalidArgument naming the key ("data.alpha: must be > 0, got -1"); the rules that need
  // the dataset and the client count are checked by partition_dataset.
  Status validate() const;
};

// Returns one index list per client (indices into `labels`, each list sorted ascending).
// "natural" keeps each example with its group (`groups`, ids in [0, num_groups): a text
// corpus's sources): client k holds the groups g with g mod num_clients == k; InvalidArgument
// without groups or with more clients than groups.
// InvalidArgument for an unknown kind, num_clients < 1, more clients than examples (without
// with_replacement), alpha <= 0, or a shards split that does not fit; ResourceExhausted when
// num_clients x min_size exceeds the examples (dirichlet, iid with size_skew).
Result<std::vector<std::vector<int64_t>>> partition_dataset(std::span<const int32_t> labels,
                                                            int64_t num_classes,
                                                            int64_t num_clients,
                                                            const PartitionOptions& options,
                                                            std::span<const int32_t> groups = {},
                                                            int64_t num_groups = 0);

}  // namespace cohort
