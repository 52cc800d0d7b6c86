// Eager updates by hand: each worker's eager start (its fresh outer gradient for its share, the
// others' previous ones for theirs, an uncommitted outer step from the state before the last),
// outer gradients measured against the round's global model, the global model DiLoCo's, joiners
// starting from it, and bad parameters.
#include "cohort/strategy/eager_diloco.h"

#include <gtest/gtest.h>

#include "cohort/strategy/registry.h"
#include "cohort/strategy/task_config.h"
#include "testing/fake_host.h"
#include "testing/fedopt_reference.h"
#include "testing/round_driver.h"

namespace cohort {
namespace {

using testing::expect_near;
using testing::FakeHost;
using testing::make_vector;
using testing::open_round;
using testing::update_with_delta;
using testing::values;

int64_t overlap_of(const Task& t) { return *task_overlap_steps(t.config); }

TEST(EagerDiLoCo, EagerStartsAndGlobalModelByHand) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 100);
  DiLoCoOptions o;
  o.outer_lr = 0.5;
  o.outer_momentum = 0.5;
  o.inner_steps = 7;
  EagerDiLoCo s(o);
  ASSERT_TRUE(s.start(&host, make_vector({0, 0})).ok());
  // Round 1: plain DiLoCo. Delta = ((1, 0) + (0, 1)) / 2; m1 = (.5, .5);
  // G1 = 0 - 0.5 (Delta + 0.5 m1) = (-.375, -.375).
  std::vector<Task> r1 = open_round(host, s, {0, 1});
  EXPECT_EQ(overlap_of(r1[0]), 0);
  ASSERT_TRUE(s.on_update(update_with_delta(r1[0], {1, 0}, 100)).ok());
  ASSERT_TRUE(s.on_update(update_with_delta(r1[1], {0, 1}, 100)).ok());
  expect_near(values(*s.global_model()), {-0.375, -0.375});
  // Round 2: worker 0's estimate is its own share only (no previous round):
  // D0 = 0.5 (1, 0); x0 = G0 - 0.5 (D0 + 0.5 (0.5 m0 + D0)) = (-.375, 0); x1 = (0, -.375).
  std::vector<Task> r2 = open_round(host, s, {0, 1});
  expect_near(values(*r2[0].model), {-0.375, 0});
  expect_near(values(*r2[1].model), {0, -0.375});
  EXPECT_EQ(overlap_of(r2[0]), 7);  // the whole phase overlaps the round trip
  // Sent as start - end; measured against G1: (x - end) + (G1 - x).
  //   worker 0: (.2, .2) + (0, -.375) = (.2, -.175); worker 1: (.4, 0) + (-.375, 0) = (.025, 0)
  ASSERT_TRUE(s.on_update(update_with_delta(r2[0], {0.2f, 0.2f}, 100)).ok());
  ASSERT_TRUE(s.on_update(update_with_delta(r2[1], {0.4f, 0.0f}, 100)).ok());
  // Delta2 = (.1125, -.0875); m2 = .5 m1 + Delta2 = (.3625, .1625);
  // G2 = G1 - 0.5 (Delta2 + 0.5 m2) = (-.521875, -.371875).
  expect_near(values(*s.global_model()), {-0.521875, -0.371875});
  // Round 3 with a joiner: D0 = Delta1 - 0.5 (1, 0) + 0.5 (.2, -.175) = (.1, .4125);
  // x0 = G1 - 0.5 (D0 + 0.5 (0.5 m1 + D0)) = (-.5125, -.746875). Worker 2 starts from G2.
  host.add_client(2, 100);
  std::vector<Task> r3 = open_round(host, s, {0, 1, 2});
  ASSERT_EQ(r3.size(), 3u);
  expect_near(values(*r3[0].model), {-0.5125, -0.746875});
  expect_near(values(*r3[2].model), {-0.521875, -0.371875});
  EXPECT_EQ(overlap_of(r3[2]), 0);
  EXPECT_EQ(overlap_of(r3[1]), 7);
}

TEST(EagerDiLoCo, AWorkerThatMissedTheRoundStartsFromTheGlobalModel) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 100);
  EagerDiLoCo s(DiLoCoOptions{});
  ASSERT_TRUE(s.start(&host, make_vector({1, 1})).ok());
  std::vector<Task> r1 = open_round(host, s, {0, 1});
  ASSERT_TRUE(s.on_update(update_with_delta(r1[0], {0.1f, 0.1f}, 100)).ok());
  s.on_task_lost(r1[1].client, r1[1].version);
  std::vector<Task> r2 = open_round(host, s, {0, 1});
  EXPECT_GT(overlap_of(r2[0]), 0);
  EXPECT_EQ(overlap_of(r2[1]), 0);
  EXPECT_EQ(r2[1].model, s.global_model());
}

TEST(EagerDiLoCo, Params) {
  Result<std::unique_ptr<Strategy>> bad =
      make_strategy("eager_diloco", {{"outer_optimizer", std::string("adamw")}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("takes sgd"), std::string::npos);
  Result<std::unique_ptr<Strategy>> ok = make_strategy("eager_diloco", {{"inner_steps", int64_t{5}}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->name(), "eager_diloco");
  EXPECT_FALSE((*ok)->accepts_streamed_delta());
}

}  // namespace
}  // namespace cohort
