#include "cohort/torch/torch_trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/core/rng.h"
#include "torch/torch_test_util.h"

namespace cohort::libtorch {
namespace {

using namespace torch_testing;  // NOLINT
using ::testing::HasSubstr;

// ---- ModelSpec -------------------------------------------------------------------------

TEST(ModelSpecTest, ValidateNamesTheBadField) {
  EXPECT_TRUE(spec_of("mlp", {1, 28, 28}, 10).validate().ok());
  EXPECT_TRUE(spec_of("cnn", {1, 28, 28}, 10).validate().ok());
  EXPECT_TRUE(spec_of("logreg", {20}, 3).validate().ok());

  struct Case {
    ModelSpec spec;
    std::string message;
  };
  const std::vector<Case> cases = {
      {spec_of("resnet", {20}, 3), "model.name: unknown model 'resnet' (known: logreg, mlp, cnn, char_lstm)"},
      {spec_of("mlp", {}, 3), "model.input_shape: must not be empty"},
      {spec_of("mlp", {1, 0}, 3), "model.input_shape[1]: must be >= 1, got 0"},
      {spec_of("logreg", {20}, 1), "model.num_classes: must be >= 2, got 1"},
      {spec_of("mlp", {20}, 3, {}), "model.hidden: mlp needs at least one hidden layer"},
      {spec_of("mlp", {20}, 3, {8, -1}), "model.hidden[1]: must be >= 1, got -1"},
      {spec_of("cnn", {784}, 10),
       "model.input_shape: cnn needs [channels, height, width], got [784]"},
      {spec_of("cnn", {1, 3, 28}, 10), "model.input_shape: cnn needs height and width >= 4"},
  };
  for (const Case& c : cases) {
    const Status s = c.spec.validate();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    // The factory refuses the same specs with the same error.
    auto f = make_trainer_factory(c.spec);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status(), s);
  }
}

// ---- Models: parameter counts, names, shapes -------------------------------------------

TEST(TorchModelsTest, MlpDefaultIsFedAvg2nnWith199210Parameters) {
  auto t = make(spec_of("mlp", {1, 28, 28}, 10));
  auto p = t->init_params(1);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  // 784*200+200 + 200*200+200 + 200*10+10
  EXPECT_EQ(p->numel(), 199210);
  using V = std::vector<int64_t>;
  const std::vector<std::pair<std::string, V>> expected = {
      {"fc1.weight", V{200, 784}}, {"fc1.bias", V{200}},       {"fc2.weight", V{200, 200}},
      {"fc2.bias", V{200}},        {"fc3.weight", V{10, 200}}, {"fc3.bias", V{10}}};
  EXPECT_EQ(names_and_shapes(*p), expected);
  for (const auto& s : p->layout()->specs()) EXPECT_TRUE(s.trainable) << s.name;
}

TEST(TorchModelsTest, MlpHiddenSizesAreConfigurable) {
  auto t = make(spec_of("mlp", {4}, 3, {5}));
  auto p = t->init_params(1);
  ASSERT_TRUE(p.ok());
  using V = std::vector<int64_t>;
  const std::vector<std::pair<std::string, V>> expected = {
      {"fc1.weight", V{5, 4}}, {"fc1.bias", V{5}}, {"fc2.weight", V{3, 5}}, {"fc2.bias", V{3}}};
  EXPECT_EQ(names_and_shapes(*p), expected);
  EXPECT_EQ(p->numel(), 5 * 4 + 5 + 3 * 5 + 3);
}

TEST(TorchModelsTest, CnnIsFedAvgCnnWith1663370Parameters) {
  auto t = make(spec_of("cnn", {1, 28, 28}, 10));
  auto p = t->init_params(1);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  // conv1 1*32*25+32, conv2 32*64*25+64, fc1 (64*7*7)*512+512, fc2 512*10+10
  EXPECT_EQ(p->numel(), 832 + 51264 + 1606144 + 5130);
  EXPECT_EQ(p->numel(), 1663370);
  using V = std::vector<int64_t>;
  const std::vector<std::pair<std::string, V>> expected = {
      {"conv1.weight", V{32, 1, 5, 5}},  {"conv1.bias", V{32}},
      {"conv2.weight", V{64, 32, 5, 5}}, {"conv2.bias", V{64}},
      {"fc1.weight", V{512, 3136}},      {"fc1.bias", V{512}},
      {"fc2.weight", V{10, 512}},        {"fc2.bias", V{10}}};
  EXPECT_EQ(names_and_shapes(*p), expected);
}

TEST(TorchModelsTest, CnnOnOddSizesRoundsPoolingDown) {
  // 3 x 10 x 9 -> pools to 5x4 -> 2x2: fc1 has 64*2*2 inputs.
  auto t = make(spec_of("cnn", {3, 10, 9}, 4));
  auto p = t->init_params(1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->layout()->specs()[0].shape, (std::vector<int64_t>{32, 3, 5, 5}));
  EXPECT_EQ(p->layout()->specs()[4].shape, (std::vector<int64_t>{512, 256}));
  EXPECT_EQ(p->layout()->specs()[6].shape, (std::vector<int64_t>{4, 512}));
}

TEST(TorchModelsTest, LogregIsOneLinearLayer) {
  auto t = make(spec_of("logreg", {20}, 3));
  auto p = t->init_params(1);
  ASSERT_TRUE(p.ok());
  using V = std::vector<int64_t>;
  const std::vector<std::pair<std::string, V>> expected = {{"fc.weight", V{3, 20}},
                                                           {"fc.bias", V{3}}};
  EXPECT_EQ(names_and_shapes(*p), expected);
  EXPECT_EQ(p->numel(), 63);
}

// ---- init_params -----------------------------------------------------------------------

TEST(TorchInitTest, SameSeedSameParamsAcrossTrainersAndThreads) {
  auto factory = make_trainer_factory(spec_of("cnn", {1, 28, 28}, 10));
  ASSERT_TRUE(factory.ok());
  auto a = (*factory)();
  auto b = (*factory)();
  ASSERT_TRUE(a.ok() && b.ok());
  auto pa = (*a)->init_params(7);
  auto pb = (*b)->init_params(7);
  auto pc = (*a)->init_params(8);
  ASSERT_TRUE(pa.ok() && pb.ok() && pc.ok());
  EXPECT_EQ(pa->hash(), pb->hash());
  EXPECT_NE(pa->hash(), pc->hash());
  // Trainers of one factory share one layout object.
  EXPECT_EQ(pa->layout().get(), pb->layout().get());

  // Initialising on several threads at once gives the same values.
  std::vector<uint64_t> hashes(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < hashes.size(); ++i) {
    threads.emplace_back([&, i] {
      auto t = (*factory)();
      if (!t.ok()) return;
      auto p = (*t)->init_params(7);
      if (p.ok()) hashes[i] = p->hash();
    });
  }
  for (auto& t : threads) t.join();
  for (uint64_t h : hashes) EXPECT_EQ(h, pa->hash());
}

TEST(TorchInitTest, FollowsLibTorchDefaultBounds) {
  auto t = make(spec_of("mlp", {1, 28, 28}, 10));
  auto p = t->init_params(3);
  ASSERT_TRUE(p.ok());
  // LibTorch's Linear init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
  const std::vector<double> fan_in = {784, 784, 200, 200, 200, 200};
  for (size_t i = 0; i < fan_in.size(); ++i) {
    const double bound = 1.0 / std::sqrt(fan_in[i]);
    double max_abs = 0, sum = 0;
    for (float v : p->array(i)) {
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(v)));
      sum += v;
    }
    const double n = static_cast<double>(p->array(i).size());
    EXPECT_LE(max_abs, bound) << p->layout()->specs()[i].name;
    EXPECT_GT(max_abs, 0.9 * bound) << p->layout()->specs()[i].name;
    // Mean of U(-b, b) is 0 with standard error b / sqrt(3 n).
    EXPECT_LT(std::fabs(sum / n), 5 * bound / std::sqrt(3 * n)) << p->layout()->specs()[i].name;
  }
}

