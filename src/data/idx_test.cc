#include "cohort/data/idx.h"

#include <unistd.h>
#include <zlib.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cohort {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh directory per test, removed afterwards.
class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cohort_idx_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write_raw(const std::string& name, const std::string& bytes) const {
    const std::string p = path(name);
    std::ofstream f(p, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  std::string write_gz(const std::string& name, const std::string& bytes) const {
    const std::string p = path(name);
    gzFile f = gzopen(p.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(f);
    return p;
  }

  fs::path dir_;
};

void put_be(std::string& out, uint64_t v, int nbytes) {
  for (int i = nbytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::string header(uint8_t type, const std::vector<uint32_t>& dims) {
  std::string s;
  s.push_back(0);
  s.push_back(0);
  s.push_back(static_cast<char>(type));
  s.push_back(static_cast<char>(dims.size()));
  for (uint32_t d : dims) put_be(s, d, 4);
  return s;
}

// An IDX file image with the values written big-endian by hand (independent of the reader).
template <typename T>
std::string idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const std::vector<T>& v) {
  std::string s = header(type, dims);
  for (T x : v) {
    uint64_t bits = 0;
    if constexpr (std::is_same_v<T, float>) {
      bits = std::bit_cast<uint32_t>(x);
    } else if constexpr (std::is_same_v<T, double>) {
      bits = std::bit_cast<uint64_t>(x);
    } else {
      bits = static_cast<uint64_t>(static_cast<std::make_unsigned_t<T>>(x));
    }
    put_be(s, bits, sizeof(T));
  }
  return s;
}

TEST_F(IdxTest, ReadsUbyteRawAndGzipped) {
  const std::vector<uint8_t> v = {0, 1, 2, 127, 128, 255};
  const std::string bytes = idx_bytes<uint8_t>(kIdxUByte, {2, 3}, v);
  // The gzipped copy gets a name without ".gz": detection is by magic bytes.
  for (const std::string& p : {write_raw("u8.idx", bytes), write_gz("u8_compressed.idx", bytes)}) {
    auto r = read_idx(p);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->type_code, kIdxUByte);
    EXPECT_EQ(r->dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(r->numel(), 6);
    EXPECT_EQ(r->bytes, v);
    EXPECT_EQ(r->to_doubles(), (std::vector<double>{0, 1, 2, 127, 128, 255}));
    EXPECT_EQ(r->value(5), 255.0);
  }
}

TEST_F(IdxTest, ReadsSignedAndWideIntegers) {
  {
    const std::vector<int8_t> v = {-128, -1, 0, 1, 127};
    auto r = read_idx(write_gz("s8.gz", idx_bytes<int8_t>(kIdxSByte, {5}, v)));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->type_code, kIdxSByte);
    EXPECT_EQ(r->to_doubles(), (std::vector<double>{-128, -1, 0, 1, 127}));
  }
  {
    const std::vector<int16_t> v = {-32768, -2, 0, 0x1234, 32767, 258};
    auto r = read_idx(write_raw("i16.idx", idx_bytes<int16_t>(kIdxInt16, {3, 2}, v)));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->type_code, kIdxInt16);
    EXPECT_EQ(r->dims, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(r->to_doubles(), (std::vector<double>{-32768, -2, 0, 4660, 32767, 258}));
    EXPECT_EQ(r->bytes.size(), 12u);
  }
  {
    const std::vector<int32_t> v = {std::numeric_limits<int32_t>::min(), -1, 7, 0x01020304,
                                    std::numeric_limits<int32_t>::max()};
    const std::string bytes = idx_bytes<int32_t>(kIdxInt32, {1, 5, 1}, v);
    // 0x01020304 (element 3) is stored big-endian as 01 02 03 04 at byte 16 + 3 * 4.
    ASSERT_EQ(bytes.substr(4 + 12 + 3 * 4, 4), std::string("\x01\x02\x03\x04", 4));
    for (const std::string& p : {write_raw("i32.idx", bytes), write_gz("i32.idx.gz", bytes)}) {
      auto r = read_idx(p);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      EXPECT_EQ(r->dims, (std::vector<int64_t>{1, 5, 1}));
      EXPECT_EQ(r->to_doubles(),
                (std::vector<double>{-2147483648.0, -1, 7, 16909060, 2147483647.0}));
    }
  }
}

TEST_F(IdxTest, ReadsFloats) {
  {
    const std::vector<float> v = {1.5f, -0.25f, 3.14159274f,
                                  0.0f, -1e30f, std::numeric_limits<float>::infinity()};
    auto r = read_idx(write_raw("f32.idx", idx_bytes<float>(kIdxFloat32, {6}, v)));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->type_code, kIdxFloat32);
    ASSERT_EQ(r->numel(), 6);
    EXPECT_EQ(r->value(0), 1.5);
    EXPECT_EQ(r->value(1), -0.25);
    EXPECT_EQ(r->value(2), static_cast<double>(3.14159274f));
    EXPECT_EQ(r->value(4), static_cast<double>(-1e30f));
    EXPECT_TRUE(std::isinf(r->value(5)));
  }
  {
    const std::vector<double> v = {1e300, -2.5, 0.1, -0.0};
    auto r = read_idx(write_gz("f64.gz", idx_bytes<double>(kIdxFloat64, {2, 2}, v)));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->type_code, kIdxFloat64);
    EXPECT_EQ(r->to_doubles(), v);
    EXPECT_TRUE(std::signbit(r->value(3)));
  }
}

