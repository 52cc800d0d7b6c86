#include "cohort/trainer/trainer.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cohort {
namespace {

using ::testing::HasSubstr;

TEST(TrainConfigTest, StepsForEpochsAndFixedSteps) {
  TrainConfig c;
  c.batch_size = 32;
  c.local_epochs = 1.0;
  EXPECT_EQ(c.steps_for(100), 4);  // ceil(100 / 32)
  EXPECT_EQ(c.steps_for(0), 1);    // at least one step
  c.local_epochs = 2.5;
  EXPECT_EQ(c.steps_for(64), 5);
  c.local_steps = 7;
  EXPECT_EQ(c.steps_for(100000), 7);
}

TEST(TrainConfigTest, ValidateNamesTheField) {
  TrainConfig c;
  EXPECT_TRUE(c.validate().ok());
  auto message = [](TrainConfig t) {
    return t.validate().message();
  };
  TrainConfig t;
  t.lr = 0;
  EXPECT_EQ(message(t), "training.lr: must be > 0, got 0");
  t = TrainConfig();
  t.lr = std::nan("");
  EXPECT_EQ(message(t), "training.lr: must be > 0, got nan");
  t = TrainConfig();
  t.momentum = 1;
  EXPECT_EQ(message(t), "training.momentum: must be in [0, 1), got 1");
  t = TrainConfig();
  t.weight_decay = -0.5;
  EXPECT_EQ(message(t), "training.weight_decay: must be >= 0, got -0.5");
  t = TrainConfig();
  t.batch_size = 0;
  EXPECT_EQ(message(t), "training.batch_size: must be >= 1, got 0");
  t = TrainConfig();
  t.local_epochs = 0;
  EXPECT_EQ(message(t), "training.local_epochs: must be > 0 when local_steps is 0, got 0");
  t.local_steps = 3;  // epochs no longer matter
  EXPECT_TRUE(t.validate().ok());
  t = TrainConfig();
  t.optimizer = "adam";
  EXPECT_EQ(message(t), "training.optimizer: unknown optimizer 'adam' (known: sgd, adamw)");
}

TEST(TaskTrainingTest, TaskOverridesAreTypedAndValidatedOnce) {
  TrainConfig base;
  base.lr = 0.05;
  auto r = resolve_task_training(base, {});
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->config.lr, 0.05);
  EXPECT_DOUBLE_EQ(r->prox_mu, 0.0);

  ConfigRecord task;
  set_task_lr(task, 0.2);
  set_task_prox_mu(task, 0.01);
  r = resolve_task_training(base, task);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->config.lr, 0.2);
  EXPECT_DOUBLE_EQ(r->prox_mu, 0.01);
  task[kLrKey] = int64_t{1};  // an integer lr is a number too
  EXPECT_DOUBLE_EQ(resolve_task_training(base, task)->config.lr, 1.0);

  set_task_lr(task, -0.5);
  EXPECT_EQ(resolve_task_training(base, task).error().message(),
            "task config lr: must be >= 0, got -0.5");
  set_task_lr(task, 0.0);  // a strategy may freeze a task
  EXPECT_DOUBLE_EQ(resolve_task_training(base, task)->config.lr, 0.0);
  set_task_lr(task, 0.1);
  set_task_prox_mu(task, -1);
  EXPECT_EQ(resolve_task_training(base, task).error().message(),
            "task config prox_mu: must be >= 0, got -1");
  task[kProxMuKey] = std::string("big");
  EXPECT_THAT(resolve_task_training(base, task).error().message(),
              HasSubstr("task config 'prox_mu' must be a number"));
  // A round's lr schedule scales the task's lr, or the run's without one.
  set_task_prox_mu(task, 0.0);
  set_task_lr_scale(task, 0.5);
  EXPECT_DOUBLE_EQ(resolve_task_training(base, task)->config.lr, 0.05);
  task.erase(kLrKey);
  EXPECT_DOUBLE_EQ(resolve_task_training(base, task)->config.lr, 0.025);
  set_task_lr_scale(task, 0.0);  // the end of a schedule decaying to 0, with another optimizer
  set_task_optimizer(task, "adamw");
  EXPECT_DOUBLE_EQ(resolve_task_training(base, task)->config.lr, 0.0);
  for (const double bad : {-0.5, std::nan("")}) {
    set_task_lr_scale(task, bad);
    EXPECT_THAT(resolve_task_training(base, task).error().message(),
                HasSubstr("task config 'lr_scale' must be a finite number >= 0"));
  }
  task.erase(kLrScaleKey);
  // The run's config is checked as well: a trainer never sees an invalid one.
  TrainConfig bad = base;
  bad.batch_size = 0;
  EXPECT_EQ(resolve_task_training(bad, {}).error().message(),
            "training.batch_size: must be >= 1, got 0");
}

TEST(TaskTrainingTest, ClientStateRuleRoundTrips) {
  ConfigRecord c;
  EXPECT_EQ(*task_client_state(c), ClientStateRule::kNone);
  set_task_client_state(c, ClientStateRule::kScaffold);
  EXPECT_EQ(std::get<std::string>(c.at(kClientStateKey)), "scaffold");
  EXPECT_EQ(*task_client_state(c), ClientStateRule::kScaffold);
  set_task_client_state(c, ClientStateRule::kNone);
  EXPECT_EQ(c.count(kClientStateKey), 0u);
  c[kClientStateKey] = std::string("fedxyz");
  EXPECT_EQ(task_client_state(c).error().message(),
            "task config 'client_state': unknown client-state rule 'fedxyz' (known: scaffold)");
}

}  // namespace
}  // namespace cohort
