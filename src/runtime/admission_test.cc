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
