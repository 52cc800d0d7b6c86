#include "cohort/runtime/checkpoint.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/core/hash.h"
#include "testing/fake_host.h"

namespace cohort {
namespace {

using ::cohort::testing::make_vector;
using ::testing::HasSubstr;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("cohort_ckpt_test_" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file() const { return dir_ + "/" + kCheckpointFile; }
  std::string dir_;
};

Checkpoint sample(ModelVersion version = 7) {
  Checkpoint c;
  c.strategy = "fedbuff";
  c.version = version;
  c.epoch = 2;
  c.rng_state = {1, 2, 3, 4};
  c.runtime = {{"time", 12.5}, {"summary", {{"updates", 9}}}};
  c.state.scalars = {{"version", version}, {"buffered", 1}};
  c.state.arrays.emplace("model", make_vector({0.5f, -1.5f}));
  c.state.arrays.emplace("momentum", make_vector({2.0f}));
  return c;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const std::string& path, const std::string& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << b;
}

// The manifest of a checkpoint file, and the file rebuilt around another manifest (with a
// correct checksum, so only the manifest's content is wrong).
std::string manifest_of(const std::string& bytes) {
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 8, 8);
  return bytes.substr(16, len);
}

std::string with_manifest(const std::string& bytes, const std::string& manifest) {
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 8, 8);
  const std::string data = bytes.substr(16 + len + 8);
  std::string out = bytes.substr(0, 8);
  const uint64_t new_len = manifest.size();
  out.append(reinterpret_cast<const char*>(&new_len), 8);
  out += manifest;
  const uint64_t h = fnv1a64(manifest.data(), manifest.size());
  out.append(reinterpret_cast<const char*>(&h), 8);
  return out + data;
}

TEST_F(CheckpointTest, RoundTrips) {
  ASSERT_TRUE(write_checkpoint(dir_, sample()).ok());
  Result<Checkpoint> c = read_checkpoint(dir_);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->strategy, "fedbuff");
  EXPECT_EQ(c->version, 7);
  EXPECT_EQ(c->epoch, 2);
  EXPECT_EQ(c->rng_state, (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(c->runtime["time"], 12.5);
  EXPECT_EQ(c->runtime["summary"]["updates"], 9);
  EXPECT_EQ(c->state.scalars["buffered"], 1);
  EXPECT_EQ(testing::values(c->state.arrays.at("model")), (std::vector<float>{0.5f, -1.5f}));
  EXPECT_EQ(testing::values(c->state.arrays.at("momentum")), (std::vector<float>{2.0f}));
  EXPECT_FALSE(std::filesystem::exists(file() + ".tmp"));
}

TEST_F(CheckpointTest, MissingIsNotFound) {
  EXPECT_EQ(read_checkpoint(dir_).error().code(), StatusCode::kNotFound);
  EXPECT_EQ(read_checkpoint_file(file()).error().code(), StatusCode::kNotFound);
}

// Every kind of corruption is DataLoss naming the file and what is wrong.
TEST_F(CheckpointTest, EveryCorruptionIsDataLossWithAClearMessage) {
  ASSERT_TRUE(write_checkpoint(dir_, sample()).ok());
  const std::string good = read_bytes(file());
  auto expect = [&](const std::string& what, const std::string& bytes, const std::string& needle) {
    SCOPED_TRACE(what);
    write_bytes(file(), bytes);
    Result<Checkpoint> c = read_checkpoint_file(file());
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code(), StatusCode::kDataLoss);
    EXPECT_THAT(c.error().message(), HasSubstr(needle));
    EXPECT_THAT(c.error().message(), HasSubstr(file()));
  };
  expect("bad magic", "not a checkpoint at all, but long enough", "bad magic");
  expect("empty file", "", "bad magic");
  expect("header only", good.substr(0, 12), "truncated");
  {
    std::string b = good;
    const uint64_t huge = uint64_t{1} << 62;
    std::memcpy(b.data() + 8, &huge, 8);
    expect("oversize manifest length", b, "manifest length 4611686018427387904 exceeds");
  }
  {
    std::string b = good;
    b[20] ^= 0x01;  // inside the manifest
    expect("flipped bit in the manifest", b, "manifest checksum mismatch");
  }
  expect("manifest not JSON", with_manifest(good, "{\"format\": \"cohort-checkpoint\", oops"),
         "manifest is not a valid JSON object");
  expect("manifest not an object", with_manifest(good, "[1, 2, 3]"),
         "manifest is not a valid JSON object");
  {
    Json m = Json::parse(manifest_of(good));
    m["format_version"] = 99;
    expect("wrong format version", with_manifest(good, m.dump()),
           "unsupported format_version 99 (this build reads 2)");
    m.erase("format_version");
    expect("no format version", with_manifest(good, m.dump()), "unsupported format_version (none)");
  }
  {
    Json m = Json::parse(manifest_of(good));
    m.erase("strategy");
    expect("missing key", with_manifest(good, m.dump()), "bad manifest");
    m = Json::parse(manifest_of(good));
    m["version"] = "seven";
    expect("mistyped key", with_manifest(good, m.dump()), "bad manifest");
    m = Json::parse(manifest_of(good));
    m["arrays"][0]["offset"] = 1 << 30;
    expect("array beyond the file", with_manifest(good, m.dump()), "does not fit");
    m = Json::parse(manifest_of(good));
    m["arrays"][0]["bytes"] = 4;
    expect("array size not its layout", with_manifest(good, m.dump()), "does not fit");
  }
  {
    std::string b = good;
    b[b.size() - 2] ^= 0x40;  // a bit of the last array's values
    expect("flipped bit in an array", b, "hash mismatch");
  }
  expect("truncated data", good.substr(0, good.size() - 3), "does not fit");
}

