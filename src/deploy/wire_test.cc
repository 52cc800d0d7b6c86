// Tests of the chunked streams (deploy/wire.h): for_each_chunk and ChunkAssembler agree, every
// malformed sequence is refused naming what was wrong, and the CRC-32 on the last chunk catches
// a corrupted byte.
#include "deploy/wire.h"

#include <zlib.h>

#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cohort::wire {
namespace {

using ::testing::HasSubstr;

std::vector<pb::TensorChunk> chunks_of(const std::vector<ByteRange>& parts, int64_t chunk_bytes) {
  std::vector<pb::TensorChunk> out;
  for_each_chunk(parts, chunk_bytes, [&](const pb::TensorChunk& c) {
    out.push_back(c);
    return true;
  });
  return out;
}

struct Bytes {
  std::string a, b;
  Bytes() : a(100, '\0'), b(37, '\0') {
    std::iota(a.begin(), a.end(), 'A');
    std::iota(b.begin(), b.end(), 'a');
  }
  std::vector<ByteRange> parts() const {
    return {{a.data(), static_cast<int64_t>(a.size())}, {b.data(), static_cast<int64_t>(b.size())}};
  }
};

Status assemble(const std::vector<pb::TensorChunk>& chunks, std::string* x, std::string* y) {
  x->assign(100, '?');
  y->assign(37, '?');
  ChunkAssembler as("test stream", {{x->data(), 100}, {y->data(), 37}});
  for (const auto& c : chunks) COHORT_RETURN_IF_ERROR(as.add(c));
  return as.finish();
}

TEST(Wire, ChunksRoundTripAcrossBuffersWithCrcOnTheLastChunk) {
  Bytes in;
  for (int64_t step : {1, 7, 64, 100, 1000}) {
    std::vector<pb::TensorChunk> chunks = chunks_of(in.parts(), step);
    for (size_t i = 0; i + 1 < chunks.size(); ++i) EXPECT_FALSE(chunks[i].has_crc32());
    ASSERT_TRUE(chunks.back().has_crc32());
    std::string x, y;
    ASSERT_TRUE(assemble(chunks, &x, &y).ok()) << step;
    EXPECT_EQ(x, in.a);
    EXPECT_EQ(y, in.b);
  }
}

// The zero-copy chunks (what the server's Download sends) parse as the copied ones, for data
// lengths whose varint takes one, two and three bytes, an empty payload and every StreamCrc
// mode; the memory they point into is held until the last buffer is gone.
TEST(Wire, ChunkBuffersParseAsTheCopiedChunks) {
  std::string big(70000, '\0');
  std::iota(big.begin(), big.end(), 'a');
  for (int64_t step : {1, 100, 127, 128, 20000, 16384, 70000}) {
    for (StreamCrc crc : {StreamCrc{}, StreamCrc::given(0xdeadbeef), StreamCrc::omit()}) {
      const std::vector<ByteRange> parts = {{big.data(), 300}, {big.data() + 300, 69700}};
      std::vector<pb::TensorChunk> want;
      for_each_chunk(
          parts, step,
          [&](const pb::TensorChunk& c) {
            want.push_back(c);
            return true;
          },
          crc);
      auto owner = std::make_shared<int>(7);
      std::vector<grpc::ByteBuffer> buffers;
      for_each_chunk_view(
          parts, step,
          [&](const ChunkView& v) {
            buffers.push_back(chunk_buffer(v, owner));
            return true;
          },
          crc);
      ASSERT_EQ(buffers.size(), want.size()) << step;
      EXPECT_EQ(owner.use_count(), 1 + static_cast<long>(buffers.size()));
      for (size_t i = 0; i < buffers.size(); ++i) {
        pb::TensorChunk got;
        ASSERT_TRUE(
            grpc::SerializationTraits<pb::TensorChunk>::Deserialize(&buffers[i], &got).ok());
        EXPECT_EQ(got.SerializeAsString(), want[i].SerializeAsString()) << step << " chunk " << i;
      }
      buffers.clear();
      EXPECT_EQ(owner.use_count(), 1);  // every slice let go of the memory it pointed into
    }
  }
  std::vector<grpc::ByteBuffer> empty;
  for_each_chunk_view({}, 10, [&](const ChunkView& v) {
    empty.push_back(chunk_buffer(v, nullptr));
    return true;
  });
  ASSERT_EQ(empty.size(), 1u);
  pb::TensorChunk got;
  ASSERT_TRUE(grpc::SerializationTraits<pb::TensorChunk>::Deserialize(&empty[0], &got).ok());
  EXPECT_EQ(got.total_bytes(), 0);
  EXPECT_TRUE(got.data().empty());
  EXPECT_TRUE(got.has_crc32() == false);
}

// crc32_of checks 8 MB pieces in parallel and combines them: the same CRC as one serial pass
// over the concatenation, with parts that are empty, tiny, or span several pieces.
TEST(Wire, ParallelCrcOfPartsIsTheSerialCrc) {
  std::string big((int64_t{8} << 20) * 2 + 12345, '\0');
  uint32_t x = 1;
  for (char& c : big) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  const std::vector<ByteRange> parts = {
      {big.data(), 3}, {big.data() + 3, 0}, {big.data() + 3, static_cast<int64_t>(big.size()) - 3}};
  uLong serial = crc32_z(0L, Z_NULL, 0);
  serial = crc32_z(serial, reinterpret_cast<const Bytef*>(big.data()), big.size());
  EXPECT_EQ(crc32_of(parts), static_cast<uint32_t>(serial));
  EXPECT_EQ(crc32_of({}), 0u);
  // And the CRC a stream computes while cutting its chunks agrees.
  std::optional<uint32_t> last;
  for_each_chunk_view(parts, 1 << 20, [&](const ChunkView& v) {
    last = v.crc32;
    return true;
  });
  EXPECT_EQ(last, static_cast<uint32_t>(serial));
}

TEST(Wire, CorruptedByteIsDataLoss) {
  Bytes in;
  std::vector<pb::TensorChunk> chunks = chunks_of(in.parts(), 16);
  std::string* d = chunks[3].mutable_data();
  (*d)[5] = static_cast<char>((*d)[5] ^ 0x10);
  std::string x, y;
  Status s = assemble(chunks, &x, &y);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("CRC-32 mismatch"));
}

