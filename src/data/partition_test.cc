#include "cohort/data/partition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/core/rng.h"

namespace cohort {
namespace {

using ::testing::HasSubstr;
using Parts = std::vector<std::vector<int64_t>>;

// n labels, balanced over k classes, in a shuffled order (like a real training set).
std::vector<int32_t> shuffled_labels(int64_t n, int32_t k, uint64_t seed = 99) {
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = static_cast<int32_t>(i % k);
  Rng r(seed);
  r.shuffle(y);
  return y;
}

// Every index in [0, n) appears in exactly one list, and each list is strictly ascending.
void expect_exact_cover(const Parts& parts, int64_t n) {
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (size_t c = 0; c < parts.size(); ++c) {
    EXPECT_TRUE(std::is_sorted(parts[c].begin(), parts[c].end())) << "client " << c;
    for (int64_t i : parts[c]) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, n);
      seen[static_cast<size_t>(i)]++;
    }
  }
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], 1) << "index " << i;
}

// Mean over clients of the fraction of the client's data in its most common class.
double mean_max_class_fraction(const Parts& parts, const std::vector<int32_t>& y, int k) {
  double total = 0;
  for (const auto& p : parts) {
    std::vector<int64_t> counts(static_cast<size_t>(k), 0);
    for (int64_t i : p) counts[static_cast<size_t>(y[static_cast<size_t>(i)])]++;
    total += static_cast<double>(*std::max_element(counts.begin(), counts.end())) /
             static_cast<double>(p.size());
  }
  return total / static_cast<double>(parts.size());
}

