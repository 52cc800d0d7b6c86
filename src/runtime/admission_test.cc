#include "cohort/runtime/admission.h"

#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/fake_host.h"

namespace cohort {
namespace {

using ::cohort::testing::make_vector;
using ::testing::HasSubstr;

Task task_at(ModelVersion v, bool with_state = false) {
  Task t;
  t.client = 4;
  t.version = v;
  t.model = std::make_shared<const ArrayRecord>(make_vector({1.0f, 2.0f}));
  if (with_state) t.server_state = std::make_shared<const ArrayRecord>(make_vector({0.0f, 0.0f}));
  return t;
}

Update update_for(const Task& t) {
  Update u;
  u.client = t.client;
  u.base_version = t.version;
  u.delta = ArrayRecord(t.model->layout());
  u.num_examples = 5;
  u.local_steps = 2;
  return u;
}

TEST(AdmissionTest, AcceptsAWellFormedUpdate) {
  Task t = task_at(3);
  EXPECT_TRUE(admit_update(update_for(t), t).ok());
  Task ts = task_at(3, true);
  Update u = update_for(ts);
  u.state_delta = ArrayRecord(ts.model->layout());
  EXPECT_TRUE(admit_update(u, ts).ok());
}

TEST(AdmissionTest, EachCheckNamesWhatWasWrong) {
  Task t = task_at(3);
  Update u = update_for(t);
  u.base_version = 2;
  Status s = admit_update(u, t);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "update from client 4: base_version 2 but its task was for version 3");

  u = update_for(t);
  u.delta = make_vector({1.0f, 2.0f, 3.0f});
  s = admit_update(u, t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("array 'w' has shape [3], expected [2]"));

  u = update_for(t);
  u.delta.flat()[1] = std::numeric_limits<float>::quiet_NaN();
  s = admit_update(u, t);
  EXPECT_EQ(s.message(), "update from client 4: array 'w' element 1 is NaN");
  u.delta.flat()[1] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(admit_update(u, t).message(), "update from client 4: array 'w' element 1 is infinite");

  u = update_for(t);
  u.num_examples = 0;
  EXPECT_THAT(admit_update(u, t).message(), HasSubstr("num_examples must be > 0, got 0"));
  u = update_for(t);
  u.local_steps = -1;
  EXPECT_THAT(admit_update(u, t).message(), HasSubstr("local_steps must be >= 0, got -1"));
}

TEST(AdmissionTest, StateDeltaMustMatchTheTask) {
  Task plain = task_at(0);
  Update u = update_for(plain);
  u.state_delta = ArrayRecord(plain.model->layout());
  EXPECT_THAT(admit_update(u, plain).message(), HasSubstr("its task carries no server state"));

  Task with = task_at(0, true);
  u = update_for(with);
  EXPECT_THAT(admit_update(u, with).message(), HasSubstr("carries no state delta"));
  u.state_delta = make_vector({1.0f});
  EXPECT_THAT(admit_update(u, with).message(), HasSubstr("state delta"));
  u.state_delta = make_vector({1.0f, std::nanf("")});
  EXPECT_EQ(admit_update(u, with).message(),
            "update from client 4 state delta: array 'w' element 1 is NaN");
}

}  // namespace
}  // namespace cohort

