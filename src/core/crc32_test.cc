// CRC-32 against its standard check value and against zlib's crc32() (an independent
// implementation): whole buffers of every length up to 300 bytes and at unaligned starts,
// pieces continued at every split, large buffers, and combine.
#include "cohort/core/crc32.h"

#include <zlib.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cohort/core/rng.h"

namespace cohort {
namespace {

uint32_t zlib_crc(uint32_t crc, const unsigned char* p, size_t n) {
  return static_cast<uint32_t>(::crc32_z(crc, p, n));
}

std::vector<unsigned char> random_bytes(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<unsigned char> b(n);
  for (auto& x : b) x = static_cast<unsigned char>(rng.next_u64());
  return b;
}

TEST(Crc32Test, StandardCheckValue) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32_of(s.data(), s.size()), 0xCBF43926u);
  EXPECT_EQ(crc32_of(nullptr, 0), 0u);
  EXPECT_EQ(crc32_update(0x12345678u, nullptr, 0), 0x12345678u);  // nothing added
}

TEST(Crc32Test, EqualsZlibForEveryShortLengthAndAlignment) {
  const std::vector<unsigned char> b = random_bytes(320, 7);
  for (size_t start = 0; start < 16; ++start) {
    for (size_t n = 0; n + start <= 300; ++n) {
      ASSERT_EQ(crc32_of(b.data() + start, n), zlib_crc(0, b.data() + start, n))
          << "start " << start << ", length " << n;
    }
  }
}

TEST(Crc32Test, PiecesContinueAndCombine) {
  const std::vector<unsigned char> b = random_bytes(5000, 11);
  const uint32_t whole = zlib_crc(0, b.data(), b.size());
  ASSERT_EQ(crc32_of(b.data(), b.size()), whole);
  for (size_t split = 0; split <= b.size(); split += 37) {
    const uint32_t a = crc32_of(b.data(), split);
    EXPECT_EQ(crc32_update(a, b.data() + split, b.size() - split), whole) << split;
    const uint32_t c = crc32_of(b.data() + split, b.size() - split);
    EXPECT_EQ(crc32_combine(a, c, static_cast<int64_t>(b.size() - split)), whole) << split;
  }
}

TEST(Crc32Test, LargeBuffersEqualZlib) {
  const std::vector<unsigned char> b = random_bytes((9u << 20) + 13, 3);
  EXPECT_EQ(crc32_of(b.data(), b.size()), zlib_crc(0, b.data(), b.size()));
  EXPECT_EQ(crc32_of(b.data() + 5, b.size() - 5), zlib_crc(0, b.data() + 5, b.size() - 5));
}

}  // namespace
}  // namespace cohort
