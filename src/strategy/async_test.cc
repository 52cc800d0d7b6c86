// FedAsync, FedBuff, their AsyncStrategy base and the staleness functions, against values
// computed by hand.
#include <cmath>

#include <gtest/gtest.h>

#include "cohort/strategy/fedasync.h"
#include "cohort/strategy/fedbuff.h"
#include "cohort/strategy/staleness.h"
#include "testing/fake_host.h"

namespace cohort {
namespace {

using testing::deliver;
using testing::FakeHost;
using testing::make_update;
using testing::make_vector;
using testing::task_of;
using testing::values;

TEST(StalenessTest, HandComputed) {
  StalenessFn c;
  EXPECT_EQ(c(0), 1.0);
  EXPECT_EQ(c(10), 1.0);
  StalenessFn poly{.kind = "polynomial", .a = 0.5};
  EXPECT_DOUBLE_EQ(poly(0), 1.0);
  EXPECT_DOUBLE_EQ(poly(3), 0.5);  // (3 + 1)^-0.5
  EXPECT_DOUBLE_EQ(poly(8), 1.0 / 3.0);
  StalenessFn hinge{.kind = "hinge", .a = 10, .b = 4};
  EXPECT_DOUBLE_EQ(hinge(4), 1.0);
  EXPECT_DOUBLE_EQ(hinge(5), 1.0 / 11.0);  // 1 / (10 (5 - 4) + 1)
  EXPECT_DOUBLE_EQ(hinge(6), 1.0 / 21.0);
  StalenessFn ex{.kind = "exponential", .a = 0.5};
  EXPECT_DOUBLE_EQ(ex(2), std::exp(-1.0));
}

TEST(StalenessTest, ParamsValidated) {
  ConfigRecord bad = {{"staleness", std::string("cubic")}};
  StrategyParams p("fedasync", bad);
  StalenessFn::read(p, "constant");
  EXPECT_EQ(p.finish().message(),
            "strategy.staleness: unknown staleness function 'cubic' (known: constant, "
            "polynomial, hinge, exponential)");
}

TEST(FedAsyncTest, ModelMixingWithStalenessHandComputed) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 10);
  FedAsync s({.alpha = 0.5, .mixing = "model", .staleness = {.kind = "polynomial", .a = 1.0}});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f, 0.0f})).ok());
  s.on_client_idle(0);
  s.on_client_idle(1);
  ASSERT_EQ(host.dispatched.size(), 2u);
  Task t0 = task_of(host, 0), t1 = task_of(host, 1);
  // Client 0 ends at (2, 4), staleness 0: α = 0.5 -> x = 0.5 * 0 + 0.5 * (2, 4) = (1, 2).
  ASSERT_TRUE(deliver(host, s, t0, {2.0f, 4.0f}, 10).ok());
  EXPECT_EQ(s.version(), 1);
  EXPECT_EQ(values(*s.global_model()), (std::vector<float>{1.0f, 2.0f}));
  // Client 1 started from version 0 (x_τ = (0, 0)), ends at (4, 0), staleness 1:
  // α = 0.5 * (1 + 1)^-1 = 0.25 -> x = 0.75 (1, 2) + 0.25 (4, 0) = (1.75, 1.5).
  ASSERT_TRUE(deliver(host, s, t1, {4.0f, 0.0f}, 10).ok());
  EXPECT_EQ(s.version(), 2);
  auto w = values(*s.global_model());
  EXPECT_FLOAT_EQ(w[0], 1.75f);
  EXPECT_FLOAT_EQ(w[1], 1.5f);
  // Client 0 was re-dispatched right away with version 1.
  EXPECT_EQ(task_of(host, 0).version, 1);
}

TEST(FedAsyncTest, GradientMixingWithUniformWeight) {
  FakeHost host;
  for (int i = 0; i < 4; ++i) host.add_client(i, 10);
  FedAsync s({.alpha = 0.8,
              .mixing = "gradient",
              .weighting = "uniform",
              .staleness = {.kind = "constant"}});
  ASSERT_TRUE(s.start(&host, make_vector({1.0f})).ok());
  s.on_client_idle(0);
  Task t = task_of(host, 0);
  // Δ = 1 - (-3) = 4; α_t = 0.8 * 1 * (1/4) = 0.2 -> x = 1 - 0.2 * 4 = 0.2.
  ASSERT_TRUE(deliver(host, s, t, {-3.0f}, 10).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], 0.2f);
}