namespace cohort {
namespace {

using ::cohort::testing::make_vector;
using ::testing::HasSubstr;

Task vector_task(std::vector<float> model, int64_t steps = 4) {
  Task t;
  t.client = 2;
  t.local_steps = steps;
  t.model = std::make_shared<const ArrayRecord>(make_vector(model));
  return t;
}

Update vector_update(const Task& t, std::vector<float> delta, int64_t examples = 10) {
  Update u;
  u.client = t.client;
  u.base_version = t.version;
  u.delta = make_vector(delta);
  u.num_examples = examples;
  u.local_steps = t.local_steps;
  return u;
}

TEST(AdmissionBoundsTest, ClaimedExamplesAreBoundedByWhatTheClientRegistered) {
  Admission a;
  Task t = vector_task({0, 0});
  Update u = vector_update(t, {0.1f, 0.1f}, 100);
  EXPECT_TRUE(a.admit(u, t, {.registered_examples = 100}, nullptr).ok());
  u.num_examples = 101;
  Status s = a.admit(u, t, {.registered_examples = 100}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "update from client 2: claims 101 examples, at most 100 (it registered 100)");
  // A client that registered none is held to the clients' median.
  u.num_examples = 1000000000000;
  s = a.admit(u, t, {.registered_examples = 0, .typical_examples = 50}, nullptr);
  EXPECT_THAT(s.message(), HasSubstr("at most 50 (it registered none; the clients' median is 50)"));
  // An absolute cap applies on top.
  Admission capped({.max_examples_factor = 10, .max_examples = 200});
  u.num_examples = 300;
  EXPECT_THAT(capped.admit(u, t, {.registered_examples = 100}, nullptr).message(),
              HasSubstr("at most 200"));
}

TEST(AdmissionBoundsTest, ClientSuppliedSizesAreBounded) {
  Admission a({.max_metrics = 2, .max_metric_key_bytes = 8});
  Task t = vector_task({0, 0}, 5);
  Update u = vector_update(t, {0.1f, 0.1f});
  u.local_steps = 6;
  EXPECT_THAT(a.admit(u, t, {.registered_examples = 10}, nullptr).message(),
              HasSubstr("reports 6 local steps, its task asked for 5"));
  u.local_steps = 5;
  u.metrics = {{"a", 1}, {"b", 2}, {"c", 3}};
  EXPECT_THAT(a.admit(u, t, {.registered_examples = 10}, nullptr).message(),
              HasSubstr("3 metrics, at most 2"));
  u.metrics = {{"a_very_long_name", 1}};
  EXPECT_THAT(a.admit(u, t, {.registered_examples = 10}, nullptr).message(),
              HasSubstr("metric name of 16 bytes, at most 8"));
  u.metrics = {{"loss", std::nan("")}};
  EXPECT_THAT(a.admit(u, t, {.registered_examples = 10}, nullptr).message(),
              HasSubstr("metric 'loss' is nan"));
}

TEST(AdmissionBoundsTest, WarmupBoundFollowsTheModelOfEachTask) {
  // Before the window is warm the bound is norm_factor x the task's model norm; the norm is
  // computed once per model, so alternating models must each get their own bound.
  Admission a({.norm_factor = 10});
  Task small = vector_task({3, 4});    // norm 5: bound 50
  Task large = vector_task({30, 40});  // norm 50: bound 500
  for (int i = 0; i < 2; ++i) {
    Update u = vector_update(small, {60, 80});  // norm 100
    EXPECT_THAT(a.admit(u, small, {.registered_examples = 10}, nullptr).message(),
                HasSubstr("exceeds the bound 50 "));
    u = vector_update(large, {60, 80});
    EXPECT_TRUE(a.admit(u, large, {.registered_examples = 10}, nullptr).ok());
  }
  // A new model object (the old one gone) is measured afresh, whatever its address.
  small.model.reset();
  small.model = std::make_shared<const ArrayRecord>(make_vector({0.0f, 0.5f}));  // bound 5
  Update u = vector_update(small, {6, 8});
  EXPECT_THAT(a.admit(u, small, {.registered_examples = 10}, nullptr).message(),
              HasSubstr("exceeds the bound 5 "));
}

TEST(AdmissionBoundsTest, NormBoundFollowsRecentAcceptedUpdates) {
  for (const char* policy : {"reject", "clip", "downweight", "off"}) {
    SCOPED_TRACE(policy);
    Admission a({.norm_policy = policy, .norm_factor = 10, .norm_window = 4, .norm_warmup = 3});
    Task t = vector_task({0, 0});
    // Norm 5 (3, 4): the warm-up has no bound.
    for (int i = 0; i < 3; ++i) {
      Update u = vector_update(t, {3, 4});
      AdmissionOutcome out;
      ASSERT_TRUE(a.admit(u, t, {.registered_examples = 10}, &out).ok());
      EXPECT_DOUBLE_EQ(out.norm, 5.0);
      a.record_accepted(out.norm);
    }
    EXPECT_DOUBLE_EQ(a.norm_bound(), std::string(policy) == "off" ? INFINITY : 50.0);
    Update big = vector_update(t, {300, 400});  // norm 500, 100x the median
    AdmissionOutcome out;
    Status s = a.admit(big, t, {.registered_examples = 10}, &out);
    if (std::string(policy) == "reject") {
      EXPECT_EQ(s.message(),
                "update from client 2: update norm 500 exceeds the bound 50 "
                "(admission.norm_policy reject)");
    } else if (std::string(policy) == "clip") {
      ASSERT_TRUE(s.ok());
      EXPECT_TRUE(out.clipped);
      EXPECT_NEAR(big.delta.flat()[0], 30.0f, 1e-4);
      EXPECT_NEAR(big.delta.flat()[1], 40.0f, 1e-4);
      EXPECT_DOUBLE_EQ(out.norm, 50.0);
    } else if (std::string(policy) == "downweight") {
      ASSERT_TRUE(s.ok());
      EXPECT_TRUE(out.downweighted);
      EXPECT_EQ(big.num_examples, 1);  // floor(10 * 50 / 500)
    } else {
      EXPECT_TRUE(s.ok());
    }
  }
  // An absolute bound holds from the first update; the 3e38 delta of the issue is refused,
  // by max_abs_weight (on by default) and, without it, by max_norm.
  Task t = vector_task({0, 0});
  Update huge = vector_update(t, {3e38f, 0}, 1);
  EXPECT_THAT(Admission().admit(huge, t, {.registered_examples = 1}, nullptr).message(),
              HasSubstr("exceeds 1e+06 (admission.max_abs_weight)"));
  Admission a({.max_norm = 100, .max_abs_weight = 0});
  EXPECT_THAT(a.admit(huge, t, {.registered_examples = 1}, nullptr).message(),
              HasSubstr("exceeds the bound 100"));
}

TEST(AdmissionBoundsTest, OptionsAreValidated) {
  EXPECT_TRUE(AdmissionOptions().validate().ok());
  EXPECT_EQ(AdmissionOptions{.norm_policy = "shrink"}.validate().message(),
            "admission.norm_policy: unknown value 'shrink' (known: off, reject, clip, downweight)");
  EXPECT_EQ(AdmissionOptions{.max_examples_factor = 0.5}.validate().message(),
            "admission.max_examples_factor: must be >= 1, got 0.5");
}

}  // namespace
}  // namespace cohort