TEST_F(IdxTest, ZeroLengthDimensionIsEmpty) {
  auto r = read_idx(write_raw("empty.idx", header(kIdxFloat32, {0, 28})));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->dims, (std::vector<int64_t>{0, 28}));
  EXPECT_EQ(r->numel(), 0);
}

TEST_F(IdxTest, LargeGzipFileRoundTrips) {
  // Bigger than zlib's and the reader's internal buffers, so several blocks are involved.
  std::vector<uint8_t> v(3'000'000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 7 + i / 1000) & 0xFF);
  auto r = read_idx(write_gz("big.gz", idx_bytes<uint8_t>(kIdxUByte, {3000, 1000}, v)));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->bytes, v);
}

void expect_error(const Result<IdxArray>& r, StatusCode code, const std::string& path,
                  const std::string& detail) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), code) << r.error().to_string();
  EXPECT_THAT(r.error().message(), HasSubstr(path));
  EXPECT_THAT(r.error().message(), HasSubstr(detail));
}

TEST_F(IdxTest, MissingFileIsNotFound) {
  const std::string p = path("nope.idx.gz");
  expect_error(read_idx(p), StatusCode::kNotFound, p, "no such file");
}

TEST_F(IdxTest, TruncatedDataIsDataLoss) {
  std::string bytes = idx_bytes<int16_t>(kIdxInt16, {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  bytes.resize(bytes.size() - 3);
  const std::string raw = write_raw("trunc.idx", bytes);
  expect_error(read_idx(raw), StatusCode::kDataLoss, raw, "truncated");
  expect_error(read_idx(raw), StatusCode::kDataLoss, raw, "holds only 13");
  const std::string gz = write_gz("trunc.gz", bytes);
  expect_error(read_idx(gz), StatusCode::kDataLoss, gz, "truncated");
}

TEST_F(IdxTest, TruncatedHeaderIsDataLoss) {
  std::string bytes = header(kIdxUByte, {10, 28, 28});
  bytes.resize(4 + 6);  // magic, one dim size, half of the next
  const std::string p = write_raw("hdr.idx", bytes);
  expect_error(read_idx(p), StatusCode::kDataLoss, p, "truncated header");
  const std::string tiny = write_raw("tiny.idx", std::string("\0\0", 2));
  expect_error(read_idx(tiny), StatusCode::kDataLoss, tiny, "truncated");
  const std::string empty = write_raw("empty.idx", "");
  expect_error(read_idx(empty), StatusCode::kDataLoss, empty, "truncated");
}

TEST_F(IdxTest, BadMagicIsDataLoss) {
  std::string bytes = idx_bytes<uint8_t>(kIdxUByte, {2}, {1, 2});
  bytes[0] = 0x01;
  const std::string p = write_raw("magic.idx", bytes);
  expect_error(read_idx(p), StatusCode::kDataLoss, p, "bad IDX magic 0x01 0x00");
  const std::string text = write_raw("text.idx", "hello world, not an IDX file");
  expect_error(read_idx(text), StatusCode::kDataLoss, text, "bad IDX magic");
}

TEST_F(IdxTest, UnknownTypeCodeIsDataLoss) {
  std::string bytes = idx_bytes<uint8_t>(kIdxUByte, {2}, {1, 2});
  bytes[2] = 0x0A;
  const std::string p = write_gz("type.gz", bytes);
  expect_error(read_idx(p), StatusCode::kDataLoss, p, "unknown IDX type code 0x0A");
}

TEST_F(IdxTest, TrailingBytesAreDataLoss) {
  const std::string bytes = idx_bytes<int32_t>(kIdxInt32, {2}, {1, 2}) + "xyz";
  const std::string raw = write_raw("trail.idx", bytes);
  expect_error(read_idx(raw), StatusCode::kDataLoss, raw, "3 trailing bytes");
  const std::string gz = write_gz("trail.gz", bytes);
  expect_error(read_idx(gz), StatusCode::kDataLoss, gz, "3 trailing bytes");
}

TEST_F(IdxTest, CorruptGzipIsDataLoss) {
  const std::string p =
      write_raw("corrupt.gz", std::string("\x1f\x8b\x08\x00garbage-garbage-garbage", 27));
  expect_error(read_idx(p), StatusCode::kDataLoss, p, "gzip");

  // A valid gzip stream cut in the middle.
  std::vector<uint8_t> v(100000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  const std::string whole = write_gz("whole.gz", idx_bytes<uint8_t>(kIdxUByte, {100000}, v));
  std::ifstream in(whole, std::ios::binary);
  std::string compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(compressed.size(), 1000u);
  const std::string cut = write_raw("cut.gz", compressed.substr(0, compressed.size() / 2));
  expect_error(read_idx(cut), StatusCode::kDataLoss, cut, "gzip");
}

TEST_F(IdxTest, AbsurdSizeIsInvalidArgument) {
  const std::string p = write_raw("huge.idx", header(kIdxUByte, {65536, 65536}));
  expect_error(read_idx(p), StatusCode::kInvalidArgument, p, "65536 x 65536");
  const std::string q = write_raw("huge3.idx", header(kIdxFloat64, {0xFFFFFFFFu, 0xFFFFFFFFu, 3}));
  expect_error(read_idx(q), StatusCode::kInvalidArgument, q, "2^31");
}

TEST_F(IdxTest, DirectoryIsRejected) {
  const std::string p = dir_.string();
  auto r = read_idx(p);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr(p));
}

// ---- load_fashion_mnist on small files the test writes -------------------------------------

class FashionFilesTest : public IdxTest {
 protected:
  // n images whose pixel (i, r, c) is (i + r + c) % 256, labels i % 10.
  void write_split(const std::string& prefix, uint32_t n_images, uint32_t n_labels,
                   uint32_t side = 28, int bad_label_at = -1, bool gz = true) {
    std::vector<uint8_t> px(static_cast<size_t>(n_images) * side * side);
    for (uint32_t i = 0; i < n_images; ++i)
      for (uint32_t r = 0; r < side; ++r)
        for (uint32_t c = 0; c < side; ++c)
          px[(static_cast<size_t>(i) * side + r) * side + c] =
              static_cast<uint8_t>((i + r + c) % 256);
    std::vector<uint8_t> lab(n_labels);
    for (uint32_t i = 0; i < n_labels; ++i) lab[i] = static_cast<uint8_t>(i % 10);
    if (bad_label_at >= 0) lab[static_cast<size_t>(bad_label_at)] = 10;
    const std::string img = idx_bytes<uint8_t>(kIdxUByte, {n_images, side, side}, px);
    const std::string lbl = idx_bytes<uint8_t>(kIdxUByte, {n_labels}, lab);
    if (gz) {
      write_gz(prefix + "-images-idx3-ubyte.gz", img);
      write_gz(prefix + "-labels-idx1-ubyte.gz", lbl);
    } else {
      write_raw(prefix + "-images-idx3-ubyte", img);
      write_raw(prefix + "-labels-idx1-ubyte", lbl);
    }
  }
};

TEST_F(FashionFilesTest, LoadsAndScalesPixels) {
  write_split("train", 12, 12);
  write_split("t10k", 5, 5, 28, -1, /*gz=*/false);  // uncompressed copies are accepted too
  auto tr = load_fashion_mnist(dir_.string(), "train");
  ASSERT_TRUE(tr.ok()) << tr.status().to_string();
  EXPECT_EQ(tr->name, "fashion-mnist");
  EXPECT_EQ(tr->size(), 12);
  EXPECT_EQ(tr->sample_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(tr->num_classes, 10);
  EXPECT_TRUE(tr->validate().ok());
  EXPECT_EQ(tr->labels[11], 1);
  // Image 11, row 3, col 20: (11 + 3 + 20) = 34.
  EXPECT_FLOAT_EQ(tr->example(11)[3 * 28 + 20], 34.0f / 255.0f);
  EXPECT_FLOAT_EQ(tr->example(0)[27 * 28 + 27], 54.0f / 255.0f);

  auto te = load_fashion_mnist(dir_.string(), "test");
  ASSERT_TRUE(te.ok()) << te.status().to_string();
  EXPECT_EQ(te->size(), 5);

  auto lim = load_fashion_mnist(dir_.string(), "train", 4);
  ASSERT_TRUE(lim.ok()) << lim.status().to_string();
  EXPECT_EQ(lim->size(), 4);
  EXPECT_EQ(lim->features.size(), 4u * 784u);
  EXPECT_EQ(lim->labels, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(std::vector<float>(lim->features.begin(), lim->features.end()),
            std::vector<float>(tr->features.begin(), tr->features.begin() + 4 * 784));
  // A limit beyond the file keeps everything.
  auto big = load_fashion_mnist(dir_.string(), "train", 1000);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->size(), 12);
}

TEST_F(FashionFilesTest, MissingFilesNameThePackage) {
  auto r = load_fashion_mnist(dir_.string(), "train");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr(path("train-images-idx3-ubyte.gz")));
  EXPECT_THAT(r.error().message(), HasSubstr("install Debian package dataset-fashion-mnist"));

  write_gz("t10k-images-idx3-ubyte.gz", idx_bytes<uint8_t>(kIdxUByte, {0, 28, 28}, {}));
  auto t = load_fashion_mnist(dir_.string(), "test");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code(), StatusCode::kNotFound);
  EXPECT_THAT(t.error().message(), HasSubstr(path("t10k-labels-idx1-ubyte.gz")));
}

TEST_F(FashionFilesTest, InconsistentFilesAreRejected) {
  write_split("train", 10, 9);
  auto r = load_fashion_mnist(dir_.string(), "train");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kDataLoss);
  EXPECT_THAT(r.error().message(), HasSubstr("10 images"));
  EXPECT_THAT(r.error().message(), HasSubstr("9 labels"));
  // The count check uses the headers, so it fires under a limit too.
  EXPECT_FALSE(load_fashion_mnist(dir_.string(), "train", 3).ok());

  write_split("t10k", 6, 6, /*side=*/27);
  auto s = load_fashion_mnist(dir_.string(), "test");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.error().message(), HasSubstr("28 x 28"));
  EXPECT_THAT(s.error().message(), HasSubstr("6 x 27 x 27"));
}

