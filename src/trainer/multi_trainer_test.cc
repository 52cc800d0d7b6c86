// MultiTrainer: the models laid end to end under their names, a task training one model (the
// others untouched) or all of them, and each model's evaluation, against QuadraticTrainer by hand.
#include "cohort/trainer/multi_trainer.h"

#include <gtest/gtest.h>

#include "cohort/strategy/task_config.h"
#include "testing/fake_trainer.h"

namespace cohort {
namespace {

using testing::line_dataset;
using testing::quadratic_factory;

TrainerFactory two_models() {
  return *MultiTrainer::factory({{"small", quadratic_factory(1)}, {"big", quadratic_factory(2)}});
}

TEST(MultiTrainerTest, ModelsLieEndToEndUnderTheirNames) {
  auto t = *two_models()();
  ArrayRecord init = *t->init_params(9);
  EXPECT_EQ(init.layout()->describe(), "small/w[1] big/w[2]");
  // The first model starts as it would alone, the second from a seed of its own.
  testing::QuadraticTrainer alone(1);
  EXPECT_EQ(init.flat()[0], alone.init_params(9)->flat()[0]);
  testing::QuadraticTrainer second(2);
  ArrayRecord s = *second.init_params(Rng::mix_seed(9, "model", 1));
  EXPECT_EQ(init.flat()[1], s.flat()[0]);
  EXPECT_EQ(init.flat()[2], s.flat()[1]);
}

TEST(MultiTrainerTest, ATaskTrainsItsModelOnlyOrAllOfThem) {
  auto t = *two_models()();
  ArrayRecord start = *t->init_params(1);
  for (float& v : start.flat()) v = 0.0f;
  Shard shard{line_dataset(4), {1, 3}};  // targets: (2, 4) -> small (2), big (2, 4)
  TrainConfig config;
  config.lr = 0.5;
  ConfigRecord task;
  set_task_model(task, 1);
  Result<TrainResult> r = t->train(start, shard, 1, config, task, 3, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // One step at lr 0.5 halves the distance to the target: big (1, 2); small untouched.
  EXPECT_EQ(r->params.flat()[0], 0.0f);
  EXPECT_FLOAT_EQ(r->params.flat()[1], 1.0f);
  EXPECT_FLOAT_EQ(r->params.flat()[2], 2.0f);
  EXPECT_EQ(r->steps, 1);
  EXPECT_EQ(r->num_examples, 2);
  EXPECT_TRUE(r->metrics.count("big/train_loss"));
  EXPECT_FALSE(r->metrics.count("small/train_loss"));
  r = t->train(start, shard, 1, config, ConfigRecord{}, 3, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_FLOAT_EQ(r->params.flat()[0], 1.0f);
  EXPECT_FLOAT_EQ(r->params.flat()[1], 1.0f);
  EXPECT_FLOAT_EQ(r->params.flat()[2], 2.0f);
  set_task_model(task, 2);
  r = t->train(start, shard, 1, config, task, 3, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("task config model: 2 is not one of the 2 models"),
            std::string::npos);
}

TEST(MultiTrainerTest, EvaluationReportsEachModelAndTheirMeans) {
  auto t = *two_models()();
  ArrayRecord p = *t->init_params(1);
  p.flat()[0] = 2.0f;  // small at its target: loss 0, accuracy 1
  p.flat()[1] = 2.0f;  // big 2 away in its second coordinate: loss 2, accuracy 1/3
  p.flat()[2] = 2.0f;
  Result<EvalResult> e = t->evaluate(p, Shard{line_dataset(4), {1, 3}});
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  ASSERT_EQ(e->parts.size(), 2u);
  EXPECT_EQ(e->parts[0].name, "small");
  EXPECT_DOUBLE_EQ(e->parts[0].loss, 0.0);
  EXPECT_DOUBLE_EQ(e->parts[0].accuracy, 1.0);
  EXPECT_EQ(e->parts[1].name, "big");
  EXPECT_DOUBLE_EQ(e->parts[1].loss, 2.0);
  EXPECT_DOUBLE_EQ(e->parts[1].accuracy, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(e->loss, 1.0);
  EXPECT_DOUBLE_EQ(e->accuracy, (1.0 + 1.0 / 3.0) / 2);
}

TEST(MultiTrainerTest, BadModelsAndLayoutsAreRefused) {
  EXPECT_FALSE(MultiTrainer::factory({}).ok());
  EXPECT_NE(MultiTrainer::factory({{"a/b", quadratic_factory(1)}}).error().message().find(
                "'a/b' cannot name a model"),
            std::string::npos);
  EXPECT_NE(MultiTrainer::factory({{"a", quadratic_factory(1)}, {"a", quadratic_factory(1)}})
                .error()
                .message()
                .find("'a' names two models"),
            std::string::npos);
  auto t = *two_models()();
  ArrayRecord plain(*ArrayLayout::create({{"w", {3}}}));
  Result<EvalResult> e = t->evaluate(plain, Shard{line_dataset(4), {1}});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("holds 0 models, the trainer 2"), std::string::npos);
}

}  // namespace
}  // namespace cohort
