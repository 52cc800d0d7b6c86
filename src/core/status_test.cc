#include "cohort/core/status.h"

#include <gtest/gtest.h>

namespace cohort {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Status::invalid_argument("value must be > 0, got " + std::to_string(v));
  return v;
}

Status use_macros(int v, int* out) {
  COHORT_ASSIGN_OR_RETURN(int x, parse_positive(v));
  *out = x * 2;
  return Status();
}

TEST(StatusTest, OkIsDefaultAndCheap) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.to_string(), "OK");
  EXPECT_EQ(s.message(), "");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = Status::invalid_argument("data.alpha: must be > 0");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.to_string(), "INVALID_ARGUMENT: data.alpha: must be > 0");
  Status copy = s;
  EXPECT_EQ(copy, s);
  EXPECT_EQ(s.with_context("config.yaml").message(), "config.yaml: data.alpha: must be > 0");
  EXPECT_TRUE(Status().with_context("x").ok());
}

TEST(StatusTest, ResultHoldsValueOrError) {
  Result<int> good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  Result<int> bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  // A Result built from an OK status is an internal error, never a silent empty value.
  Result<int> misuse = Status();
  EXPECT_FALSE(misuse.ok());
  EXPECT_EQ(misuse.error().code(), StatusCode::kInternal);
}

TEST(StatusTest, MacrosPropagate) {
  int out = 0;
  EXPECT_TRUE(use_macros(4, &out).ok());
  EXPECT_EQ(out, 8);
  Status s = use_macros(0, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "value must be > 0, got 0");
}

}  // namespace
}  // namespace cohort