TEST_F(CheckpointTest, KeepsTheLastNAndFallsBackPastACorruptOne) {
  for (ModelVersion v = 1; v <= 5; ++v) ASSERT_TRUE(write_checkpoint(dir_, sample(v), 3).ok());
  EXPECT_TRUE(std::filesystem::exists(file()));
  EXPECT_TRUE(std::filesystem::exists(file() + ".1"));
  EXPECT_TRUE(std::filesystem::exists(file() + ".2"));
  EXPECT_FALSE(std::filesystem::exists(file() + ".3"));
  EXPECT_EQ(read_checkpoint_file(file())->version, 5);
  EXPECT_EQ(read_checkpoint_file(file() + ".1")->version, 4);
  EXPECT_EQ(read_checkpoint_file(file() + ".2")->version, 3);
  // The newest is corrupt: the previous one is read, and the skipped file is reported.
  std::string b = read_bytes(file());
  b[b.size() - 1] ^= 0x01;
  write_bytes(file(), b);
  std::vector<std::string> skipped;
  Result<Checkpoint> c = read_checkpoint(dir_, &skipped);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->version, 4);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_THAT(skipped[0], HasSubstr("hash mismatch"));
  // Mid-rotation (no newest name yet): .1 is the newest.
  std::filesystem::remove(file());
  EXPECT_EQ(read_checkpoint(dir_)->version, 4);
  // None readable: the newest file's error.
  for (const char* suffix : {".1", ".2"}) write_bytes(file() + suffix, "garbage, not a checkpoint");
  c = read_checkpoint(dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message(), HasSubstr(".1: not a Cohort checkpoint"));
  // Keeping fewer removes the extra files.
  ASSERT_TRUE(write_checkpoint(dir_, sample(6), 1).ok());
  EXPECT_FALSE(std::filesystem::exists(file() + ".1"));
  EXPECT_FALSE(std::filesystem::exists(file() + ".2"));
  EXPECT_EQ(read_checkpoint(dir_)->version, 6);
}

}  // namespace
}  // namespace cohort
