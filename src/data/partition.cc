#include "cohort/data/partition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "cohort/core/format.h"
#include "cohort/core/rng.h"
#include "cohort/core/validate.h"

namespace cohort {
namespace {

using Parts = std::vector<std::vector<int64_t>>;

// Draws tried before the best one is topped up to min_size (top_up).
constexpr int kMaxRedraws = 100;

// Cuts `order` into consecutive slices of the given sizes (which sum to order.size()).
Parts slice(const std::vector<int64_t>& order, const std::vector<int64_t>& sizes) {
  Parts parts(sizes.size());
  size_t pos = 0;
  for (size_t c = 0; c < sizes.size(); ++c) {
    parts[c].assign(order.begin() + static_cast<std::ptrdiff_t>(pos),
                    order.begin() + static_cast<std::ptrdiff_t>(pos + sizes[c]));
    pos += static_cast<size_t>(sizes[c]);
  }
  return parts;
}

// cut_j = floor(cumsum(p)_j * n) for j < N-1, as NIID-Bench's
// (np.cumsum(p) * n).astype(int)[:-1]; returns the slice sizes.
std::vector<int64_t> sizes_from_proportions(const std::vector<double>& p, int64_t n) {
  std::vector<int64_t> sizes(p.size(), 0);
  double cum = 0.0;
  int64_t prev = 0;
  for (size_t j = 0; j + 1 < p.size(); ++j) {
    cum += p[j];
    int64_t cut = static_cast<int64_t>(cum * static_cast<double>(n));
    cut = std::clamp(cut, prev, n);
    sizes[j] = cut - prev;
    prev = cut;
  }
  if (!p.empty()) sizes.back() = n - prev;
  return sizes;
}

// The smallest part's size.
int64_t smallest_part(const Parts& parts) {
  int64_t m = std::numeric_limits<int64_t>::max();
  for (const auto& p : parts) m = std::min(m, static_cast<int64_t>(p.size()));
  return parts.empty() ? 0 : m;
}

// Brings every part up to `min_size` by moving examples, one at a time, from the part that
// holds the most (a random one of its examples) to the parts below min_size, in client order.
// REQUIRES: min_size * parts.size() <= the examples in all parts.
void top_up(Parts& parts, int64_t min_size, Rng& rng) {
  std::vector<std::pair<int64_t, size_t>> heap;  // (size, part): the largest on top
  for (size_t j = 0; j < parts.size(); ++j) {
    if (static_cast<int64_t>(parts[j].size()) > min_size) {
      heap.emplace_back(static_cast<int64_t>(parts[j].size()), j);
    }
  }
  std::make_heap(heap.begin(), heap.end());
  for (size_t j = 0; j < parts.size(); ++j) {
    while (static_cast<int64_t>(parts[j].size()) < min_size && !heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      auto [size, donor] = heap.back();
      heap.pop_back();
      std::vector<int64_t>& from = parts[donor];
      const size_t pick = static_cast<size_t>(rng.uniform_int(from.size()));
      parts[j].push_back(from[pick]);
      from[pick] = from.back();
      from.pop_back();
      if (static_cast<int64_t>(from.size()) > min_size) {
        heap.emplace_back(static_cast<int64_t>(from.size()), donor);
        std::push_heap(heap.begin(), heap.end());
      }
    }
  }
}

Result<Parts> partition_iid(int64_t n, int64_t num_clients, const PartitionOptions& o, Rng& rng) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  rng.shuffle(order);

  std::vector<int64_t> sizes(static_cast<size_t>(num_clients));
  if (o.size_skew == 0.0) {
    // np.array_split: the first n % N clients get one extra example.
    for (int64_t c = 0; c < num_clients; ++c) {
      sizes[static_cast<size_t>(c)] = n / num_clients + (c < n % num_clients ? 1 : 0);
    }
    return slice(order, sizes);
  }

  // NIID-Bench "iid-diff-quantity": Dirichlet client sizes, redrawn until every client
  // reaches min_size; after kMaxRedraws the best draw is topped up.
  const std::vector<double> conc(static_cast<size_t>(num_clients), 1.0 / o.size_skew);
  std::vector<int64_t> best;
  for (int attempt = 0; attempt < kMaxRedraws; ++attempt) {
    sizes = sizes_from_proportions(rng.dirichlet(conc), n);
    const int64_t smallest = *std::min_element(sizes.begin(), sizes.end());
    if (smallest >= o.min_size) return slice(order, sizes);
    if (best.empty() || smallest > *std::min_element(best.begin(), best.end())) best = sizes;
  }
  Parts parts = slice(order, best);
  top_up(parts, o.min_size, rng);
  return parts;
}

Result<Parts> partition_dirichlet(std::span<const int32_t> labels, int64_t num_classes,
                                  int64_t num_clients, const PartitionOptions& o, Rng& rng) {
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < n; ++i) by_class[static_cast<size_t>(labels[i])].push_back(i);

