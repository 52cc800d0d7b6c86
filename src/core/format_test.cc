#include "cohort/core/format.h"

#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/core/validate.h"

namespace cohort {
namespace {

TEST(FormatTest, NumbersAreShortestRoundTrip) {
  EXPECT_EQ(format_number(0.0), "0");
  EXPECT_EQ(format_number(100.0), "100");
  EXPECT_EQ(format_number(0.1), "0.1");
  EXPECT_EQ(format_number(-2.5), "-2.5");
  EXPECT_EQ(format_number(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(format_number(1e300), "1e+300");
  EXPECT_EQ(format_number(std::numeric_limits<double>::infinity()), "inf");
}

TEST(FormatTest, Strformat) {
  EXPECT_EQ(strformat("%s=%d (%.2f)", "k", 42, 0.5), "k=42 (0.50)");
  const std::string long_arg(5000, 'x');
  EXPECT_EQ(strformat("<%s>", long_arg.c_str()).size(), 5002u);
}

TEST(FormatTest, PrintableEscapesControlCharactersAndCuts) {
  EXPECT_EQ(printable("fc1.weight"), "fc1.weight");
  EXPECT_EQ(printable("a\nb\tc\\d"), "a\\nb\\tc\\\\d");
  EXPECT_EQ(printable(std::string("x\0y", 3)), "x\\x00y");
  EXPECT_EQ(printable("cohort serve: run over\r"), "cohort serve: run over\\r");
  EXPECT_EQ(printable(std::string(300, 'a'), 10), "aaaaaaaaaa...");
}

TEST(ValidateTest, RangesDescribeThemselves) {
  EXPECT_EQ(Range::above(0).describe(), "> 0");
  EXPECT_EQ(Range::at_least(1).describe(), ">= 1");
  EXPECT_EQ(Range::half_open(0, 1).describe(), "in [0, 1)");
  EXPECT_EQ(Range::closed(0, 1).describe(), "in [0, 1]");
  EXPECT_TRUE(Range::above(0).contains(1e-300));
  EXPECT_FALSE(Range::above(0).contains(0));
  EXPECT_FALSE(Range::at_least(0).contains(std::nan("")));
  EXPECT_FALSE(Range::at_least(0).contains(std::numeric_limits<double>::infinity()));
  EXPECT_TRUE(Range::half_open(0, 1).contains(0));
  EXPECT_FALSE(Range::half_open(0, 1).contains(1));
}

TEST(ValidateTest, FieldErrorsNameTheKeyAndTheValue) {
  EXPECT_TRUE(check_field("training.lr", 0.1, Range::above(0)).ok());
  Status s = check_field("training.lr", 0.0, Range::above(0));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "training.lr: must be > 0, got 0");
  EXPECT_EQ(check_field("run.threads", int64_t{-2}, Range::at_least(0)).message(),
            "run.threads: must be >= 0, got -2");
  EXPECT_EQ(check_field("x.y", std::nan(""), Range::at_least(0)).message(),
            "x.y: must be >= 0, got nan");
}

TEST(ValidateTest, SplitFieldError) {
  auto [path, what] = split_field_error("training.lr: must be > 0, got 0");
  EXPECT_EQ(path, "training.lr");
  EXPECT_EQ(what, "must be > 0, got 0");
  std::tie(path, what) = split_field_error("strategies[1].mu: must be >= 0, got -1");
  EXPECT_EQ(path, "strategies[1].mu");
  std::tie(path, what) = split_field_error("update from client 3: bad shape");
  EXPECT_EQ(path, "");
  EXPECT_EQ(what, "update from client 3: bad shape");
  std::tie(path, what) = split_field_error("no colon here");
  EXPECT_EQ(path, "");
  EXPECT_EQ(what, "no colon here");
}

}  // namespace
}  // namespace cohort
