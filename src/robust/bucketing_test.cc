// Bucketing: what the inner rule receives (bucket count and sizes, weighted bucket means,
// bucket weights, a seeded permutation, `previous` and the seed), influence mapped back to
// the inputs, the inner check applied to the bucket count, and describe().
#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "rules.h"
#include "rule_test_util.h"

namespace cohort::robust {
namespace {

using testing::Group;
using testing::inputs_of;
using testing::Vectors;

// Records what it is given; outputs its first input; influence of bucket b is b / 10.
struct Seen {
  Vectors vectors;
  std::vector<double> weights;
  std::vector<float> previous;
  uint64_t seed = 0;
};

class RecordingRule final : public Rule {
 public:
  explicit RecordingRule(Seen* seen) : seen_(seen) {}
  std::string describe() const override { return "recording"; }
  Status check(size_t n) const override {
    if (n < 2) return Status::invalid_argument("recording: needs 2, got " + std::to_string(n));
    return Status();
  }
  Status aggregate(const Inputs& in, std::span<float> out, Outcome* outcome) const override {
    seen_->vectors.clear();
    for (auto v : in.vectors) seen_->vectors.emplace_back(v.begin(), v.end());
    seen_->weights = in.weights;
    seen_->previous.assign(in.previous.begin(), in.previous.end());
    seen_->seed = in.seed;
    std::copy(in.vectors[0].begin(), in.vectors[0].end(), out.begin());
    if (outcome != nullptr) {
      outcome->influence.clear();
      for (size_t b = 0; b < in.vectors.size(); ++b) outcome->influence.push_back(0.1 * b);
      outcome->stats = {{"inner", 1}};
    }
    return Status();
  }

 private:
  Seen* seen_;
};

// n one-hot inputs (input i is e_i), so a bucket mean shows its
// members: coordinate i is w_i / (bucket weight) when i is in the bucket, else 0.
TEST(BucketingTest, InnerRuleSeesWeightedBucketMeans) {
  const size_t n = 7;
  Vectors v(n, std::vector<float>(n, 0.0f));
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) {
    v[i][i] = 1.0f;
    w[i] = 1.0 + static_cast<double>(i);
  }
  const std::vector<float> previous(n, 0.5f);
  Inputs in = inputs_of(v, w);
  in.previous = previous;
  in.seed = 42;
  Seen seen;
  auto rule = std::move(make_bucketing(3, std::make_unique<RecordingRule>(&seen))).value();
  std::vector<float> out(n);
  Outcome o;
  ASSERT_TRUE(rule->aggregate(in, out, &o).ok());

  ASSERT_EQ(seen.vectors.size(), 3u);  // ceil(7 / 3)
  EXPECT_EQ(seen.previous, previous);
  EXPECT_EQ(seen.seed, 42u);
  std::vector<size_t> bucket_of(n, 99);
  std::vector<size_t> sizes;
  for (size_t b = 0; b < 3; ++b) {
    double weight = 0;
    size_t size = 0;
    for (size_t i = 0; i < n; ++i) {
      if (seen.vectors[b][i] == 0.0f) continue;
      EXPECT_EQ(bucket_of[i], 99u) << "input " << i << " in two buckets";
      bucket_of[i] = b;
      weight += w[i];
      ++size;
    }
    sizes.push_back(size);
    EXPECT_DOUBLE_EQ(seen.weights[b], weight) << b;
    for (size_t i = 0; i < n; ++i) {
      if (bucket_of[i] == b) {
        EXPECT_FLOAT_EQ(seen.vectors[b][i], static_cast<float>(w[i] / weight));
      }
    }
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 1}));
  for (size_t i = 0; i < n; ++i) {
    ASSERT_NE(bucket_of[i], 99u) << "input " << i << " in no bucket";
    EXPECT_DOUBLE_EQ(o.influence[i], 0.1 * static_cast<double>(bucket_of[i])) << i;
  }
  EXPECT_EQ(out, seen.vectors[0]);
  EXPECT_EQ(o.stats, (std::vector<std::pair<std::string, double>>{{"inner", 1}, {"buckets", 3}}));
}

