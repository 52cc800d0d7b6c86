// FakeHost: the public strategy harness (cohort/strategy/harness.h) under the name the
// project's strategy tests use.
#pragma once

#include "cohort/strategy/harness.h"

namespace cohort::testing {

using FakeHost = harness::ManualHost;
using harness::deliver;
using harness::has_task;
using harness::make_update;
using harness::make_vector;
using harness::task_of;
using harness::values;

}  // namespace cohort::testing
