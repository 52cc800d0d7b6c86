// Streaming DiLoCo on the server side: the staggered fragment schedule (each fragment every H
// inner steps, fragments H/P apart), which workers merge and which restart (join, loss), the
// outer step on one fragment by hand, and bad parameters.
#include "cohort/strategy/streaming_diloco.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "cohort/strategy/registry.h"
#include "cohort/strategy/task_config.h"
#include "testing/fake_host.h"
#include "testing/fedopt_reference.h"
#include "testing/round_driver.h"

namespace cohort {
namespace {

using testing::expect_near;
using testing::FakeHost;
using testing::lose_round;
using testing::make_vector;
using testing::open_round;
using testing::update_with_delta;
using testing::values;

StreamingDiLoCoOptions options(int64_t h, int64_t p, int64_t block) {
  StreamingDiLoCoOptions o;
  o.diloco.inner_steps = h;
  o.fragments = p;
  o.fragment_block = block;
  o.overlap = 1;
  o.alpha = 0.5;
  return o;
}

TaskStreaming streaming_of(const Task& t) {
  Result<std::optional<TaskStreaming>> s = task_streaming(t.config);
  EXPECT_TRUE(s.ok() && s->has_value());
  return s.ok() && s->has_value() ? **s : TaskStreaming{};
}

// Runs a round in which every task returns `delta` (from 100 examples).
void answer_all(Strategy& s, const std::vector<Task>& tasks, const std::vector<float>& delta) {
  for (const Task& t : tasks) ASSERT_TRUE(s.on_update(update_with_delta(t, delta, 100)).ok());
}

TEST(StreamingDiLoCoSchedule, EachFragmentEveryHStepsStaggeredByHOverP) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 100);
  const int64_t h = 12, p = 3;
  StreamingDiLoCo s(options(h, p, 2));
  ASSERT_TRUE(s.start(&host, make_vector(std::vector<float>(12, 0.0f))).ok());
  std::map<int64_t, std::vector<int64_t>> synced_at;  // fragment -> inner steps done at its syncs
  int64_t steps = 0;
  for (int r = 0; r < 9; ++r) {
    std::vector<Task> tasks = open_round(host, s, {0, 1});
    ASSERT_EQ(tasks.size(), 2u);
    const TaskStreaming ts = streaming_of(tasks[0]);
    EXPECT_EQ(tasks[0].local_steps, h / p);
    EXPECT_EQ(ts.fragments, p);
    EXPECT_EQ(ts.block, 2);
    EXPECT_EQ(ts.overlap, 1);
    EXPECT_DOUBLE_EQ(ts.alpha, 0.5);
    EXPECT_EQ(streaming_of(tasks[1]).fragment, ts.fragment);
    steps += tasks[0].local_steps;
    synced_at[ts.fragment].push_back(steps);
    // Round 1 restarts every worker; later rounds merge the previous round's fragment.
    EXPECT_EQ(ts.merge, r == 0 ? -1 : (ts.fragment + p - 1) % p) << "round " << r;
    answer_all(s, tasks, std::vector<float>(12, 0.0f));
  }
  ASSERT_EQ(synced_at.size(), static_cast<size_t>(p));
  std::vector<int64_t> first;
  for (const auto& [f, at] : synced_at) {
    for (size_t i = 1; i < at.size(); ++i) EXPECT_EQ(at[i] - at[i - 1], h) << "fragment " << f;
    first.push_back(at.front());
  }
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (std::vector<int64_t>{h / p, 2 * h / p, 3 * h / p}));
}

TEST(StreamingDiLoCoSchedule, JoinersAndLostWorkersRestart) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 100);
  StreamingDiLoCo s(options(4, 2, 1));
  ASSERT_TRUE(s.start(&host, make_vector({0, 0, 0, 0})).ok());
  std::vector<Task> r1 = open_round(host, s, {0, 1});
  answer_all(s, r1, {0, 0, 0, 0});
  // Round 2: worker 2 joins; 0 and 1 merge, 2 restarts. Worker 1's task is lost.
  host.add_client(2, 100);
  std::vector<Task> r2 = open_round(host, s, {0, 1, 2});
  ASSERT_EQ(r2.size(), 3u);
  EXPECT_GE(streaming_of(r2[0]).merge, 0);
  EXPECT_GE(streaming_of(r2[1]).merge, 0);
  EXPECT_EQ(streaming_of(r2[2]).merge, -1);
  ASSERT_TRUE(s.on_update(update_with_delta(r2[0], {0, 0, 0, 0}, 100)).ok());
  s.on_task_lost(r2[1].client, r2[1].version);
  ASSERT_TRUE(s.on_update(update_with_delta(r2[2], {0, 0, 0, 0}, 100)).ok());
  // Round 3: 0 and 2 took part in round 2 and merge; 1 lost its task and restarts.
  std::vector<Task> r3 = open_round(host, s, {0, 1, 2});
  ASSERT_EQ(r3.size(), 3u);
  EXPECT_GE(streaming_of(r3[0]).merge, 0);
  EXPECT_EQ(streaming_of(r3[1]).merge, -1);
  EXPECT_GE(streaming_of(r3[2]).merge, 0);
  answer_all(s, r3, {0, 0, 0, 0});
  // A round with every task lost: nobody merges in the next.
  ASSERT_TRUE(lose_round(host, s, {0, 1, 2}));
  std::vector<Task> r5 = open_round(host, s, {0, 1, 2});
  for (const Task& t : r5) EXPECT_EQ(streaming_of(t).merge, -1);
}