TEST(Wire, WithoutCrcTheBytesAreTakenAsSent) {
  Bytes in;
  std::vector<pb::TensorChunk> chunks = chunks_of(in.parts(), 16);
  chunks.back().clear_crc32();
  std::string x, y;
  EXPECT_TRUE(assemble(chunks, &x, &y).ok());
  EXPECT_EQ(y, in.b);
}

TEST(Wire, MalformedSequencesAreRefused) {
  Bytes in;
  const std::vector<pb::TensorChunk> good = chunks_of(in.parts(), 16);
  std::string x, y;
  {
    auto c = good;
    std::swap(c[1], c[2]);
    Status s = assemble(c, &x, &y);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("contiguous and in order"));
  }
  {
    auto c = good;
    c.insert(c.begin() + 2, c[1]);  // a duplicated chunk
    EXPECT_EQ(assemble(c, &x, &y).code(), StatusCode::kInvalidArgument);
  }
  {
    auto c = good;
    c.pop_back();
    Status s = assemble(c, &x, &y);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_THAT(s.message(), HasSubstr("truncated"));
  }
  {
    auto c = good;
    c[0].set_crc32(1);  // a checksum before the end
    Status s = assemble(c, &x, &y);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("not the last chunk"));
  }
  {
    auto c = good;
    c[0].set_total_bytes(1 << 30);
    EXPECT_EQ(assemble(c, &x, &y).code(), StatusCode::kInvalidArgument);
  }
  {
    auto c = good;
    c.back().mutable_data()->append("xx");
    EXPECT_EQ(assemble(c, &x, &y).code(), StatusCode::kResourceExhausted);
  }
}

}  // namespace
}  // namespace cohort::wire
