// The payload format through whole chains: exact round trips, streaming, error feedback,
// determinism across thread counts, and a table of corruptions every chain must refuse.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "codec_test_util.h"
#include "cohort/codec/codec.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"

namespace cohort::codec {
namespace {

using testing::chain;
using testing::normal_vector;
using testing::offsets_of;

// Three arrays, 150,003 elements: several frames, a frame boundary inside an array and
// arrays smaller than a block.
const std::vector<int64_t> kSizes = {100000, 3, 50000};

const std::vector<std::string> kChains = {
    "f32",  "zstd", "f32 -> zstd:1", "fp16", "bf16 -> zstd", "int8", "int4:64", "int2",
    "topk:0.01", "topk:0.1 -> int8 -> zstd", "randk:500 -> fp16", "terngrad", "terngrad:0",
    "kmeans:4", "fedzip", "topk:0.05:noef -> int4"};

std::vector<float> decode_all(const Chain& c, const std::string& payload,
                              const std::vector<int64_t>& offsets) {
  std::vector<float> out(static_cast<size_t>(offsets.back()), -7.0f);
  Status s = c.decode(payload, offsets, out);
  EXPECT_TRUE(s.ok()) << c.spec() << ": " << s.to_string();
  return out;
}

TEST(PayloadTest, LosslessChainsRoundTripBitExactly) {
  const auto offsets = offsets_of(kSizes);
  const std::vector<float> v = normal_vector(offsets.back(), 1);
  for (const char* text : {"f32", "zstd", "f32 -> zstd:1", "zstd:19"}) {
    auto c = chain(text);
    auto p = c->encode(v, offsets, 3);
    ASSERT_TRUE(p.ok()) << text;
    const std::vector<float> out = decode_all(*c, *p, offsets);
    EXPECT_EQ(std::memcmp(out.data(), v.data(), v.size() * 4), 0) << text;
  }
}

TEST(PayloadTest, SizesAreExactForFixedRateChains) {
  const auto offsets = offsets_of(kSizes);
  const std::vector<float> v = normal_vector(offsets.back(), 1);
  const int64_t n = offsets.back();
  auto size_of = [&](const std::string& text) {
    return static_cast<int64_t>((*chain(text)->encode(v, offsets, 1)).size());
  };
  const int64_t f32 = size_of("f32");
  EXPECT_GT(f32, 4 * n);
  EXPECT_LT(f32, 4 * n + 200);  // header + frame headers
  EXPECT_NEAR(static_cast<double>(f32) / size_of("int8"), 4.0 / (1 + 4.0 / 256), 0.01);
  EXPECT_NEAR(static_cast<double>(f32) / size_of("int4"), 4.0 / (0.5 + 4.0 / 256), 0.02);
  EXPECT_NEAR(static_cast<double>(f32) / size_of("fp16"), 2.0, 0.01);
  EXPECT_GT(static_cast<double>(f32) / size_of("topk:0.01 -> int8 -> zstd"), 100.0);
}

TEST(PayloadTest, EveryChainDecodesWithinItsBound) {
  const auto offsets = offsets_of(kSizes);
  const std::vector<float> v = normal_vector(offsets.back(), 2);
  const double norm = ops::l2_norm(v);
  for (const std::string& text : kChains) {
    auto c = chain(text);
    auto p = c->encode(v, offsets, 5);
    ASSERT_TRUE(p.ok()) << text << ": " << p.error().to_string();
    EXPECT_LE(static_cast<int64_t>(p->size()), c->max_payload_bytes(offsets)) << text;
    std::vector<float> out = decode_all(*c, *p, offsets);
    std::vector<float> err(v.size());
    ops::sub(out, v, err);
    const double rel = ops::l2_norm(err) / norm;
    if (c->lossless()) {
      EXPECT_EQ(rel, 0.0) << text;
    } else if (text == "fp16" || text == "bf16 -> zstd") {
      EXPECT_LT(rel, 0.005) << text;
    } else if (text == "int8") {
      EXPECT_LT(rel, 0.02) << text;
    } else {
      EXPECT_LT(rel, 2.0) << text;  // sparse / ternary: coarse but bounded
    }
  }
}

TEST(PayloadTest, StreamingDecodeEqualsWholeDecodeForAnySplit) {
  const auto offsets = offsets_of(kSizes);
  const std::vector<float> v = normal_vector(offsets.back(), 3);
  for (const std::string& text : kChains) {
    auto c = chain(text);
    const std::string p = *c->encode(v, offsets, 9);
    const std::vector<float> whole = decode_all(*c, p, offsets);
    for (size_t step : {size_t{1} << 20, size_t{4093}, size_t{7}}) {
      if (step == 7 && p.size() > 400000) continue;  // keep the byte-by-byte-ish case quick
      StreamDecoder d(c, offsets, "test");
      std::vector<float> got(v.size(), -9.0f);
      int64_t next = 0;
      for (size_t at = 0; at < p.size(); at += step) {
        Status s = d.feed(std::string_view(p).substr(at, step),
                          [&](int64_t first, std::span<const float> vals) {
                            EXPECT_EQ(first, next);  // frames in order, contiguous
                            next = first + static_cast<int64_t>(vals.size());
                            std::copy(vals.begin(), vals.end(), got.begin() + first);
                            return Status();
                          });
        ASSERT_TRUE(s.ok()) << text << ": " << s.to_string();
      }
      ASSERT_TRUE(d.finish().ok()) << text;
      EXPECT_EQ(d.bytes_consumed(), static_cast<int64_t>(p.size()));
      EXPECT_EQ(d.elements_emitted(), offsets.back());
      EXPECT_EQ(std::memcmp(got.data(), whole.data(), whole.size() * 4), 0) << text;
    }
    // Batches decoded in parallel (the server's replay): frames in any order, same values.
    for (bool verify : {true, false}) {
      StreamDecoder d(c, offsets, "test", {.verify_crc = verify, .parallel = true});
      std::vector<float> got(v.size(), -9.0f);
      for (size_t at = 0; at < p.size(); at += 300000) {
        ASSERT_TRUE(d.feed(std::string_view(p).substr(at, 300000),
                           [&](int64_t first, std::span<const float> vals) {
                             std::copy(vals.begin(), vals.end(), got.begin() + first);
                             return Status();
                           })
                        .ok())
            << text;
      }
      ASSERT_TRUE(d.finish().ok()) << text;
      EXPECT_EQ(d.elements_emitted(), offsets.back());
      EXPECT_EQ(std::memcmp(got.data(), whole.data(), whole.size() * 4), 0) << text;
    }
  }
}

TEST(PayloadTest, ErrorFeedbackSendsWhatWasDroppedLater) {
  // Over T tasks: sum of inputs == sum of what the payloads carried + the final residual.
  const auto offsets = offsets_of({3000, 1000});
  for (const char* text : {"topk:0.01", "randk:0.05 -> int8", "topk:0.02 -> int4 -> zstd"}) {
    auto c = chain(text);
    std::vector<float> residual;
    std::vector<double> sent(4000), input(4000);
    for (int t = 0; t < 30; ++t) {
      const std::vector<float> v = normal_vector(4000, 100 + static_cast<uint64_t>(t));
      const std::string p = *c->encode(v, offsets, static_cast<uint64_t>(t), &residual);
      const std::vector<float> out = decode_all(*c, p, offsets);
      for (size_t i = 0; i < v.size(); ++i) {
        input[i] += v[i];
        sent[i] += out[i];
      }
    }
    ASSERT_EQ(residual.size(), 4000u);
    double max_gap = 0, max_res = 0;
    for (size_t i = 0; i < 4000; ++i) {
      max_gap = std::max(max_gap, std::fabs(input[i] - sent[i] - residual[i]));
      max_res = std::max(max_res, std::fabs(static_cast<double>(residual[i])));
    }
    EXPECT_LT(max_gap, 1e-3) << text;
    // The residual stays bounded: what is dropped is sent later rather than piling up
    // (30 tasks of unit-variance inputs would otherwise reach ~sqrt(30) * 3).
    EXPECT_LT(max_res, 30.0) << text;
    // Without a residual pointer nothing is fed back.
    std::vector<float> r2;
    const std::vector<float> v = normal_vector(4000, 1);
    ASSERT_TRUE(chain("topk:0.01:noef")->encode(v, offsets, 1, &r2).ok());
    EXPECT_TRUE(r2.empty());
  }
}

TEST(PayloadTest, DeterministicAcrossThreadCounts) {
  const auto offsets = offsets_of(kSizes);
  const std::vector<float> v = normal_vector(offsets.back(), 4);
  const size_t before = kernel_threads();
  for (const std::string& text : kChains) {
    auto c = chain(text);
    set_kernel_threads(1);
    const std::string a = *c->encode(v, offsets, 77);
    set_kernel_threads(4);
    const std::string b = *c->encode(v, offsets, 77);
    EXPECT_EQ(a, b) << text;
  }
  set_kernel_threads(before);
}

TEST(PayloadTest, RefusesNonFiniteInputNamingTheElement) {
  const auto offsets = offsets_of({10, 10});
  std::vector<float> v(20, 1.0f);
  v[13] = NAN;
  auto p = chain("int8")->encode(v, offsets, 1);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("element 13 (array 1)"), std::string::npos)
      << p.error().message();
}

// Every corruption is an error; none decodes to a silently different vector.
TEST(PayloadTest, RefusesCorruptedTruncatedOversizeAndMismatchedPayloads) {
  const auto offsets = offsets_of(kSizes);
  const std::vector<float> v = normal_vector(offsets.back(), 6);
  Rng rng(99);
  for (const std::string& text : kChains) {
    auto c = chain(text);
    const std::string p = *c->encode(v, offsets, 1);
    std::vector<float> out(v.size());
    struct Case {
      std::string name;
      std::string bytes;
      std::vector<int64_t> offsets;
      StatusCode code;  // kOk: any error code will do
      std::string want;
    };
    std::vector<Case> cases = {
        {"empty", "", offsets, StatusCode::kDataLoss, "truncated"},
        {"header cut", p.substr(0, 20), offsets, StatusCode::kDataLoss, "truncated"},
        {"last byte missing", p.substr(0, p.size() - 1), offsets, StatusCode::kDataLoss,
         "truncated"},
        {"half", p.substr(0, p.size() / 2), offsets, StatusCode::kDataLoss, "truncated"},
        {"trailing byte", p + "x", offsets, StatusCode::kInvalidArgument, "after the last frame"},
        {"bad magic", "X" + p.substr(1), offsets, StatusCode::kInvalidArgument, "magic"},
        {"version", p.substr(0, 4) + "\x09" + p.substr(5), offsets, StatusCode::kInvalidArgument,
         "format version 9"},
        {"other layout", p, offsets_of({100000, 50003}), StatusCode::kInvalidArgument,
         "layout mismatch"},
        {"fewer elements", p, offsets_of({100000, 3, 49999}), StatusCode::kInvalidArgument,
         "layout mismatch"},
    };
    // A frame claiming a huge raw size (oversize).
    {
      std::string big = p;
      // The first frame header follows the header; find it through a stream decoder's count.
      StreamDecoder d(c, offsets, "probe");
      ASSERT_TRUE(d.feed(std::string_view(p).substr(0, 200), [](int64_t, auto) { return Status(); }).ok());
      const int64_t header = d.bytes_consumed();
      ASSERT_GT(header, 0);
      const uint32_t huge = 0x7fffffff;
      std::memcpy(big.data() + header, &huge, 4);
      cases.push_back({"oversize frame", big, offsets, StatusCode::kResourceExhausted,
                       "more than"});
    }
    // Random byte flips anywhere.
    for (int i = 0; i < 40; ++i) {
      std::string flipped = p;
      const size_t at = static_cast<size_t>(rng.uniform_int(p.size()));
      flipped[at] = static_cast<char>(flipped[at] ^ (1 + rng.uniform_int(255)));
      cases.push_back({"flip at " + std::to_string(at), flipped, offsets, StatusCode::kOk, ""});
    }
    for (const Case& k : cases) {
      Status s = c->decode(k.bytes, k.offsets, std::span<float>(out.data(), static_cast<size_t>(k.offsets.back())));
      ASSERT_FALSE(s.ok()) << text << ": " << k.name;
      if (k.code != StatusCode::kOk) {
        EXPECT_EQ(s.code(), k.code) << text << ": " << k.name << ": " << s.to_string();
      }
      EXPECT_NE(s.message().find(k.want), std::string::npos) << text << ": " << k.name << ": " << s.message();
      // The streaming decoder agrees.
      StreamDecoder d(c, k.offsets, "stream");
      Status fs = d.feed(k.bytes, [](int64_t, std::span<const float>) { return Status(); });
      if (fs.ok()) fs = d.finish();
      EXPECT_FALSE(fs.ok()) << text << ": " << k.name;
    }
    // A payload of another chain.
    const std::string other = *chain(text == "int8" ? "int4" : "int8")->encode(v, offsets, 1);
    Status s = c->decode(other, offsets, out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(s.message().find("the receiver expects '" + c->spec() + "'"), std::string::npos)
        << s.message();
  }
}

}  // namespace
}  // namespace cohort::codec