TEST(BucketingTest, PermutationDependsOnlyOnTheSeed) {
  const size_t n = 12;
  Vectors v(n, std::vector<float>(n, 0.0f));
  for (size_t i = 0; i < n; ++i) v[i][i] = 1.0f;
  Seen seen;
  auto rule = std::move(make_bucketing(2, std::make_unique<RecordingRule>(&seen))).value();
  std::vector<float> out(n);
  auto buckets = [&](uint64_t seed) {
    Inputs in = inputs_of(v);
    in.seed = seed;
    EXPECT_TRUE(rule->aggregate(in, out, nullptr).ok());
    return seen.vectors;
  };
  EXPECT_EQ(buckets(1), buckets(1));
  EXPECT_NE(buckets(1), buckets(2));
}

TEST(BucketingTest, WithMeanIsTheWeightedMean) {
  const Vectors v = {{1, 0}, {2, 10}, {4, -2}, {8, 3}, {16, 5}};
  const std::vector<double> w = {1, 2, 3, 4, 5};
  RuleOptions o;
  o.rule = "mean";
  o.bucketing = 2;
  auto rule = std::move(make_rule(o)).value();
  std::vector<float> out(2);
  ASSERT_TRUE(rule->aggregate(inputs_of(v, w), out, nullptr).ok());
  EXPECT_FLOAT_EQ(out[0], (1 + 4 + 12 + 32 + 80) / 15.0f);
  EXPECT_FLOAT_EQ(out[1], (0 + 20 - 6 + 12 + 25) / 15.0f);
}

TEST(BucketingTest, InnerCheckAppliesToTheBucketCount) {
  RuleOptions o;
  o.rule = "krum";
  o.f = 1;
  o.bucketing = 2;
  auto rule = std::move(make_rule(o)).value();
  EXPECT_EQ(rule->describe(), "bucketing(s=2) -> krum(f=1)");
  EXPECT_TRUE(rule->check(9).ok());  // 5 buckets > 2f + 2
  EXPECT_EQ(rule->check(8).message(),
            "bucketing(s=2) of 8 updates into 4 buckets: krum: needs more than 2f + 2 = 4 updates "
            "per group (robust.f = 1), got 4");
  Vectors v(8, std::vector<float>(3, 1.0f));
  std::vector<float> out(3);
  EXPECT_EQ(rule->aggregate(inputs_of(v), out, nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(BucketingTest, KrumOverBucketsDropsTheOutliersBucket) {
  // Ten inputs near 1, one at 1000; s = 2 gives 6 buckets, f = 1: the outlier's bucket mean is
  // far from the others and never chosen, so the result is near 1.
  Vectors v(11, std::vector<float>(2, 1.0f));
  for (size_t i = 0; i < 10; ++i) v[i][0] += 0.01f * static_cast<float>(i);
  v[10] = {1000.0f, 1000.0f};
  RuleOptions o;
  o.rule = "krum";
  o.bucketing = 2;
  auto rule = std::move(make_rule(o)).value();
  std::vector<float> out(2);
  Outcome oc;
  Inputs in = inputs_of(v);
  in.seed = 3;
  ASSERT_TRUE(rule->aggregate(in, out, &oc).ok());
  EXPECT_LT(std::fabs(out[0] - 1.05f), 0.1f);
  EXPECT_EQ(oc.influence[10], 0.0);
  double kept = 0;
  for (double x : oc.influence) kept += x;
  EXPECT_LE(kept, 2.0);  // one bucket of at most two inputs
  EXPECT_GE(kept, 1.0);
}

TEST(BucketingTest, Errors) {
  EXPECT_EQ(make_bucketing(0, std::make_unique<RecordingRule>(nullptr)).status().message(),
            "robust.bucketing: must be >= 1, got 0");
  EXPECT_EQ(make_bucketing(2, nullptr).status().code(), StatusCode::kInvalidArgument);
  Seen seen;
  auto rule = std::move(make_bucketing(2, std::make_unique<RecordingRule>(&seen))).value();
  std::vector<float> out(2);
  EXPECT_EQ(rule->aggregate(inputs_of({{1, 2}, {3}}), out, nullptr).message(),
            "bucketing: update 1 has 1 values, expected 2");
}

}  // namespace
}  // namespace cohort::robust
