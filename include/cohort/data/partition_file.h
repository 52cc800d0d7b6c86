// Partition files: each client's example indices, as `cohort simulate --save-partition`
// writes them (DIR/partition.json, docs/formats.md), read back with `data.partition: file`
// so that a run reproduces another run's, another framework's or a paper's exact split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/status.h"

namespace cohort {

// Reads `path`, a JSON object {"clients": [[indices of client 0's examples], ...]}, and
// returns one ascending index list per client. Checks, each error naming the file and the
// client: the file holds exactly `num_clients` clients (when num_clients > 0); every element
// is an integer in [0, num_examples); no client is empty; no client lists an example twice;
// and unless `shared_examples` (data.with_replacement) no two clients list the same example.
// NotFound when the file cannot be read; InvalidArgument for everything else.
Result<std::vector<std::vector<int64_t>>> read_partition_file(const std::string& path,
                                                              int64_t num_examples,
                                                              int64_t num_clients,
                                                              bool shared_examples);

}  // namespace cohort