  const std::vector<double> conc(static_cast<size_t>(num_clients), o.alpha);
  // "Balance" threshold of NIID-Bench: clients with |idx_batch[j]| >= n / N get no more data.
  const double average = static_cast<double>(n) / static_cast<double>(num_clients);
  Parts parts;
  Parts best;
  int64_t best_smallest = -1;
  for (int attempt = 0; attempt < kMaxRedraws; ++attempt) {
    parts.assign(static_cast<size_t>(num_clients), {});
    for (int64_t k = 0; k < num_classes; ++k) {
      std::vector<int64_t> idx_k = by_class[static_cast<size_t>(k)];
      rng.shuffle(idx_k);
      std::vector<double> p = rng.dirichlet(conc);
      double sum = 0.0;
      for (size_t j = 0; j < p.size(); ++j) {
        if (static_cast<double>(parts[j].size()) >= average) p[j] = 0.0;
        sum += p[j];
      }
      if (!(sum > 0.0)) {
        // The draw put all its mass on clients that are already full (NumPy would divide by
        // zero here). Share the class equally among the clients still below the average.
        sum = 0.0;
        for (size_t j = 0; j < p.size(); ++j) {
          p[j] = static_cast<double>(parts[j].size()) < average ? 1.0 : 0.0;
          sum += p[j];
        }
        if (sum == 0.0) {  // unreachable while a class still has examples; be safe
          std::fill(p.begin(), p.end(), 1.0);
          sum = static_cast<double>(p.size());
        }
      }
      for (double& v : p) v /= sum;
      const std::vector<int64_t> sizes =
          sizes_from_proportions(p, static_cast<int64_t>(idx_k.size()));
      size_t pos = 0;
      for (size_t j = 0; j < sizes.size(); ++j) {
        parts[j].insert(parts[j].end(), idx_k.begin() + static_cast<std::ptrdiff_t>(pos),
                        idx_k.begin() + static_cast<std::ptrdiff_t>(pos + sizes[j]));
        pos += static_cast<size_t>(sizes[j]);
      }
    }
    const int64_t smallest = smallest_part(parts);
    if (smallest >= o.min_size) return parts;
    if (smallest > best_smallest) {
      best_smallest = smallest;
      best = parts;
    }
  }
  // Many clients with few examples each (10,000+ clients): a draw that gives every client
  // min_size practically never comes. The best draw keeps its label skew and its small
  // clients take the few examples they lack from the largest ones.
  top_up(best, o.min_size, rng);
  return best;
}

Result<Parts> partition_shards(std::span<const int32_t> labels, int64_t num_clients,
                               const PartitionOptions& o, Rng& rng) {
  const int64_t n = static_cast<int64_t>(labels.size());
  const int64_t num_shards = num_clients * o.shards_per_client;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return labels[a] < labels[b];
  });

  std::vector<int64_t> shard_ids(static_cast<size_t>(num_shards));
  std::iota(shard_ids.begin(), shard_ids.end(), 0);
  rng.shuffle(shard_ids);

  // Shard s is order[s*n/S, (s+1)*n/S): equal when S divides n, otherwise sizes differ by
  // at most one so that no example is dropped.
  Parts parts(static_cast<size_t>(num_clients));
  for (int64_t c = 0; c < num_clients; ++c) {
    for (int64_t t = 0; t < o.shards_per_client; ++t) {
      const int64_t s = shard_ids[static_cast<size_t>(c * o.shards_per_client + t)];
      const int64_t begin = s * n / num_shards;
      const int64_t end = (s + 1) * n / num_shards;
      auto& part = parts[static_cast<size_t>(c)];
      part.insert(part.end(), order.begin() + begin, order.begin() + end);
    }
  }
  return parts;
}

