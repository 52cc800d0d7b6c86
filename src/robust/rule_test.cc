// make_rule (name and bucketing validation, wrapping), rule_names, the "mean" rule,
// check_inputs' messages and distance_influence.
#include "cohort/robust/rule.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "rules.h"
#include "rule_test_util.h"

namespace cohort::robust {
namespace {

using testing::Group;
using testing::inputs_of;
using testing::Vectors;

std::unique_ptr<Rule> rule_named(const std::string& name) {
  RuleOptions o;
  o.rule = name;
  auto r = make_rule(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

TEST(RuleTest, Names) {
  EXPECT_EQ(rule_names(), (std::vector<std::string>{"mean", "krum", "multi_krum", "median",
                                                    "trimmed_mean", "geometric_median",
                                                    "centered_clipping", "norm_clip", "flag"}));
}

TEST(RuleTest, UnknownRule) {
  RuleOptions o;
  o.rule = "fedavg";
  const Status s = make_rule(o).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "robust.rule: unknown 'fedavg' (known: mean, krum, multi_krum, median, trimmed_mean, "
            "geometric_median, centered_clipping, norm_clip, flag)");
}

TEST(RuleTest, Bucketing) {
  RuleOptions o;
  o.rule = "median";
  o.bucketing = -1;
  EXPECT_EQ(make_rule(o).status().message(), "robust.bucketing: must be >= 0, got -1");
  for (int64_t s : {0, 1}) {
    o.bucketing = s;
    EXPECT_EQ(std::move(make_rule(o)).value()->describe(), "median") << s;
  }
  o.bucketing = 3;
  EXPECT_EQ(std::move(make_rule(o)).value()->describe(), "bucketing(s=3) -> median");
}

TEST(RuleTest, Describe) {
  EXPECT_EQ(rule_named("mean")->describe(), "mean");
  EXPECT_EQ(rule_named("krum")->describe(), "krum(f=1)");
  EXPECT_EQ(rule_named("multi_krum")->describe(), "multi_krum(f=1, m=n-f)");
  EXPECT_EQ(rule_named("median")->describe(), "median");
  EXPECT_EQ(rule_named("trimmed_mean")->describe(), "trimmed_mean(beta=0.1)");
}

TEST(RuleTest, MeanIsWeighted) {
  // (1 * {1, 2} + 3 * {4, 8}) / 4 = {3.25, 6.5}
  std::vector<float> out(2);
  Outcome o;
  ASSERT_TRUE(rule_named("mean")->aggregate(inputs_of({{1, 2}, {4, 8}}, {1, 3}), out, &o).ok());
  EXPECT_FLOAT_EQ(out[0], 3.25f);
  EXPECT_FLOAT_EQ(out[1], 6.5f);
  EXPECT_EQ(o.influence, (std::vector<double>{1, 1}));
  // A single input comes back unchanged.
  ASSERT_TRUE(rule_named("mean")->aggregate(inputs_of({{0.1f, -7}}, {9}), out, &o).ok());
  EXPECT_EQ(out, (std::vector<float>{0.1f, -7}));
}

TEST(RuleTest, CheckInputsMessages) {
  std::vector<float> out(2);
  EXPECT_TRUE(check_inputs("r", inputs_of({{1, 2}, {3, 4}}), out).ok());
  EXPECT_EQ(check_inputs("r", Inputs{}, out).message(), "r: no updates to aggregate");
  std::vector<float> empty;
  EXPECT_EQ(check_inputs("r", inputs_of({{}}), empty).message(),
            "r: updates must have at least one value");
  EXPECT_EQ(check_inputs("r", inputs_of({{1, 2}, {3}}), out).message(),
            "r: update 1 has 1 values, expected 2");
  Inputs in = inputs_of({{1, 2}, {3, 4}});
  in.weights = {1};
  EXPECT_EQ(check_inputs("r", in, out).message(), "r: 1 weights for 2 updates");
  in.weights = {1, 0};
  EXPECT_EQ(check_inputs("r", in, out).message(),
            "r: weight of update 1 must be positive and finite, got 0");
  in.weights = {std::numeric_limits<double>::infinity(), 1};
  EXPECT_EQ(check_inputs("r", in, out).code(), StatusCode::kInvalidArgument);
  in.weights = {std::nan(""), 1};
  EXPECT_EQ(check_inputs("r", in, out).code(), StatusCode::kInvalidArgument);
  in.weights = {1, 1};
  const std::vector<float> prev(3);
  in.previous = prev;
  EXPECT_EQ(check_inputs("r", in, out).message(), "r: previous aggregate has 3 values, expected 2");
  const std::vector<float> prev2(2);
  in.previous = prev2;
  EXPECT_TRUE(check_inputs("r", in, out).ok());
  EXPECT_EQ(rule_named("mean")->aggregate(in, std::span<float>(out.data(), 1), nullptr).message(),
            "mean: update 0 has 2 values, expected 1");
}

TEST(RuleTest, DistanceInfluence) {
  // Distances to the origin 1, 2, 4 (and 0): median distance 2 (odd), or (1 + 2) / 2 (even).
  const std::vector<float> agg = {0, 0};
  EXPECT_EQ(distance_influence(inputs_of({{1, 0}, {0, 2}, {0, -4}}), agg),
            (std::vector<double>{1.0, 1.0, 0.5}));
  EXPECT_EQ(distance_influence(inputs_of({{0, 0}, {1, 0}, {0, 2}, {0, -4}}), agg),
            (std::vector<double>{1.0, 1.0, 0.75, 0.375}));
}

}  // namespace
}  // namespace cohort::robust
