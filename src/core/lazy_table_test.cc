#include "cohort/core/lazy_table.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace cohort {
namespace {

TEST(LazyTableTest, RecordsExistFromTheirFirstUse) {
  LazyTable<std::string> t;
  EXPECT_EQ(t.size(), 0u);
  t.reset(1000000);
  EXPECT_EQ(t.size(), 1000000u);
  EXPECT_EQ(t.created(), 0u);
  EXPECT_EQ(t.find(999999), nullptr);
  int made = 0;
  auto make = [&] {
    ++made;
    return std::string("new");
  };
  std::string& a = t.get(999999, make);
  EXPECT_EQ(a, "new");
  a = "changed";
  t.get(7, make);
  t.get(500, make);
  // A second get returns the same record (its address does not move as others are made).
  EXPECT_EQ(&t.get(999999, make), &a);
  EXPECT_EQ(t.get(999999, make), "changed");
  EXPECT_EQ(made, 3);
  EXPECT_EQ(t.created(), 3u);
  EXPECT_EQ(t.find(999999), &a);
  EXPECT_EQ(t.find(8), nullptr);
  EXPECT_EQ(t.created_positions(), (std::vector<size_t>{7, 500, 999999}));
  t.reset(10);
  EXPECT_EQ(t.size(), 10u);
  EXPECT_EQ(t.created(), 0u);
  EXPECT_EQ(t.find(7), nullptr);
  EXPECT_TRUE(t.created_positions().empty());
  t.reset(0);
  EXPECT_EQ(t.size(), 0u);
}

TEST(LazyTableTest, HoldsMoveOnlyRecords) {
  LazyTable<std::unique_ptr<int>> t;
  t.reset(4);
  t.get(2, [] {
    return std::make_unique<int>(5);
  });
  ASSERT_NE(t.find(2), nullptr);
  EXPECT_EQ(**t.find(2), 5);
}

}  // namespace
}  // namespace cohort