Parts run(const std::vector<int32_t>& y, int64_t k, int64_t clients, const PartitionOptions& o) {
  auto r = partition_dataset(y, k, clients, o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : Parts{};
}

TEST(PartitionIid, EqualSlicesOfAShuffle) {
  const auto y = shuffled_labels(1003, 10);
  PartitionOptions o{.kind = "iid", .seed = 5};
  const Parts parts = run(y, 10, 10, o);
  ASSERT_EQ(parts.size(), 10u);
  expect_exact_cover(parts, 1003);
  for (size_t c = 0; c < 10; ++c) EXPECT_EQ(parts[c].size(), c < 3 ? 101u : 100u) << c;

  // The documented recipe, recomputed: shuffle 0..n-1 with Rng::derive(seed, "partition"),
  // then consecutive slices.
  std::vector<int64_t> order(1003);
  std::iota(order.begin(), order.end(), 0);
  Rng rng = Rng::derive(5, "partition");
  rng.shuffle(order);
  std::vector<int64_t> first(order.begin(), order.begin() + 101);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(parts[0], first);

  // Shuffled, not contiguous: client 0 is not simply 0..100.
  EXPECT_GT(parts[0].back() - parts[0].front(), 500);
}

TEST(PartitionIid, SizeSkewGivesUnequalSizesAboveMinSize) {
  const auto y = shuffled_labels(3000, 10);
  PartitionOptions o{.kind = "iid", .min_size = 20, .size_skew = 2.0, .seed = 3};
  const Parts parts = run(y, 10, 12, o);
  ASSERT_EQ(parts.size(), 12u);
  expect_exact_cover(parts, 3000);
  size_t lo = 3000, hi = 0;
  for (const auto& p : parts) {
    lo = std::min(lo, p.size());
    hi = std::max(hi, p.size());
  }
  EXPECT_GE(lo, 20u);
  EXPECT_GT(hi, 2 * lo);  // Dirichlet(0.5) proportions over 12 clients are far from equal
}

TEST(PartitionDirichlet, CoversAndRespectsMinSize) {
  const auto y = shuffled_labels(6000, 10);
  for (double alpha : {0.1, 0.5, 100.0}) {
    PartitionOptions o{.kind = "dirichlet", .alpha = alpha, .min_size = 40, .seed = 11};
    const Parts parts = run(y, 10, 20, o);
    ASSERT_EQ(parts.size(), 20u);
    expect_exact_cover(parts, 6000);
    for (const auto& p : parts) {
      EXPECT_GE(p.size(), 40u) << "alpha " << alpha;
      // Balance rule: a client stops receiving once it holds >= n/N = 300, so it can overshoot
      // by at most one class (600 examples).
      EXPECT_LT(p.size(), 300u + 600u) << "alpha " << alpha;
    }
  }
}

TEST(PartitionDirichlet, SmallAlphaIsFarMoreSkewedThanLargeAlpha) {
  const auto y = shuffled_labels(6000, 10);
  double skew_small = 0, skew_large = 0;
  const int seeds = 5;
  for (uint64_t seed = 0; seed < seeds; ++seed) {
    PartitionOptions o{.kind = "dirichlet", .alpha = 0.1, .min_size = 10, .seed = seed};
    skew_small += mean_max_class_fraction(run(y, 10, 20, o), y, 10) / seeds;
    o.alpha = 100.0;
    skew_large += mean_max_class_fraction(run(y, 10, 20, o), y, 10) / seeds;
  }
  // IID over 10 balanced classes gives ~0.1 plus sampling noise; Dirichlet(0.1) puts most of
  // a client's data in one or two classes.
  EXPECT_LT(skew_large, 0.2);
  EXPECT_GT(skew_small, 0.5);
  EXPECT_GT(skew_small, 3 * skew_large);
}

TEST(PartitionShards, EachClientGetsWholeShards) {
  // 600 examples, 60 per class, labels interleaved; sorting by label (stable) puts example i
  // at rank label * 60 + i / 10, so shard s (of 30) is rank [30s, 30s + 30).
  std::vector<int32_t> y(600);
  for (int i = 0; i < 600; ++i) y[static_cast<size_t>(i)] = i % 10;
  auto shard_of = [&](int64_t i) {
    return (y[static_cast<size_t>(i)] * 60 + i / 10) / 30;
  };

  PartitionOptions o{.kind = "shards", .shards_per_client = 2, .seed = 8};
  const Parts parts = run(y, 10, 10, o);
  ASSERT_EQ(parts.size(), 10u);
  expect_exact_cover(parts, 600);
  std::set<int64_t> all_shards;
  for (const auto& p : parts) {
    ASSERT_EQ(p.size(), 60u);
    std::map<int64_t, int> shard_counts;
    std::set<int32_t> label_set;
    for (int64_t i : p) {
      shard_counts[shard_of(i)]++;
      label_set.insert(y[static_cast<size_t>(i)]);
    }
    EXPECT_EQ(shard_counts.size(), 2u);
    for (const auto& [s, count] : shard_counts) {
      EXPECT_EQ(count, 30);
      all_shards.insert(s);
    }
    EXPECT_LE(label_set.size(), 2u);
  }
  EXPECT_EQ(all_shards.size(), 20u);

  o.shards_per_client = 3;  // 30 shards of 20: each client 3 shards, at most 3 labels
  for (const auto& p : run(y, 10, 10, o)) {
    std::set<int64_t> shards;
    std::set<int32_t> label_set;
    for (int64_t i : p) {
      shards.insert((y[static_cast<size_t>(i)] * 60 + i / 10) / 20);
      label_set.insert(y[static_cast<size_t>(i)]);
    }
    EXPECT_EQ(p.size(), 60u);
    EXPECT_EQ(shards.size(), 3u);
    EXPECT_LE(label_set.size(), 3u);
  }
}

TEST(PartitionShards, UnevenSizesDropNothing) {
  const auto y = shuffled_labels(605, 7);
  PartitionOptions o{.kind = "shards", .shards_per_client = 3, .seed = 1};
  const Parts parts = run(y, 7, 4, o);
  ASSERT_EQ(parts.size(), 4u);
  expect_exact_cover(parts, 605);
  // 12 shards of 50 or 51 examples.
  for (const auto& p : parts) {
    EXPECT_GE(p.size(), 150u);
    EXPECT_LE(p.size(), 153u);
  }
}

TEST(Partition, DeterministicPerSeed) {
  const auto y = shuffled_labels(2000, 10);
  for (const char* kind : {"iid", "dirichlet", "shards"}) {
    PartitionOptions o{.kind = kind, .seed = 42};
    const Parts a = run(y, 10, 10, o);
    const Parts b = run(y, 10, 10, o);
    EXPECT_EQ(a, b) << kind;
    o.seed = 43;
    const Parts c = run(y, 10, 10, o);
    EXPECT_NE(a, c) << kind;
  }
  PartitionOptions skew{.kind = "iid", .size_skew = 1.0, .seed = 42};
  EXPECT_EQ(run(y, 10, 10, skew), run(y, 10, 10, skew));
}

TEST(Partition, OneClientGetsEverything) {
  const auto y = shuffled_labels(50, 5);
  for (const char* kind : {"iid", "dirichlet", "shards"}) {
    PartitionOptions o{.kind = kind};
    const Parts parts = run(y, 5, 1, o);
    ASSERT_EQ(parts.size(), 1u) << kind;
    expect_exact_cover(parts, 50);
  }
}

void expect_invalid(const std::vector<int32_t>& y, int64_t k, int64_t clients,
                    const PartitionOptions& o, StatusCode code, const std::string& field) {
  auto r = partition_dataset(y, k, clients, o);
  ASSERT_FALSE(r.ok()) << "expected an error naming " << field;
  EXPECT_EQ(r.error().code(), code) << r.error().to_string();
  EXPECT_THAT(r.error().message(), HasSubstr(field));
}

TEST(Partition, BadOptionsNameTheField) {
  const auto y = shuffled_labels(100, 10);
  const StatusCode kInv = StatusCode::kInvalidArgument;
  expect_invalid(y, 10, 5, {.kind = "random"}, kInv, "data.partition");
  expect_invalid(y, 10, 5, {.kind = "random"}, kInv, "\"random\"");
  expect_invalid(y, 10, 0, {.kind = "iid"}, kInv, "clients.count");
  expect_invalid(y, 10, -3, {.kind = "shards"}, kInv, "clients.count");
  expect_invalid(y, 10, 101, {.kind = "iid"}, kInv, "clients.count");
  expect_invalid({}, 10, 1, {.kind = "iid"}, kInv, "clients.count");
  expect_invalid(y, 10, 5, {.kind = "dirichlet", .alpha = 0.0}, kInv, "data.alpha");
  expect_invalid(y, 10, 5, {.kind = "dirichlet", .alpha = -1.0}, kInv, "data.alpha");
  expect_invalid(y, 10, 5, {.kind = "dirichlet", .alpha = std::nan("")}, kInv, "data.alpha");
  expect_invalid(y, 10, 5, {.kind = "dirichlet", .alpha = INFINITY}, kInv, "data.alpha");
  expect_invalid(y, 10, 5, {.kind = "shards", .shards_per_client = 0}, kInv,
                 "data.shards_per_client");
  // 5 clients x 21 shards = 105 shards > 100 examples.
  expect_invalid(y, 10, 5, {.kind = "shards", .shards_per_client = 21}, kInv,
                 "data.shards_per_client");
  expect_invalid(y, 10, 5, {.kind = "iid", .min_size = -1}, kInv, "data.min_size");
  expect_invalid(y, 10, 5, {.kind = "iid", .size_skew = -0.5}, kInv, "data.size_skew");
  expect_invalid(y, 10, 5, {.kind = "dirichlet", .size_skew = 1.0}, kInv, "data.size_skew");
  // Labels must fit num_classes.
  auto bad = y;
  bad[3] = 10;
  expect_invalid(bad, 10, 5, {.kind = "iid"}, kInv, "example 3");
  expect_invalid(y, 0, 5, {.kind = "iid"}, kInv, "num_classes");
}

TEST(Partition, UnsatisfiableMinSizeIsResourceExhausted) {
  const auto y = shuffled_labels(100, 10);
  // Impossible at any alpha: 10 clients x 11 > 100.
  PartitionOptions o{.kind = "dirichlet", .alpha = 0.5, .min_size = 11};
  expect_invalid(y, 10, 10, o, StatusCode::kResourceExhausted, "data.min_size");
  expect_invalid(y, 10, 10, o, StatusCode::kResourceExhausted, "data.alpha");
  // Same rule for iid size skew.
  PartitionOptions s{.kind = "iid", .min_size = 11, .size_skew = 1.0};
  expect_invalid(y, 10, 10, s, StatusCode::kResourceExhausted, "data.min_size");
}

TEST(PartitionDirichlet, MinSizeNeverDrawnIsToppedUp) {
  // Possible in principle (exactly 10 each) but practically never drawn: after the redraws
  // the best draw is topped up, so every client gets exactly 10 and nothing is lost.
  const auto y = shuffled_labels(100, 10);
  PartitionOptions o{.kind = "dirichlet", .alpha = 1.0, .min_size = 10, .seed = 4};
  const Parts parts = run(y, 10, 10, o);
  ASSERT_EQ(parts.size(), 10u);
  expect_exact_cover(parts, 100);
  for (const auto& p : parts) EXPECT_EQ(p.size(), 10u);
  EXPECT_EQ(run(y, 10, 10, o), parts);  // deterministic
  // iid size skew: the same top-up.
  PartitionOptions s{.kind = "iid", .min_size = 10, .size_skew = 1.0, .seed = 4};
  const Parts sized = run(y, 10, 10, s);
  expect_exact_cover(sized, 100);
  for (const auto& p : sized) EXPECT_EQ(p.size(), 10u);
}

TEST(PartitionDirichlet, TenThousandTinyClientsKeepTheSkew) {
  // 10,000 clients over 60,000 examples (6 each on average), alpha 0.1, min_size 3: no draw
  // gives everyone 3, so the best one is topped up. Everyone gets >= 3, every example is
  // placed once, and the label skew of Dirichlet(0.1) survives the top-up.
  const auto y = shuffled_labels(60000, 10);
  PartitionOptions o{.kind = "dirichlet", .alpha = 0.1, .min_size = 3, .seed = 7};
  const Parts parts = run(y, 10, 10000, o);
  ASSERT_EQ(parts.size(), 10000u);
  expect_exact_cover(parts, 60000);
  size_t smallest = 60000;
  for (const auto& p : parts) smallest = std::min(smallest, p.size());
  EXPECT_GE(smallest, 3u);
  EXPECT_GT(mean_max_class_fraction(parts, y, 10), 0.5);  // IID would give ~0.35 at 6 each
}

TEST(PartitionReplacement, MoreClientsThanExamplesEachDrawsItsOwn) {
  const auto y = shuffled_labels(1000, 10);
  PartitionOptions o{.kind = "iid", .with_replacement = true, .examples_per_client = 20, .seed = 5};
  const Parts parts = run(y, 10, 5000, o);  // 5x more clients than examples
  ASSERT_EQ(parts.size(), 5000u);
  std::vector<int64_t> uses(1000, 0);
  for (const auto& p : parts) {
    ASSERT_EQ(p.size(), 20u);
    EXPECT_TRUE(std::adjacent_find(p.begin(), p.end()) == p.end()) << "a client holds a duplicate";
    EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
    for (int64_t i : p) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, 1000);
      ++uses[static_cast<size_t>(i)];
    }
  }
  // Uniform: each example is drawn 5000 * 20 / 1000 = 100 times on average (Binomial, sd ~10).
  const auto [lo, hi] = std::minmax_element(uses.begin(), uses.end());
  EXPECT_GT(*lo, 50);
  EXPECT_LT(*hi, 150);
  // Seeded per client: client 17's draw does not depend on how many clients there are.
  const Parts fewer = run(y, 10, 100, o);
  EXPECT_EQ(fewer[17], parts[17]);
  o.seed = 6;
  EXPECT_NE(run(y, 10, 100, o)[17], parts[17]);
}

