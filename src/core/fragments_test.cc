// Fragments: strided blocks, sizes, the last short block, gather/scatter round trip, and bad
// arguments.
#include "cohort/core/fragments.h"

#include <gtest/gtest.h>

#include <vector>

namespace cohort {
namespace {

TEST(Fragments, StridedBlocksCoverTheVectorOnce) {
  // 10 elements, 3 fragments, blocks of 2: blocks [0,2) [2,4) [4,6) [6,8) [8,10)
  // -> fragment 0: blocks 0, 3; fragment 1: blocks 1, 4; fragment 2: block 2.
  Fragments f = *Fragments::create(10, 3, 2);
  std::vector<std::vector<std::pair<int64_t, int64_t>>> ranges(3);
  for (int64_t p = 0; p < 3; ++p) {
    f.for_each_range(p, [&](int64_t first, int64_t n) { ranges[p].push_back({first, n}); });
  }
  EXPECT_EQ(ranges[0], (std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {6, 2}}));
  EXPECT_EQ(ranges[1], (std::vector<std::pair<int64_t, int64_t>>{{2, 2}, {8, 2}}));
  EXPECT_EQ(ranges[2], (std::vector<std::pair<int64_t, int64_t>>{{4, 2}}));
  EXPECT_EQ(f.size(0), 4);
  EXPECT_EQ(f.size(1), 4);
  EXPECT_EQ(f.size(2), 2);
}

TEST(Fragments, ShortLastBlockAndEmptyFragments) {
  Fragments f = *Fragments::create(7, 4, 3);  // blocks [0,3) [3,6) [6,7)
  EXPECT_EQ(f.size(0), 3);
  EXPECT_EQ(f.size(1), 3);
  EXPECT_EQ(f.size(2), 1);
  EXPECT_EQ(f.size(3), 0);  // more fragments than blocks: some are empty
}

TEST(Fragments, GatherScatterRoundTrip) {
  Fragments f = *Fragments::create(9, 2, 2);
  std::vector<float> full = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> part(static_cast<size_t>(f.size(1)));
  f.gather(1, full, part);
  EXPECT_EQ(part, (std::vector<float>{2, 3, 6, 7}));
  std::vector<float> out(9, -1.0f);
  f.scatter(1, part, out);
  EXPECT_EQ(out, (std::vector<float>{-1, -1, 2, 3, -1, -1, 6, 7, -1}));
}

TEST(Fragments, BadArguments) {
  EXPECT_FALSE(Fragments::create(10, 0, 2).ok());
  EXPECT_FALSE(Fragments::create(10, 2, 0).ok());
  EXPECT_FALSE(Fragments::create(-1, 2, 2).ok());
  EXPECT_NE(Fragments::create(10, 0, 2).error().message().find("count"), std::string::npos);
}

}  // namespace
}  // namespace cohort
