#include "cohort/runtime/client_metrics.h"

#include <gtest/gtest.h>

namespace cohort::runtime {
namespace {

TEST(ClientMetricsMeanTest, ExampleWeightedMeanOverAcceptedUpdatesIntoCommitEvents) {
  ClientMetricsMean m;
  m.begin({{"train_loss", 1.0}, {"acc", 0.5}}, 100);
  m.end(true);
  m.begin({{"train_loss", 3.0}}, 300);
  m.end(true);
  m.begin({{"train_loss", 100.0}}, 1000);  // rejected: not counted
  m.end(false);
  Json other = {{"event", "eval"}};
  m.annotate(other);
  EXPECT_FALSE(other.contains("client_metrics"));  // not a commit event
  // The update being handled when the strategy commits is part of the round.
  m.begin({{"train_loss", 2.0}}, 100);
  Json round = {{"event", "round"}};
  m.annotate(round);
  m.end(true);  // already counted
  ASSERT_TRUE(round.contains("client_metrics"));
  // (100*1 + 300*3 + 100*2) / 500 = 2.4; acc only from the first: 0.5.
  EXPECT_DOUBLE_EQ(round["client_metrics"]["train_loss"].get<double>(), 2.4);
  EXPECT_DOUBLE_EQ(round["client_metrics"]["acc"].get<double>(), 0.5);
  // Started over: the next commit event with no metrics gets none.
  Json next = {{"event", "buffer_flush"}};
  m.annotate(next);
  EXPECT_FALSE(next.contains("client_metrics"));
}

TEST(ClientMetricsMeanTest, NonFiniteValuesAreLeftOut) {
  ClientMetricsMean m;
  m.begin({{"train_loss", std::nan("")}, {"x", 1.0}}, 10);
  m.end(true);
  Json e = {{"event", "update"}};
  m.annotate(e);
  EXPECT_FALSE(e["client_metrics"].contains("train_loss"));
  EXPECT_DOUBLE_EQ(e["client_metrics"]["x"].get<double>(), 1.0);
}

}  // namespace
}  // namespace cohort::runtime
