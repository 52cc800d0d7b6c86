#include "cohort/data/shards.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "cohort/data/partition.h"
#include "cohort/data/partition_file.h"

namespace cohort {

std::vector<int64_t> merged_indices(const Shard& a, const Shard& b) {
  std::vector<int64_t> all;
  all.reserve(a.indices.size() + b.indices.size());
  std::merge(a.indices.begin(), a.indices.end(), b.indices.begin(), b.indices.end(),
             std::back_inserter(all));
  return all;
}

std::vector<int64_t> ClientData::examples() const { return merged_indices(train, holdout); }

void split_holdout(std::vector<int64_t> all, double fraction, Rng rng, std::vector<int64_t>* train,
                   std::vector<int64_t>* holdout) {
  const auto n = static_cast<int64_t>(all.size());
  int64_t k = static_cast<int64_t>(std::floor(fraction * static_cast<double>(n)));
  k = std::clamp<int64_t>(k, 0, std::max<int64_t>(0, n - 1));
  if (k == 0) {
    *train = std::move(all);
    holdout->clear();
    return;
  }
  std::vector<int64_t> shuffled = std::move(all);
  rng.shuffle(shuffled);
  holdout->assign(shuffled.begin(), shuffled.begin() + k);
  train->assign(shuffled.begin() + k, shuffled.end());
  std::sort(holdout->begin(), holdout->end());
  std::sort(train->begin(), train->end());
}

Status visit_client_data(std::shared_ptr<const Dataset> train, int64_t num_clients,
                         const DataConfig& config, uint64_t run_seed,
                         const std::function<void(size_t, ClientData&&)>& visit) {
  if (train == nullptr) return Status::invalid_argument("make_client_data: no dataset");
  PartitionOptions po = config.partition;
  po.seed = Rng::mix_seed(run_seed, "partition");
  std::vector<std::vector<int64_t>> parts;
  if (po.kind == "file") {
    COHORT_RETURN_IF_ERROR(po.validate());
    COHORT_ASSIGN_OR_RETURN(
        parts, read_partition_file(po.file, train->size(), num_clients, po.with_replacement));
  } else {
    COHORT_ASSIGN_OR_RETURN(
        parts, partition_dataset(train->labels, train->num_classes, num_clients, po, train->groups,
                                 static_cast<int64_t>(train->group_names.size())));
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    ClientData c;
    c.train.data = train;
    c.holdout.data = train;
    split_holdout(std::move(parts[i]), config.holdout_fraction,
                  Rng::derive(run_seed, "holdout", static_cast<uint64_t>(i)), &c.train.indices,
                  &c.holdout.indices);
    visit(i, std::move(c));
  }
  return Status();
}

Result<std::vector<ClientData>> make_client_data(std::shared_ptr<const Dataset> train,
                                                 int64_t num_clients, const DataConfig& config,
                                                 uint64_t run_seed) {
  std::vector<ClientData> out;
  COHORT_RETURN_IF_ERROR(visit_client_data(std::move(train), num_clients, config, run_seed,
                                           [&](size_t, ClientData&& c) {
                                             out.push_back(std::move(c));
                                           }));
  return out;
}

Result<ClientData> client_data(std::shared_ptr<const Dataset> train, int64_t index,
                               int64_t num_clients, const DataConfig& config, uint64_t run_seed) {
  if (index < 0 || index >= num_clients) {
    return Status::invalid_argument("client " + std::to_string(index) + " is outside [0, " +
                                    std::to_string(num_clients) + ")");
  }
  COHORT_ASSIGN_OR_RETURN(std::vector<ClientData> all,
                          make_client_data(std::move(train), num_clients, config, run_seed));
  return std::move(all[static_cast<size_t>(index)]);
}

}  // namespace cohort