// Each client draws its own examples, independently of the others (so clients may share
// examples, and there may be more clients than examples): `examples_per_client` distinct ones
// (all of them when there are fewer), uniformly (iid) or, for dirichlet, with per-client class
// proportions q ~ Dir(alpha) (Hsu, Qi, Brown 2019's per-client prior): the count of class k is
// the k-th cut of q over examples_per_client, and that many distinct examples of class k are
// drawn (all of class k when fewer). Client c's draw is seeded by (seed, c) alone.
Parts partition_with_replacement(std::span<const int32_t> labels, int64_t num_classes,
                                 int64_t num_clients, const PartitionOptions& o) {
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<std::vector<int64_t>> by_class;
  if (o.kind == "dirichlet") {
    by_class.resize(static_cast<size_t>(num_classes));
    for (int64_t i = 0; i < n; ++i) by_class[static_cast<size_t>(labels[i])].push_back(i);
  }
  // k distinct draws from pool [0, m): Floyd's algorithm, O(k log k) whatever m.
  auto distinct = [](Rng& rng, int64_t m, int64_t k, std::vector<int64_t>& out) {
    k = std::min(k, m);
    std::vector<int64_t> chosen;
    chosen.reserve(static_cast<size_t>(k));
    for (int64_t j = m - k; j < m; ++j) {
      const auto t = static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(j + 1)));
      auto it = std::lower_bound(chosen.begin(), chosen.end(), t);
      if (it != chosen.end() && *it == t) {
        chosen.insert(std::lower_bound(chosen.begin(), chosen.end(), j), j);
      } else {
        chosen.insert(it, t);
      }
    }
    out = std::move(chosen);
  };
  const std::vector<double> conc(static_cast<size_t>(num_classes), o.alpha);
  Parts parts(static_cast<size_t>(num_clients));
  std::vector<int64_t> picks;
  for (int64_t c = 0; c < num_clients; ++c) {
    Rng rng = Rng::derive(o.seed, "partition_replacement", static_cast<uint64_t>(c));
    std::vector<int64_t>& part = parts[static_cast<size_t>(c)];
    if (o.kind == "iid") {
      distinct(rng, n, o.examples_per_client, part);
      continue;
    }
    const std::vector<int64_t> counts =
        sizes_from_proportions(rng.dirichlet(conc), o.examples_per_client);
    for (size_t k = 0; k < counts.size(); ++k) {
      const std::vector<int64_t>& pool = by_class[k];
      if (counts[k] == 0 || pool.empty()) continue;
      distinct(rng, static_cast<int64_t>(pool.size()), counts[k], picks);
      for (int64_t p : picks) part.push_back(pool[static_cast<size_t>(p)]);
    }
    if (part.empty()) {
      // Every class the draw chose is absent from the data: one uniform example instead.
      part.push_back(static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(n))));
    }
  }
  return parts;
}

}  // namespace