TEST_F(FashionFilesTest, LabelOutOfRangeIsRejected) {
  write_split("train", 8, 8, 28, /*bad_label_at=*/5);
  auto r = load_fashion_mnist(dir_.string(), "train");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kDataLoss);
  EXPECT_THAT(r.error().message(), HasSubstr("train-labels-idx1-ubyte.gz: label 5 is 10"));
}

TEST_F(FashionFilesTest, BadArguments) {
  auto r = load_fashion_mnist(dir_.string(), "validation");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("validation"));
  auto l = load_fashion_mnist(dir_.string(), "train", -1);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code(), StatusCode::kInvalidArgument);
}

// ---- the real files from Debian's dataset-fashion-mnist ------------------------------------
// Expected values were computed independently with Python's gzip module.

bool have_fashion() { return fs::is_directory(kFashionMnistDir); }

TEST(FashionMnistReal, FirstHundredTrainExamples) {
  if (!have_fashion()) GTEST_SKIP() << kFashionMnistDir << " missing (dataset-fashion-mnist)";
  auto r = load_fashion_mnist(kFashionMnistDir, "train", 100);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Dataset& ds = *r;
  EXPECT_EQ(ds.size(), 100);
  EXPECT_EQ(ds.features.size(), 100u * 784u);
  EXPECT_EQ(ds.sample_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_TRUE(ds.validate().ok());
  EXPECT_EQ(std::vector<int32_t>(ds.labels.begin(), ds.labels.begin() + 12),
            (std::vector<int32_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9}));
  double sum = 0;
  float lo = 1, hi = 0;
  for (float v : ds.features) {
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  EXPECT_NEAR(sum, 5688570.0 / 255.0, 1e-2);
  EXPECT_FLOAT_EQ(ds.example(0)[5 * 28 + 14], 102.0f / 255.0f);
}

TEST(FashionMnistReal, FullSplitsAreBalanced) {
  if (!have_fashion()) GTEST_SKIP() << kFashionMnistDir << " missing (dataset-fashion-mnist)";
  for (const auto& [split, n, first] :
       {std::tuple<std::string, int64_t, std::vector<int32_t>>{"test", 10000, {9, 2, 1, 1, 6, 1}},
        std::tuple<std::string, int64_t, std::vector<int32_t>>{
            "train", 60000, {9, 0, 0, 3, 0, 2}}}) {
    auto r = load_fashion_mnist(kFashionMnistDir, split);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->size(), n);
    EXPECT_EQ(static_cast<int64_t>(r->features.size()), n * 784);
    EXPECT_EQ(std::vector<int32_t>(r->labels.begin(), r->labels.begin() + 6), first);
    std::vector<int64_t> counts(10, 0);
    for (int32_t y : r->labels) counts[static_cast<size_t>(y)]++;
    EXPECT_EQ(counts, std::vector<int64_t>(10, n / 10)) << split;
  }
}

TEST(FashionMnistReal, ReadIdxOnTestImages) {
  if (!have_fashion()) GTEST_SKIP() << kFashionMnistDir << " missing (dataset-fashion-mnist)";
  auto r = read_idx(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->type_code, kIdxUByte);
  EXPECT_EQ(r->dims, (std::vector<int64_t>{10000, 28, 28}));
  int64_t img0 = 0;
  for (int i = 0; i < 784; ++i) img0 += r->bytes[static_cast<size_t>(i)];
  EXPECT_EQ(img0, 33456);
}

}  // namespace
}  // namespace cohort