TEST(StreamingDiLoCoStep, OuterNesterovMovesTheRoundsFragmentOnly) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 300);
  StreamingDiLoCo s(options(2, 2, 1));  // fragment 0 = {0, 2}, fragment 1 = {1, 3}
  ASSERT_TRUE(s.start(&host, make_vector({1, 1, 1, 1})).ok());
  // Round 1 synchronises fragment 1: Delta = ((0, .2, 0, .4) + (0, .4, 0, 0)) / 2
  //   = (0, .3, 0, .2) (equal weights); m = Delta;
  //   theta = 1 - 0.7 (Delta + 0.9 m) = (1, 1 - 0.7 * 0.57, 1, 1 - 0.7 * 0.38)
  std::vector<Task> r1 = open_round(host, s, {0, 1});
  ASSERT_EQ(streaming_of(r1[0]).fragment, 1);
  ASSERT_TRUE(s.on_update(update_with_delta(r1[0], {0, 0.2f, 0, 0.4f}, 100)).ok());
  ASSERT_TRUE(s.on_update(update_with_delta(r1[1], {0, 0.4f, 0, 0}, 300)).ok());
  expect_near(values(*s.global_model()), {1, 0.601, 1, 0.734});
  // Round 2 synchronises fragment 0: Delta = (.1, 0, .1, 0); fragment 1 keeps its values and
  // its momentum (0.3, 0.2) although that momentum is not zero.
  std::vector<Task> r2 = open_round(host, s, {0, 1});
  ASSERT_EQ(streaming_of(r2[0]).fragment, 0);
  answer_all(s, r2, {0.1f, 0.5f, 0.1f, 0.5f});  // values off the fragment are ignored
  expect_near(values(*s.global_model()), {1 - 0.7 * 0.19, 0.601, 1 - 0.7 * 0.19, 0.734});
  std::vector<float> m = values(s.outer_momentum_buffer());
  EXPECT_NEAR(m[0], 0.1, 1e-6);
  EXPECT_NEAR(m[1], 0.3, 1e-6);
  EXPECT_NEAR(m[3], 0.2, 1e-6);
  EXPECT_EQ(s.version(), 2);
}

TEST(StreamingDiLoCoStep, MergeCodecCommitsTheDecodedChange) {
  FakeHost host;
  host.add_client(0, 100);
  host.add_client(1, 100);
  StreamingDiLoCoOptions o = options(2, 2, 100);
  o.merge_codec = "int8";
  StreamingDiLoCo s(o);
  StreamingDiLoCo exact(options(2, 2, 100));
  FakeHost host2 = host;
  const std::vector<float> zeros(2000, 0.0f);
  ASSERT_TRUE(s.start(&host, make_vector(zeros)).ok());
  ASSERT_TRUE(exact.start(&host2, make_vector(zeros)).ok());
  std::vector<float> delta(2000);
  for (size_t i = 0; i < delta.size(); ++i) delta[i] = 0.01f * static_cast<float>(i % 37) - 0.2f;
  answer_all(s, open_round(host, s, {0, 1}), delta);
  answer_all(exact, open_round(host2, exact, {0, 1}), delta);
  const std::vector<float> got = values(*s.global_model());
  const std::vector<float> want = values(*exact.global_model());
  // Fragment 1 (blocks 1, 3, ...) moved by about the exact step; fragment 0 did not move.
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if ((i / 100) % 2 == 0) {
      EXPECT_EQ(got[i], 0.0f) << i;
    } else {
      err += (got[i] - want[i]) * (got[i] - want[i]);
      norm += want[i] * want[i];
    }
  }
  EXPECT_GT(norm, 0.0);
  EXPECT_LT(std::sqrt(err / norm), 0.02);  // int8 with per-block scales
  // The next round's merging workers are told the change's encoded size (1000 values).
  std::vector<Task> r2 = open_round(host, s, {0, 1});
  const TaskStreaming ts = streaming_of(r2[0]);
  EXPECT_EQ(ts.merge, 1);
  EXPECT_GT(ts.merge_bytes, 1000);
  EXPECT_LT(ts.merge_bytes, 1000 * 4 / 3);
  EXPECT_EQ(streaming_of(open_round(host2, exact, {0, 1})[0]).merge_bytes, 0);
}

TEST(StreamingDiLoCoParams, BadValuesAreNamed) {
  for (const auto& [params, msg] : std::vector<std::pair<ConfigRecord, std::string>>{
           {{{"inner_steps", int64_t{0}}}, "inner_steps"},
           {{{"inner_steps", int64_t{10}}, {"fragments", int64_t{4}}}, "multiple of fragments"},
           {{{"inner_steps", int64_t{8}}, {"fragments", int64_t{0}}}, "fragments"},
           {{{"inner_steps", int64_t{8}}, {"overlap", int64_t{2}}}, "overlap"},
           {{{"inner_steps", int64_t{8}}, {"alpha", 1.5}}, "alpha"},
           {{{"inner_steps", int64_t{8}}, {"fragment_block", int64_t{0}}}, "fragment_block"},
           {{{"inner_steps", int64_t{8}}, {"outer_optimizer", std::string("adamw")}},
            "takes sgd"},
           {{{"inner_steps", int64_t{8}}, {"merge_codec", std::string("int9")}}, "merge_codec"},
           {{{"inner_steps", int64_t{8}}, {"merge_codec", std::string("topk:0.1")}},
            "sparsifies"}}) {
    Result<std::unique_ptr<Strategy>> s = make_strategy("streaming_diloco", params);
    ASSERT_FALSE(s.ok()) << msg;
    EXPECT_NE(s.error().message().find(msg), std::string::npos) << s.error().message();
  }
  Result<std::unique_ptr<Strategy>> ok = make_strategy(
      "streaming_diloco", {{"inner_steps", int64_t{8}}, {"overlap", int64_t{1}}, {"alpha", 0.5}});
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ((*ok)->name(), "streaming_diloco");
}

}  // namespace
}  // namespace cohort
