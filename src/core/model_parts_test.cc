// model_parts: models found by their "<model>/" prefixes, their ranges, and the errors.
#include "cohort/core/model_parts.h"

#include <gtest/gtest.h>

namespace cohort {
namespace {

std::shared_ptr<const ArrayLayout> layout(std::vector<std::pair<std::string, int64_t>> arrays) {
  std::vector<ArraySpec> specs;
  for (auto& [name, n] : arrays) specs.push_back({.name = name, .shape = {n}});
  return *ArrayLayout::create(std::move(specs));
}

TEST(ModelPartsTest, RangesOfConsecutiveArraysByPrefix) {
  auto l = layout({{"a/w", 6}, {"a/b", 2}, {"bb/w", 3}, {"c/w", 4}, {"c/b", 1}});
  auto parts = model_parts(*l);
  ASSERT_TRUE(parts.ok()) << parts.error().to_string();
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].name, "a");
  EXPECT_EQ((*parts)[0].begin, 0);
  EXPECT_EQ((*parts)[0].end, 8);
  EXPECT_EQ((*parts)[1].name, "bb");
  EXPECT_EQ((*parts)[1].begin, 8);
  EXPECT_EQ((*parts)[1].end, 11);
  EXPECT_EQ((*parts)[2].first_array, 3u);
  EXPECT_EQ((*parts)[2].end_array, 5u);
  EXPECT_EQ((*parts)[2].numel(), 5);
  auto sub = part_layout(*l, (*parts)[2]);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ((*sub)->describe(), "w[4] b[1]");
}

TEST(ModelPartsTest, OneModelHasNoParts) {
  auto parts = model_parts(*layout({{"w", 3}, {"b", 1}}));
  ASSERT_TRUE(parts.ok());
  EXPECT_TRUE(parts->empty());
}

TEST(ModelPartsTest, MixedOrInterleavedNamesAreErrors) {
  auto mixed = model_parts(*layout({{"a/w", 3}, {"b", 1}}));
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.error().message().find("array 'b' names no model"), std::string::npos);
  auto apart = model_parts(*layout({{"a/w", 3}, {"b/w", 1}, {"a/b", 1}}));
  ASSERT_FALSE(apart.ok());
  EXPECT_NE(apart.error().message().find("arrays of model 'a' are not consecutive"),
            std::string::npos);
}

}  // namespace
}  // namespace cohort
