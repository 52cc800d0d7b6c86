// A test hook for the durability tests (tests/integration/durability_test.py): with
// COHORT_TEST_CRASH_AT=POINT or POINT:N in the environment, the server kills itself with
// SIGKILL the N-th time (default: the first) it reaches POINT. Without the variable a point
// costs one relaxed atomic load. Points, in the order an update meets them:
//
//   received            the update's bytes are assembled and admitted, not yet folded
//   folded              the strategy folded it in (a commit may have followed), no checkpoint
//   checkpoint_write    a checkpoint holding it is about to be written
//   checkpoint_written  the checkpoint is on disk, the acknowledgement not yet sent
//   acked               the acknowledgement is about to be returned
//
// Internal to cohort_deploy.
#pragma once

namespace cohort::deploy {

void crash_point(const char* point);

}  // namespace cohort::deploy
