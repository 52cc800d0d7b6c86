#include <gtest/gtest.h>

#include "cohort/codec/codec.h"

namespace cohort::codec {
namespace {

TEST(ChainTest, CanonicalSpecs) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"none", "none"},
      {" int8 ", "int8:256"},
      {"int4:128", "int4:128"},
      {"int2", "int2:256"},
      {"fp16", "fp16"},
      {"bf16 -> zstd", "bf16 -> zstd:3"},
      {"zstd:9", "zstd:9"},
      {"topk:0.01 -> int8 -> zstd", "topk:0.01 -> int8:256 -> zstd:3"},
      {"topk:1000", "topk:1000"},
      {"randk:0.1:noef -> fp16", "randk:0.1:noef -> fp16"},
      {"terngrad", "terngrad:2.5"},
      {"terngrad:0", "terngrad:0"},
      {"kmeans", "kmeans:3"},
      {"fedzip", "topk:0.2 -> kmeans:3 -> zstd:3"},
      {"f32 -> zstd:1", "f32 -> zstd:1"},
  };
  for (const auto& [text, spec] : cases) {
    auto c = Chain::parse(text);
    ASSERT_TRUE(c.ok()) << text << ": " << c.error().to_string();
    EXPECT_EQ((*c)->spec(), spec) << text;
    // The canonical text parses to itself.
    auto again = Chain::parse((*c)->spec());
    ASSERT_TRUE(again.ok()) << spec;
    EXPECT_EQ((*again)->spec(), spec);
  }
  auto list = Chain::parse(std::vector<std::string>{"topk:0.01", "int8", "zstd"});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)->spec(), "topk:0.01 -> int8:256 -> zstd:3");
}

TEST(ChainTest, Properties) {
  auto none = *Chain::parse("none");
  EXPECT_TRUE(none->none());
  EXPECT_TRUE(none->lossless());
  EXPECT_TRUE((*Chain::parse("zstd"))->lossless());
  EXPECT_FALSE((*Chain::parse("int8"))->lossless());
  EXPECT_TRUE((*Chain::parse("topk:0.1"))->error_feedback());
  EXPECT_FALSE((*Chain::parse("topk:0.1:noef"))->error_feedback());
  EXPECT_FALSE((*Chain::parse("int8"))->error_feedback());
  EXPECT_EQ((*Chain::parse("int8:96"))->frame_elems() % 96, 0);
  EXPECT_EQ((*Chain::parse("f32"))->none(), false);
}

TEST(ChainTest, ErrorsNameTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"int3", "unknown codec 'int3'"},
      {"int8 -> topk:0.1", "must come before"},
      {"zstd -> int8", "must come before"},
      {"int8 -> fp16", "more than one a value codec"},
      {"topk:0.1 -> randk:0.1", "more than one a sparsifier"},
      {"none -> zstd", "none cannot be combined"},
      {"topk", "needs a fraction"},
      {"topk:1.5", "fraction must be in (0, 1]"},
      {"topk:0", "count must be an integer"},
      {"topk:0.1:maybe", "ef or noef"},
      {"int8:7", "block size must be an integer in [8, 65536]"},
      {"int8:12", "multiple of 8"},
      {"int8:256:3", "at most 1 argument"},
      {"zstd:30", "level must be an integer in [1, 19]"},
      {"kmeans:1", "k must be an integer in [2, 16]"},
      {"terngrad:-1", "clip factor must be >= 0"},
      {"fedzip -> zstd", "fedzip is a whole chain"},
      {"int8 -> ", "stage 2 is empty"},
      {"topk:abc", "'abc' is not a number"},
  };
  for (const auto& [text, want] : cases) {
    auto c = Chain::parse(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.error().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(c.error().message().find(want), std::string::npos)
        << text << ": " << c.error().message();
    EXPECT_NE(c.error().message().find("compression chain"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace cohort::codec