TEST(PartitionReplacement, DirichletSkewsEachClientsLabels) {
  const auto y = shuffled_labels(1000, 10);
  PartitionOptions o{.kind = "dirichlet",
                     .alpha = 0.05,
                     .with_replacement = true,
                     .examples_per_client = 30,
                     .seed = 5};
  const Parts skewed = run(y, 10, 2000, o);
  for (const auto& p : skewed) {
    EXPECT_GE(p.size(), 1u);
    EXPECT_LE(p.size(), 30u);
    EXPECT_TRUE(std::adjacent_find(p.begin(), p.end()) == p.end());
  }
  o.alpha = 100.0;
  const Parts even = run(y, 10, 2000, o);
  for (const auto& p : even) EXPECT_EQ(p.size(), 30u);  // 100 of each class: always enough
  EXPECT_GT(mean_max_class_fraction(skewed, y, 10), 0.7);
  EXPECT_LT(mean_max_class_fraction(even, y, 10), 0.3);
}

TEST(PartitionReplacement, OptionsAreChecked) {
  const auto y = shuffled_labels(100, 10);
  const StatusCode kInv = StatusCode::kInvalidArgument;
  expect_invalid(y, 10, 500, {.kind = "iid"}, kInv, "data.with_replacement");
  expect_invalid(y, 10, 5, {.kind = "iid", .with_replacement = true}, kInv,
                 "data.examples_per_client");
  expect_invalid(y, 10, 5, {.kind = "shards", .with_replacement = true, .examples_per_client = 3},
                 kInv, "data.with_replacement");
  expect_invalid(y, 10, 5, {.kind = "file"}, kInv, "data.partition_file");
  expect_invalid(y, 10, 5, {.kind = "iid", .file = "p.json"}, kInv, "data.partition_file");
}

}  // namespace
}  // namespace cohort