// ---- train: learning, determinism, steps ---------------------------------------------

void expect_learns(const ModelSpec& spec, const std::shared_ptr<Dataset>& data, int64_t steps,
                   double lr, double min_accuracy) {
  auto t = make(spec);
  auto start = t->init_params(1);
  ASSERT_TRUE(start.ok());
  const Shard shard = Shard::all(data);
  auto before = t->evaluate(*start, shard);
  ASSERT_TRUE(before.ok()) << before.status().to_string();
  TrainConfig cfg;
  cfg.lr = lr;
  cfg.batch_size = 32;
  auto r = t->train(*start, shard, steps, cfg, {}, 11, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->steps, steps);
  EXPECT_EQ(r->num_examples, data->size());
  ASSERT_TRUE(r->metrics.count("train_loss"));
  EXPECT_TRUE(std::isfinite(r->metrics.at("train_loss")));
  auto after = t->evaluate(r->params, shard);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->num_examples, data->size());
  EXPECT_LT(after->loss, 0.5 * before->loss);
  EXPECT_GE(after->accuracy, min_accuracy);
  // The mean training loss lies between the start and the end of training.
  EXPECT_LT(r->metrics.at("train_loss"), before->loss);
  EXPECT_GT(r->metrics.at("train_loss"), after->loss * 0.5);
}

TEST(TorchTrainTest, LogregLearnsSeparableBlobs) {
  expect_learns(spec_of("logreg", {20}, 3), blobs(600, 20, 3, 6.0, 5), 150, 0.1, 0.98);
}

TEST(TorchTrainTest, MlpLearnsSeparableBlobs) {
  expect_learns(spec_of("mlp", {20}, 3, {32, 32}), blobs(600, 20, 3, 6.0, 5), 150, 0.1, 0.98);
}

TEST(TorchTrainTest, CnnLearnsTinyImages) {
  expect_learns(spec_of("cnn", {1, 28, 28}, 2), half_images(64, 28, 28, 4), 20, 0.05, 0.95);
}

