// Client shards: which training examples each of N clients holds, and which of them it holds
// out for federated evaluation. One function for the simulator (every client) and `cohort
// join` (one client), so a deployment client trains on exactly the examples the same client
// gets in a simulation of N clients with the same config and seed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cohort/core/rng.h"
#include "cohort/core/status.h"
#include "cohort/data/data_config.h"
#include "cohort/data/dataset.h"

namespace cohort {

struct ClientData {
  Shard train;    // what it trains on (sorted indices)
  Shard holdout;  // what it holds out (sorted; empty without holdout_fraction)
  // Every example the client holds: train and holdout merged (sorted).
  std::vector<int64_t> examples() const;
};

// The indices of two sorted shards merged (sorted): a client's training and held-out examples
// together, as it was given them.
std::vector<int64_t> merged_indices(const Shard& a, const Shard& b);

// Partitions `train` over `num_clients` clients with config.partition (seeded from run_seed,
// purpose "partition") and splits each client's examples into training and held-out ones
// (split_holdout, seeded per client). Errors from partition_dataset.
Result<std::vector<ClientData>> make_client_data(std::shared_ptr<const Dataset> train,
                                                 int64_t num_clients, const DataConfig& config,
                                                 uint64_t run_seed);

// make_client_data one client at a time: `visit(i, data)` for i = 0, 1, ... in order, so that
// a caller keeping part of each (the simulator's population of a million clients) never holds
// every client's data twice.
Status visit_client_data(std::shared_ptr<const Dataset> train, int64_t num_clients,
                         const DataConfig& config, uint64_t run_seed,
                         const std::function<void(size_t, ClientData&&)>& visit);

// Client `index`'s data out of `num_clients` (what make_client_data returns at `index`).
// InvalidArgument for an index outside [0, num_clients).
Result<ClientData> client_data(std::shared_ptr<const Dataset> train, int64_t index,
                               int64_t num_clients, const DataConfig& config, uint64_t run_seed);

// Splits one client's examples into training and held-out indices (both sorted): a seeded
// shuffle, the first floor(fraction * n) held out, at least one example kept for training.
void split_holdout(std::vector<int64_t> all, double fraction, Rng rng, std::vector<int64_t>* train,
                   std::vector<int64_t>* holdout);

}  // namespace cohort