Status PartitionOptions::validate() const {
  if (kind != "iid" && kind != "dirichlet" && kind != "shards" && kind != "natural" &&
      kind != "file") {
    return field_error("data.partition", "unknown kind \"" + kind +
                                             "\" (known: iid, dirichlet, shards, natural, file)");
  }
  if (kind == "file" && file.empty()) {
    return field_error("data.partition_file",
                       "required with data.partition: file (the path of a partition.json)");
  }
  if (kind != "file" && !file.empty()) {
    return field_error("data.partition_file", "is set (" + file + "), but data.partition is " +
                                                  kind + "; set data.partition: file to use it");
  }
  COHORT_RETURN_IF_ERROR(check_field("data.alpha", alpha, Range::above(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("data.shards_per_client", shards_per_client, Range::at_least(1)));
  COHORT_RETURN_IF_ERROR(check_field("data.min_size", min_size, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(check_field("data.size_skew", size_skew, Range::at_least(0)));
  COHORT_RETURN_IF_ERROR(
      check_field("data.examples_per_client", examples_per_client, Range::at_least(0)));
  if (with_replacement) {
    if (kind != "iid" && kind != "dirichlet" && kind != "file") {
      return field_error(
          "data.with_replacement",
          "applies to data.partition iid, dirichlet and file, got partition " + kind);
    }
    if (examples_per_client < 1 && kind != "file") {
      return field_error("data.examples_per_client",
                         "must be >= 1 with data.with_replacement (how many examples each "
                         "client draws), got " +
                             std::to_string(examples_per_client));
    }
    if (size_skew > 0.0) {
      return field_error("data.size_skew",
                         "does not apply with data.with_replacement (every "
                         "client draws data.examples_per_client)");
    }
  }
  return Status();
}

Result<std::vector<std::vector<int64_t>>> partition_dataset(std::span<const int32_t> labels,
                                                            int64_t num_classes,
                                                            int64_t num_clients,
                                                            const PartitionOptions& options,
                                                            std::span<const int32_t> groups,
                                                            int64_t num_groups) {
  const PartitionOptions& o = options;
  if (o.kind == "natural") {
    // Each example stays with its group (source, writer): client k holds groups k, k + N, ...
    if (groups.empty() || num_groups < 1) {
      return field_error("data.partition",
                         "natural needs a dataset whose examples carry their source (data.dataset "
                         "text); this one has none");
    }
    if (num_clients < 1 || num_clients > num_groups) {
      return Status::invalid_argument(
          "clients.count: " + std::to_string(num_clients) + " clients but the natural partition "
          "has " + std::to_string(num_groups) + " sources (at most one client per source; fewer "
          "clients share sources)");
    }
    Parts parts(static_cast<size_t>(num_clients));
    for (size_t i = 0; i < groups.size(); ++i) {
      parts[static_cast<size_t>(groups[i] % num_clients)].push_back(static_cast<int64_t>(i));
    }
    return parts;
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  COHORT_RETURN_IF_ERROR(o.validate());
  if (o.kind == "file") {
    return field_error("data.partition",
                       "file is read by make_client_data (data/shards.h), "
                       "not partition_dataset");
  }
  if (num_clients < 1) {
    return Status::invalid_argument("clients.count: must be >= 1, got " +
                                    std::to_string(num_clients));
  }
  if (num_clients > n && !o.with_replacement) {
    return Status::invalid_argument("clients.count: " + std::to_string(num_clients) +
                                    " clients but only " + std::to_string(n) +
                                    " examples to partition (data.with_replacement: true lets "
                                    "each client draw its own examples)");
  }
  if (num_classes < 1) {
    return Status::invalid_argument("partition: num_classes must be >= 1, got " +
                                    std::to_string(num_classes));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      return Status::invalid_argument("partition: label of example " + std::to_string(i) + " is " +
                                      std::to_string(labels[i]) + ", outside [0, " +
                                      std::to_string(num_classes) + ")");
    }
  }
  // Checked here rather than in validate(): a config may carry a size_skew for an iid
  // partition it switches to with --set data.partition=iid.
  if (o.size_skew > 0.0 && o.kind != "iid") {
    return field_error("data.size_skew", "applies only to data.partition iid, got " +
                                             format_number(o.size_skew) + " with partition " +
                                             o.kind);
  }
  Rng rng = Rng::derive(o.seed, "partition");
  Result<Parts> parts = Status::internal("partition: unreachable");
  if (o.with_replacement) {
    parts = partition_with_replacement(labels, num_classes, num_clients, o);
  } else if (o.kind == "iid") {
    if (o.size_skew > 0.0 && o.min_size > n / num_clients) {  // min_size * N > n, overflow-free
      return Status::resource_exhausted("data.size_skew: " + std::to_string(num_clients) +
                                        " clients x data.min_size=" + std::to_string(o.min_size) +
                                        " exceeds the " + std::to_string(n) + " examples");
    }
    parts = partition_iid(n, num_clients, o, rng);
  } else if (o.kind == "dirichlet") {
    if (o.min_size > n / num_clients) {  // min_size * N > n, overflow-free
      return Status::resource_exhausted("data.partition dirichlet: " + std::to_string(num_clients) +
                                        " clients x data.min_size=" + std::to_string(o.min_size) +
                                        " exceeds the " + std::to_string(n) +
                                        " examples, at any data.alpha (got " +
                                        format_number(o.alpha) + "); lower data.min_size");
    }
    parts = partition_dirichlet(labels, num_classes, num_clients, o, rng);
  } else {
    if (o.shards_per_client > n / num_clients) {
      return Status::invalid_argument("data.shards_per_client: " + std::to_string(num_clients) +
                                      " clients x " + std::to_string(o.shards_per_client) +
                                      " shards does not fit " + std::to_string(n) +
                                      " examples (every shard needs at least one)");
    }
    parts = partition_shards(labels, num_clients, o, rng);
  }
  if (!parts.has_value()) return std::move(parts).error();
  for (auto& p : *parts) std::sort(p.begin(), p.end());
  return std::move(parts).value();
}

}  // namespace cohort