TEST(FedAsyncTest, MaxStalenessRejectsAndKeepsModel) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 10);
  FedAsync s({.async = {.max_staleness = 0}, .alpha = 1.0, .staleness = {.kind = "constant"}});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  s.on_client_idle(1);
  Task t0 = task_of(host, 0), t1 = task_of(host, 1);
  ASSERT_TRUE(deliver(host, s, t0, {5.0f}, 10).ok());
  Status late = deliver(host, s, t1, {100.0f}, 10);
  EXPECT_EQ(late.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(late.message().find("staleness 1, above max_staleness 0"), std::string::npos);
  EXPECT_EQ(values(*s.global_model()), std::vector<float>{5.0f});
  // The rejected client is still given new work.
  EXPECT_EQ(task_of(host, 1).version, 1);
}

TEST(AsyncStrategyTest, ConcurrencyLimitAndLostTasks) {
  FakeHost host;
  for (int i = 0; i < 5; ++i) host.add_client(i, 10);
  FedAsync s({.async = {.max_concurrency = 2}});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  for (int i = 0; i < 5; ++i) s.on_client_idle(i);
  EXPECT_EQ(host.dispatched.size(), 2u);
  EXPECT_EQ(s.outstanding(), 2);
  // A lost task frees its slot for a random idle client.
  ClientId lost = host.dispatched[0].client;
  s.on_task_lost(lost, 0);
  EXPECT_EQ(s.outstanding(), 2);
  EXPECT_EQ(host.dispatched.size(), 3u);
  // An update from a client with no task outstanding is refused.
  Update stray;
  stray.client = 99;
  stray.delta = make_vector({0.0f});
  stray.num_examples = 1;
  Status st = s.on_update(std::move(stray));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message(), "update from client 99: no task outstanding for it");
  EXPECT_EQ(s.outstanding(), 2);
}

TEST(FedBuffTest, BufferOfTwoHandComputed) {
  FakeHost host;
  for (int i = 0; i < 3; ++i) host.add_client(i, 10 * (i + 1));
  FedBuff s({.buffer_size = 2,
             .server_lr = 1.0,
             .reduce = "mean",
             .example_weight = "equal",
             .staleness = {.kind = "polynomial", .a = 1.0}});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f, 0.0f})).ok());
  for (int i = 0; i < 3; ++i) s.on_client_idle(i);
  Task t0 = task_of(host, 0), t1 = task_of(host, 1), t2 = task_of(host, 2);
  // Δ0 = (0,0) - (2, 2) = (-2, -2), τ = 0, w = 1.
  ASSERT_TRUE(deliver(host, s, t0, {2.0f, 2.0f}, 10).ok());
  EXPECT_EQ(s.version(), 0);  // buffer holds 1 of 2
  EXPECT_EQ(s.buffered(), 1);
  // Δ1 = (-4, 0), τ = 0, w = 1 -> mean (-3, -1) -> x = (3, 1).
  ASSERT_TRUE(deliver(host, s, t1, {4.0f, 0.0f}, 20).ok());
  EXPECT_EQ(s.version(), 1);
  EXPECT_EQ(values(*s.global_model()), (std::vector<float>{3.0f, 1.0f}));
  // Client 0 was re-dispatched after its first update, before the flush: version 0, x = (0,0).
  // Client 2 also started from version 0. Both now have τ = 1, s = 1/2.
  // Δ2 = (0,0) - (8,8) = (-8,-8) -> (-4,-4);  client 0 ends (5,1): Δ = (-5,-1) -> (-2.5,-0.5).
  Task t0b = task_of(host, 0);
  EXPECT_EQ(t0b.version, 0);
  ASSERT_TRUE(deliver(host, s, t2, {8.0f, 8.0f}, 30).ok());
  ASSERT_TRUE(deliver(host, s, t0b, {5.0f, 1.0f}, 10).ok());
  // mean = (-6.5, -4.5) / 2 = (-3.25, -2.25) -> x = (3, 1) + (3.25, 2.25) = (6.25, 3.25).
  EXPECT_EQ(s.version(), 2);
  EXPECT_EQ(values(*s.global_model()), (std::vector<float>{6.25f, 3.25f}));
}

