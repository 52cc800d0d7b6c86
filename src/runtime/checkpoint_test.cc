#include "cohort/runtime/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

Checkpoint sample() {
  Checkpoint c;
  c.strategy = "fedbuff";
  c.version = 7;
  c.epoch = 2;
  c.clients = {{0, 100, 3}, {5, 40, 1}};
  c.rng_state = {1, 2, 3, 4};
  c.counters = {{"updates", 9}};
  c.state.scalars = {{"version", 7}, {"buffered", 1}};
  c.state.arrays.emplace("model", make_vector({0.5f, -1.5f}));
  c.state.arrays.emplace("momentum", make_vector({2.0f}));
  return c;
}

TEST_F(CheckpointTest, RoundTrips) {
  ASSERT_TRUE(write_checkpoint(dir_, sample()).ok());
  Result<Checkpoint> c = read_checkpoint(dir_);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->strategy, "fedbuff");
  EXPECT_EQ(c->version, 7);
  EXPECT_EQ(c->epoch, 2);
  ASSERT_EQ(c->clients.size(), 2u);
  EXPECT_EQ(c->clients[1].id, 5);
  EXPECT_EQ(c->clients[1].num_examples, 40);
  EXPECT_EQ(c->rng_state, (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(c->counters["updates"], 9);
  EXPECT_EQ(c->state.scalars["buffered"], 1);
  EXPECT_EQ(testing::values(c->state.arrays.at("model")), (std::vector<float>{0.5f, -1.5f}));
  EXPECT_EQ(testing::values(c->state.arrays.at("momentum")), (std::vector<float>{2.0f}));
  EXPECT_FALSE(std::filesystem::exists(file() + ".tmp"));
}

TEST_F(CheckpointTest, MissingIsNotFoundAndCorruptIsDataLoss) {
  EXPECT_EQ(read_checkpoint(dir_).error().code(), StatusCode::kNotFound);
  ASSERT_TRUE(write_checkpoint(dir_, sample()).ok());
  std::string bytes;
  {
    std::ifstream in(file(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& b) {
    std::ofstream out(file(), std::ios::binary | std::ios::trunc);
    out << b;
  };
  std::string flipped = bytes;
  flipped[flipped.size() - 2] ^= 0x40;  // a bit of the last array
  write(flipped);
  Result<Checkpoint> c = read_checkpoint(dir_);
  EXPECT_EQ(c.error().code(), StatusCode::kDataLoss);
  EXPECT_THAT(c.error().message(), HasSubstr("hash mismatch"));
  write(bytes.substr(0, bytes.size() - 3));
  EXPECT_THAT(read_checkpoint(dir_).error().message(), HasSubstr("truncated"));
  write("not a checkpoint at all");
  EXPECT_THAT(read_checkpoint(dir_).error().message(), HasSubstr("bad magic"));
}

}  // namespace
}  // namespace cohort
