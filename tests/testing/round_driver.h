// Helpers that drive whole rounds of a RoundStrategy on a FakeHost: the public harness's
// (cohort/strategy/harness.h).
#pragma once

#include <vector>

#include "testing/fake_host.h"

namespace cohort::testing {

using harness::lose_round;
using harness::open_round;
using harness::run_round;

// An update from `task` whose pseudo-gradient (start - end) is `delta`.
inline Update update_with_delta(const Task& task, const std::vector<float>& delta,
                                int64_t examples) {
  return harness::update_with_delta(task, delta, examples);
}

}  // namespace cohort::testing