TEST(FedBuffTest, SumReduceLinearWeightsAndMomentum) {
  FakeHost host;
  host.add_client(0, 2);
  host.add_client(1, 3);
  FedBuff s({.buffer_size = 2,
             .server_lr = 0.5,
             .server_momentum = 0.5,
             .reduce = "sum",
             .example_weight = "linear",
             .staleness = {.kind = "constant"}});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  s.on_client_idle(1);
  Task t0 = task_of(host, 0), t1 = task_of(host, 1);
  // Δ0 = -1 (n=2), Δ1 = -2 (n=3): buffer = 2·(-1) + 3·(-2) = -8; v = -8; x = 0 - 0.5·(-8) = 4.
  ASSERT_TRUE(deliver(host, s, t0, {1.0f}, 2).ok());
  ASSERT_TRUE(deliver(host, s, t1, {2.0f}, 3).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], 4.0f);
  // Next flush: client 0 was re-dispatched before the first flush (version 0, x = 0), client 1
  // after it (version 1, x = 4); both end at 5: Δ_a = -5 (n=2), Δ_b = -1 (n=3) ->
  // buffer = 2·(-5) + 3·(-1) = -13; v = 0.5·(-8) + (-13) = -17; x = 4 + 0.5·17 = 12.5.
  Task a = task_of(host, 0), b = task_of(host, 1);
  EXPECT_EQ(a.version, 0);
  EXPECT_EQ(b.version, 1);
  ASSERT_TRUE(deliver(host, s, a, {5.0f}, 2).ok());
  ASSERT_TRUE(deliver(host, s, b, {5.0f}, 3).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], 12.5f);
}

TEST(FedBuffTest, RejectedUpdateDoesNotCount) {
  FakeHost host;
  host.add_client(0, 10);
  host.add_client(1, 10);
  FedBuff s({.buffer_size = 2});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  s.on_client_idle(1);
  Status nan = deliver(host, s, task_of(host, 0), {NAN}, 10);
  EXPECT_EQ(nan.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.buffered(), 0);
  Status zero = deliver(host, s, task_of(host, 1), {1.0f}, 0);
  EXPECT_EQ(zero.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.buffered(), 0);
  EXPECT_EQ(s.version(), 0);
}

TEST(AsyncRegistryTest, ParamsValidated) {
  EXPECT_EQ(make_strategy("fedbuff", {{"buffer_size", int64_t{0}}}).error().message(),
            "strategy.buffer_size: must be >= 1, got 0");
  EXPECT_EQ(make_strategy("fedasync", {{"alpha", 1.5}}).error().message(),
            "strategy.alpha: must be in (0, 1], got 1.5");
  EXPECT_EQ(make_strategy("fedasync", {{"mixing", std::string("avg")}}).error().message(),
            "strategy.mixing: unknown value 'avg' (known: model, gradient)");
  EXPECT_TRUE(make_strategy("fedbuff", {{"staleness", std::string("hinge")},
                                        {"staleness_a", 10.0},
                                        {"staleness_b", int64_t{4}}})
                  .ok());
}

}  // namespace
}  // namespace cohort

#include "cohort/strategy/async_local_sgd.h"

namespace cohort {
namespace {

TEST(AsyncLocalSgdTest, DelayedNesterovHandComputed) {
  FakeHost host;
  host.add_client(0, 10, /*steps=*/8);
  host.add_client(1, 10, /*steps=*/8);
  AsyncLocalSgd s({.outer_lr = 0.5, .outer_momentum = 0.5, .period = 2});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  s.on_client_idle(0);
  s.on_client_idle(1);
  Task t0 = task_of(host, 0), t1 = task_of(host, 1);
  EXPECT_EQ(t0.local_steps, 8);  // speeds unknown: H
  // Push 1 (not a milestone): g = 0 - 2 = -2 -> θ = 0 - 0.5 · (-2)/2 = 0.5.
  ASSERT_TRUE(deliver(host, s, t0, {2.0f}, 10).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], 0.5f);
  // Push 2 (milestone): g = 0 - 4 = -4; b = -6; m = 0.5·0 + (-6)/2 = -3;
  // θ = 0.5 - 0.5·(-4)/2 - 0.5·0.5·(-3) = 0.5 + 1 + 0.75 = 2.25.
  ASSERT_TRUE(deliver(host, s, t1, {4.0f}, 10).ok());
  EXPECT_FLOAT_EQ(values(*s.global_model())[0], 2.25f);
  EXPECT_EQ(s.version(), 2);
}

TEST(AsyncLocalSgdTest, DynamicLocalStepsScaleWithMeasuredSpeed) {
  FakeHost host;
  host.add_client(0, 10, 20);
  host.add_client(1, 10, 20);
  host.add_client(2, 10, 20);
  host.set_measured_speed(0, 100.0);
  host.set_measured_speed(1, 30.0);  // 0.3 of the fastest -> floor(0.3 · 20) = 6
  AsyncLocalSgd s({.inner_steps = 0});
  ASSERT_TRUE(s.start(&host, make_vector({0.0f})).ok());
  for (int i = 0; i < 3; ++i) s.on_client_idle(i);
  EXPECT_EQ(task_of(host, 0).local_steps, 20);
  EXPECT_EQ(task_of(host, 1).local_steps, 6);
  EXPECT_EQ(task_of(host, 2).local_steps, 20);  // not measured yet
}

}  // namespace
}  // namespace cohort
