#include "cohort/runtime/model_file.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/runtime/checkpoint.h"
#include "testing/fake_trainer.h"

namespace cohort {
namespace {

using ::testing::HasSubstr;

class ModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("cohort_model_file_test_" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name = kModelFile) const { return dir_ + "/" + name; }
  std::string dir_;
};

ArrayRecord two_arrays(float a, float b) {
  ArrayRecord r(*ArrayLayout::create({{"w", {2}}, {"b", {1}, /*trainable=*/false}}));
  r.flat()[0] = a;
  r.flat()[1] = b;
  r.flat()[2] = a + b;
  return r;
}

TEST_F(ModelFileTest, RoundTripsValuesBitForBit) {
  const ArrayRecord m = two_arrays(0.1f, -3.5e-20f);
  ASSERT_TRUE(write_model_file(path(), m, "diloco", 40).ok());
  Result<ArrayRecord> back = read_model_file(path());
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_TRUE(back->layout()->same_as(*m.layout()));
  EXPECT_EQ(back->hash_hex(), m.hash_hex());
  EXPECT_FALSE(std::filesystem::exists(path() + ".tmp"));
  // It is a checkpoint file: the strategy and version are there, and nothing else.
  Result<Checkpoint> c = read_checkpoint_file(path());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->strategy, "diloco");
  EXPECT_EQ(c->version, 40);
  EXPECT_EQ(c->state.arrays.size(), 1u);
}

TEST_F(ModelFileTest, OverwritesAnExistingFile) {
  ASSERT_TRUE(write_model_file(path(), two_arrays(1, 2), "fedavg", 1).ok());
  ASSERT_TRUE(write_model_file(path(), two_arrays(5, 6), "fedavg", 2).ok());
  EXPECT_EQ(read_model_file(path())->flat()[0], 5.0f);
}

TEST_F(ModelFileTest, AServerCheckpointIsAModelFile) {
  Checkpoint c;
  c.strategy = "fedbuff";
  c.version = 3;
  c.state.arrays.emplace("model", two_arrays(7, 8));
  c.state.arrays.emplace("momentum", two_arrays(0, 0));
  ASSERT_TRUE(write_checkpoint(dir_, c).ok());
  Result<ArrayRecord> m = read_model_file(path(kCheckpointFile));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->flat()[0], 7.0f);
  EXPECT_EQ(m->flat()[2], 15.0f);
}

TEST_F(ModelFileTest, AFileWithoutAModelIsDataLoss) {
  Checkpoint c;
  c.state.arrays.emplace("momentum", two_arrays(0, 0));
  ASSERT_TRUE(write_checkpoint_file(path(), c).ok());
  Result<ArrayRecord> m = read_model_file(path());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), StatusCode::kDataLoss);
  EXPECT_THAT(m.error().message(), HasSubstr("holds no model"));
}

TEST_F(ModelFileTest, InitialModelWithoutAFileIsTheTrainersSeededOne) {
  testing::QuadraticTrainer t(3);
  Result<ArrayRecord> a = initial_model(t, "", 9);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->hash_hex(), t.init_params(9)->hash_hex());
}

TEST_F(ModelFileTest, InitialModelFromAFileKeepsTheTrainersLayout) {
  testing::QuadraticTrainer t(3);
  ArrayRecord saved = *t.init_params(1);
  saved.flat()[0] = 4.25f;
  saved.flat()[2] = -1.0f;
  ASSERT_TRUE(write_model_file(path(), saved, "fedavg", 12).ok());
  Result<ArrayRecord> init = initial_model(t, path(), /*seed=*/77);
  ASSERT_TRUE(init.ok()) << init.error().to_string();
  EXPECT_EQ(init->hash_hex(), saved.hash_hex());  // the seed does not matter
}

TEST_F(ModelFileTest, InitialModelRefusesAnotherModelNamingTheDifference) {
  testing::QuadraticTrainer t(3);
  ASSERT_TRUE(write_model_file(path("four.cohort"), *testing::QuadraticTrainer(4).init_params(1),
                               "fedavg", 1)
                  .ok());
  ASSERT_TRUE(write_model_file(path("two.cohort"), two_arrays(1, 2), "fedavg", 1).ok());
  ArrayRecord renamed(*ArrayLayout::create({{"v", {3}}}));
  ASSERT_TRUE(write_model_file(path("renamed.cohort"), renamed, "fedavg", 1).ok());

  Result<ArrayRecord> r = initial_model(t, path("four.cohort"), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("model.init: " + path("four.cohort")));
  EXPECT_THAT(r.error().message(), HasSubstr("array 'w' has shape [4], expected [3]"));

  r = initial_model(t, path("renamed.cohort"), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("array #0 is 'v', expected 'w'"));

  r = initial_model(t, path("two.cohort"), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("has shape [2], expected [3]"));
}

TEST_F(ModelFileTest, InitialModelRefusesMissingCorruptAndNonFiniteFiles) {
  testing::QuadraticTrainer t(3);
  Result<ArrayRecord> r = initial_model(t, path("absent.cohort"), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("model.init: " + path("absent.cohort")));
  EXPECT_THAT(r.error().message(), HasSubstr("cannot open"));

  ArrayRecord m = *t.init_params(1);
  ASSERT_TRUE(write_model_file(path(), m, "fedavg", 1).ok());
  {
    std::fstream f(path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-2, std::ios::end);
    f.put('\x7f');  // a value's byte: its hash no longer matches
  }
  r = initial_model(t, path(), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("model.init: " + path()));
  EXPECT_THAT(r.error().message(), HasSubstr("hash mismatch"));

  m.flat()[1] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE(write_model_file(path(), m, "fedavg", 1).ok());
  r = initial_model(t, path(), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("array 'w' element 1 is NaN"));

  std::ofstream(path("text.cohort")) << "not a model";
  r = initial_model(t, path("text.cohort"), 1);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("bad magic"));
}

}  // namespace
}  // namespace cohort
