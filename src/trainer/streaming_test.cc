// The Streaming DiLoCo worker rule by hand: a restart, the overlap-then-merge order with mixing
// alpha, the outer gradient of one fragment only, restarts for a worker that missed a round, an
// overlap as long as the task, the task keys' checks, and bad tasks.
#include "cohort/trainer/streaming.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace cohort {
namespace {

using ::testing::HasSubstr;

// Every step adds 1 to every parameter; records each call's steps.
class StepCounter : public Trainer {
 public:
  Result<ArrayRecord> init_params(uint64_t) override { return Status::internal("unused"); }
  Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                            const TrainConfig&, const ConfigRecord&, uint64_t,
                            const ArrayRecord*) override {
    calls.push_back(steps);
    TrainResult r;
    r.params = start.clone();
    for (float& v : r.params.flat()) v += static_cast<float>(steps);
    r.steps = steps;
    r.num_examples = shard.size();
    r.metrics["train_loss"] = static_cast<double>(calls.size());  // 1, then 2
    return r;
  }
  Result<EvalResult> evaluate(const ArrayRecord&, const Shard&) override { return EvalResult{}; }
  std::vector<int64_t> calls;
};

ArrayRecord vec(std::vector<float> v) {
  ArrayRecord r(*ArrayLayout::create({{"w", {static_cast<int64_t>(v.size())}}}));
  std::copy(v.begin(), v.end(), r.flat().begin());
  return r;
}

std::vector<float> values(const ArrayRecord& r) { return {r.flat().begin(), r.flat().end()}; }

class StreamingRule : public ::testing::Test {
 protected:
  Task task_with(std::vector<float> g, int64_t steps) {
    Task t;
    t.client = 3;
    t.model = std::make_shared<const ArrayRecord>(vec(std::move(g)));
    t.local_steps = steps;
    return t;
  }
  Shard shard{nullptr, {0, 1, 2}};
  TrainConfig training;
  StepCounter trainer;
};

TEST_F(StreamingRule, RestartTrainsFromTheTaskModel) {
  // P = 2, blocks of 1: fragment 0 = elements {0, 2}, fragment 1 = {1, 3}.
  TaskStreaming s{.fragments = 2, .fragment = 1, .block = 1, .round = 0, .merge = -1,
                  .overlap = 2, .alpha = 0.5};
  KeptModel kept;
  Task t = task_with({5, 6, 7, 8}, 4);
  Result<TrainResult> r = train_streaming(trainer, t, s, shard, training, 1, kept);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(trainer.calls, (std::vector<int64_t>{4}));  // no overlap phase on a restart
  EXPECT_EQ(values(kept.local), (std::vector<float>{9, 10, 11, 12}));
  EXPECT_EQ(values(kept.anchor), (std::vector<float>{5, 6, 7, 8}));
  EXPECT_EQ(kept.round, 0);
  // Outer gradient of fragment 1 only: anchor - local = -4 on elements 1 and 3.
  EXPECT_EQ(values(r->params), (std::vector<float>{0, -4, 0, -4}));
  EXPECT_EQ(r->steps, 4);
  EXPECT_EQ(r->num_examples, 3);
}

TEST_F(StreamingRule, OverlapThenMergeWithMixingThenRest) {
  KeptModel kept{vec({10, 20, 30, 40}), vec({1, 2, 3, 4}), 6};
  // Round 7 syncs fragment 0 and merges fragment 1 (round 6's) after 2 of its 5 steps.
  TaskStreaming s{.fragments = 2, .fragment = 0, .block = 1, .round = 7, .merge = 1,
                  .overlap = 2, .alpha = 0.5};
  Task t = task_with({5, 6, 7, 8}, 5);
  Result<TrainResult> r = train_streaming(trainer, t, s, shard, training, 1, kept);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(trainer.calls, (std::vector<int64_t>{2, 3}));
  // After 2 steps: (12, 22, 32, 42). Merge fragment 1: 0.5 * 6 + 0.5 * 22 = 14 and
  // 0.5 * 8 + 0.5 * 42 = 25, anchors (6, 8). Three more steps: (15, 17, 35, 28).
  EXPECT_EQ(values(kept.local), (std::vector<float>{15, 17, 35, 28}));
  EXPECT_EQ(values(kept.anchor), (std::vector<float>{1, 6, 3, 8}));
  EXPECT_EQ(kept.round, 7);
  // Fragment 0's outer gradient: (1 - 15, 3 - 35) on elements 0 and 2.
  EXPECT_EQ(values(r->params), (std::vector<float>{-14, 0, -32, 0}));
  EXPECT_EQ(r->steps, 5);
  // train_loss weighted by steps: (1 * 2 + 2 * 3) / 5.
  EXPECT_DOUBLE_EQ(r->metrics.at("train_loss"), 8.0 / 5.0);
}

