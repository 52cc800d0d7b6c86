// Norm clipping: hand values with a fixed bound and with the median-norm default, weights,
// and errors.
#include <vector>

#include <gtest/gtest.h>

#include "robust/rules.h"
#include "robust/rule_test_util.h"

namespace cohort::robust {
namespace {

using testing::Group;
using testing::inputs_of;
using testing::Vectors;

std::unique_ptr<Rule> make(double max_norm) {
  RuleOptions o;
  o.rule = "norm_clip";
  o.max_norm = max_norm;
  auto r = make_norm_clip(o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

double stat(const Outcome& oc, const std::string& name) {
  for (const auto& [k, v] : oc.stats) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no stat " << name;
  return 0;
}

TEST(NormClipTest, FixedBound) {
  // (3, 4) has norm 5: scaled by 0.2 to (0.6, 0.8); (0, 0.5) is kept.
  Group g{{{3, 4}, {0, 0.5f}}, {1, 1}};
  std::vector<float> out(2);
  Outcome oc;
  ASSERT_TRUE(make(1)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_FLOAT_EQ(out[0], 0.3f);
  EXPECT_FLOAT_EQ(out[1], 0.65f);
  ASSERT_EQ(oc.influence.size(), 2u);
  EXPECT_DOUBLE_EQ(oc.influence[0], 0.2);
  EXPECT_DOUBLE_EQ(oc.influence[1], 1.0);
  EXPECT_EQ(stat(oc, "clip_norm"), 1.0);
}

TEST(NormClipTest, DefaultBoundIsTheMedianNorm) {
  // Norms 1, 2, 10: S = 2, so only (6, 8) is clipped (factor 0.2, to (1.2, 1.6)).
  Group g{{{1, 0}, {0, 2}, {6, 8}}, {1, 1, 1}};
  std::vector<float> out(2);
  Outcome oc;
  ASSERT_TRUE(make(0)->aggregate(g.inputs(), out, &oc).ok());
  EXPECT_FLOAT_EQ(out[0], 2.2f / 3);
  EXPECT_FLOAT_EQ(out[1], 3.6f / 3);
  EXPECT_EQ(stat(oc, "clip_norm"), 2.0);
  EXPECT_DOUBLE_EQ(oc.influence[2], 0.2);
  // Even count: the mean of the two middle norms (1 and 3 -> 2).
  Group h{{{1, 0}, {0, 3}}, {1, 3}};
  ASSERT_TRUE(make(0)->aggregate(h.inputs(), out, &oc).ok());
  EXPECT_EQ(stat(oc, "clip_norm"), 2.0);
  EXPECT_FLOAT_EQ(out[0], 0.25f);
  EXPECT_FLOAT_EQ(out[1], 1.5f);  // (3/4) * (0, 2)
}

TEST(NormClipTest, UnclippedIsTheWeightedMean) {
  Group g{{{1, 2, 3}, {3, 2, 1}}, {1, 3}};
  std::vector<float> out(3);
  ASSERT_TRUE(make(100)->aggregate(g.inputs(), out, nullptr).ok());
  EXPECT_FLOAT_EQ(out[0], 2.5f);
  EXPECT_FLOAT_EQ(out[1], 2.0f);
  EXPECT_FLOAT_EQ(out[2], 1.5f);
}

TEST(NormClipTest, Errors) {
  RuleOptions o;
  o.max_norm = -1;
  auto r = make_norm_clip(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("robust.max_norm"), std::string::npos);
  Group g{{{1, 2}, {1, 2, 3}}, {1, 1}};
  std::vector<float> out(2);
  EXPECT_EQ(make(0)->aggregate(g.inputs(), out, nullptr).code(), StatusCode::kInvalidArgument);
  Group bad_w{{{1, 2}}, {0}};
  EXPECT_EQ(make(0)->aggregate(bad_w.inputs(), out, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make(0)->describe(), "norm_clip(max_norm=0)");
}

}  // namespace
}  // namespace cohort::robust