TEST(TorchTrainTest, SameSeedSameResultDifferentSeedDifferentResult) {
  set_torch_threads(1);
  auto data = blobs(100, 20, 3, 2.0, 9);
  const Shard shard = Shard::all(data);
  auto t1 = make(spec_of("mlp", {20}, 3, {16, 16}));
  auto t2 = make(spec_of("mlp", {20}, 3, {16, 16}));
  auto start = t1->init_params(2);
  ASSERT_TRUE(start.ok());
  TrainConfig cfg;
  cfg.batch_size = 16;
  cfg.momentum = 0.9;
  auto a = t1->train(*start, shard, 20, cfg, {}, 100, nullptr);
  auto b = t2->train(*start, shard, 20, cfg, {}, 100, nullptr);
  auto c = t1->train(*start, shard, 20, cfg, {}, 101, nullptr);
  // A trainer reused after another task gives the same result as a fresh one.
  auto d = t1->train(*start, shard, 20, cfg, {}, 100, nullptr);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_EQ(a->params.hash(), b->params.hash());
  EXPECT_EQ(a->params.hash(), d->params.hash());
  EXPECT_EQ(a->metrics.at("train_loss"), b->metrics.at("train_loss"));
  EXPECT_NE(a->params.hash(), c->params.hash());
  // Output keeps the caller's layout object.
  EXPECT_EQ(a->params.layout().get(), start->layout().get());
}

TEST(TorchTrainTest, TrainersOnParallelThreadsMatchSerialRuns) {
  set_torch_threads(1);
  auto data = blobs(200, 20, 3, 2.0, 9);
  const Shard shard = Shard::all(data);
  auto factory = make_trainer_factory(spec_of("mlp", {20}, 3, {16, 16}));
  ASSERT_TRUE(factory.ok());
  auto init = (*factory)();
  ASSERT_TRUE(init.ok());
  auto start = (*init)->init_params(2);
  ASSERT_TRUE(start.ok());
  TrainConfig cfg;
  std::vector<uint64_t> serial(3), parallel(3);
  for (size_t i = 0; i < serial.size(); ++i) {
    auto r = (*init)->train(*start, shard, 10, cfg, {}, 50 + i, nullptr);
    ASSERT_TRUE(r.ok());
    serial[i] = r->params.hash();
  }
  std::vector<std::thread> threads;
  for (size_t i = 0; i < parallel.size(); ++i) {
    threads.emplace_back([&, i] {
      auto t = (*factory)();
      if (!t.ok()) return;
      auto r = (*t)->train(*start, shard, 10, cfg, {}, 50 + i, nullptr);
      if (r.ok()) parallel[i] = r->params.hash();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(serial, parallel);
}

TEST(TorchTrainTest, StepsHonouredAndZeroLrLeavesParamsUnchanged) {
  auto data = blobs(50, 20, 3, 2.0, 1);
  const Shard shard = Shard::all(data);
  auto t = make(spec_of("logreg", {20}, 3));
  auto start = t->init_params(4);
  ASSERT_TRUE(start.ok());
  TrainConfig cfg;
  cfg.batch_size = 8;
  // 7 steps of 8 from 50 examples: one full pass (6 batches of 8, 1 of 2).
  auto r = t->train(*start, shard, 7, cfg, {}, 1, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->steps, 7);
  EXPECT_NE(r->params.hash(), start->hash());
  // The task config's lr overrides TrainConfig::lr.
  auto frozen = t->train(*start, shard, 13, cfg, {{"lr", 0.0}}, 1, nullptr);
  ASSERT_TRUE(frozen.ok()) << frozen.status().to_string();
  EXPECT_EQ(frozen->steps, 13);
  EXPECT_EQ(frozen->params.hash(), start->hash());
  EXPECT_GT(frozen->metrics.at("train_loss"), 0.0);
  // An integer lr in the task config counts too.
  auto frozen2 = t->train(*start, shard, 3, cfg, {{"lr", int64_t{0}}}, 1, nullptr);
  ASSERT_TRUE(frozen2.ok());
  EXPECT_EQ(frozen2->params.hash(), start->hash());
}

TEST(TorchTrainTest, BatchLargerThanShardUsesWholeShard) {
  auto data = blobs(10, 20, 3, 2.0, 1);
  const Shard shard = Shard::all(data);
  auto t = make(spec_of("logreg", {20}, 3));
  auto start = t->init_params(4);
  ASSERT_TRUE(start.ok());
  TrainConfig cfg;
  cfg.batch_size = 64;
  // Full-batch steps do not depend on the permutation, so any seed gives the same result
  // (up to the order of the float sums over the batch).
  auto a = t->train(*start, shard, 3, cfg, {}, 1, nullptr);
  auto b = t->train(*start, shard, 3, cfg, {}, 2, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t j = 0; j < a->params.flat().size(); ++j) {
    EXPECT_NEAR(a->params.flat()[j], b->params.flat()[j], 1e-6);
  }
}

}  // namespace
}  // namespace cohort::libtorch