TEST_F(StreamingRule, AlphaZeroReplacesAndNoOverlapMergesFirst) {
  KeptModel kept{vec({10, 20, 30, 40}), vec({1, 2, 3, 4}), 0};
  TaskStreaming s{.fragments = 2, .fragment = 1, .block = 2, .round = 1, .merge = 0,
                  .overlap = 0, .alpha = 0.0};
  // Blocks of 2: fragment 0 = {0, 1}, fragment 1 = {2, 3}.
  Task t = task_with({5, 6, 7, 8}, 3);
  Result<TrainResult> r = train_streaming(trainer, t, s, shard, training, 1, kept);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(trainer.calls, (std::vector<int64_t>{3}));
  EXPECT_EQ(values(kept.local), (std::vector<float>{8, 9, 33, 43}));
  EXPECT_EQ(values(kept.anchor), (std::vector<float>{5, 6, 3, 4}));
  EXPECT_EQ(values(r->params), (std::vector<float>{0, 0, 3 - 33, 4 - 43}));
}

TEST_F(StreamingRule, OverlapAsLongAsTheTaskMergesAtItsEnd) {
  KeptModel kept{vec({10, 20}), vec({1, 2}), 4};
  TaskStreaming s{.fragments = 1, .fragment = 0, .block = 8, .round = 5, .merge = 0,
                  .overlap = 9, .alpha = 0.25};
  Task t = task_with({2, 4}, 3);
  Result<TrainResult> r = train_streaming(trainer, t, s, shard, training, 1, kept);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(trainer.calls, (std::vector<int64_t>{3}));
  // (13, 23) merged: 0.75 * (2, 4) + 0.25 * (13, 23) = (4.75, 8.75); anchor (2, 4).
  EXPECT_EQ(values(kept.local), (std::vector<float>{4.75f, 8.75f}));
  EXPECT_EQ(values(r->params), (std::vector<float>{2 - 4.75f, 4 - 8.75f}));
}

TEST_F(StreamingRule, AWorkerThatMissedARoundRestarts) {
  KeptModel kept{vec({10, 20}), vec({1, 2}), 3};  // trained round 3, the task is round 5
  TaskStreaming s{.fragments = 2, .fragment = 0, .block = 1, .round = 5, .merge = 1,
                  .overlap = 1, .alpha = 0.5};
  Task t = task_with({7, 9}, 2);
  ASSERT_TRUE(train_streaming(trainer, t, s, shard, training, 1, kept).ok());
  EXPECT_EQ(trainer.calls, (std::vector<int64_t>{2}));
  EXPECT_EQ(values(kept.local), (std::vector<float>{9, 11}));
  EXPECT_EQ(values(kept.anchor), (std::vector<float>{7, 9}));
  // A kept model of another layout restarts too.
  KeptModel other{vec({1, 2, 3}), vec({1, 2, 3}), 4};
  ASSERT_TRUE(train_streaming(trainer, t, s, shard, training, 1, other).ok());
  EXPECT_EQ(values(other.anchor), (std::vector<float>{7, 9}));
}

TEST_F(StreamingRule, BadTasks) {
  TaskStreaming s;
  KeptModel kept;
  Task t = task_with({1, 2}, 1);
  t.server_state = std::make_shared<const ArrayRecord>(vec({0, 0}));
  Result<TrainResult> r = train_streaming(trainer, t, s, shard, training, 1, kept);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("server_state"));
  EXPECT_THAT(r.error().message(), HasSubstr("client 3"));
  Task none;
  EXPECT_FALSE(train_streaming(trainer, none, s, shard, training, 1, kept).ok());
}

TEST(StreamingKeys, RoundTripAndRangeChecks) {
  ConfigRecord c;
  EXPECT_FALSE(task_streaming(c)->has_value());
  TaskStreaming s{.fragments = 4, .fragment = 3, .block = 256, .round = 9, .merge = 2,
                  .overlap = 5, .alpha = 0.5};
  set_task_streaming(c, s);
  Result<std::optional<TaskStreaming>> back = task_streaming(c);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->fragment, 3);
  EXPECT_EQ((*back)->block, 256);
  EXPECT_EQ((*back)->merge, 2);
  EXPECT_EQ((*back)->overlap, 5);
  EXPECT_DOUBLE_EQ((*back)->alpha, 0.5);
  // An integral double (a JSON round trip) is an integer.
  c[kStreamRoundKey] = 9.0;
  EXPECT_EQ((*task_streaming(c))->round, 9);
  ConfigRecord bad = c;
  bad[kStreamFragmentKey] = int64_t{4};
  EXPECT_THAT(task_streaming(bad).error().message(), HasSubstr("'stream_fragment' must be in"));
  bad = c;
  bad[kStreamAlphaKey] = 1.5;
  EXPECT_THAT(task_streaming(bad).error().message(), HasSubstr("stream_alpha"));
  bad = c;
  bad[kStreamBlockKey] = std::string("big");
  EXPECT_THAT(task_streaming(bad).error().message(), HasSubstr("'stream_block' must be an integer"));
  bad = c;
  bad.erase(kStreamMergeKey);
  EXPECT_THAT(task_streaming(bad).error().message(), HasSubstr("'stream_merge' is missing"));
}

}  // namespace
}  // namespace cohort
