// BandwidthMeter: transfers spread evenly over their seconds, by hand.
#include "cohort/runtime/bandwidth.h"

#include <gtest/gtest.h>

namespace cohort::runtime {
namespace {

TEST(BandwidthMeterTest, SpreadsTransfersOverTheirSecondsAndKeepsThePeak) {
  BandwidthMeter m;
  EXPECT_EQ(m.peak(), 0.0);
  // 1000 bytes over [0.5, 2.5): 250 in [0,1), 500 in [1,2), 250 in [2,3).
  m.add(0.5, 2.5, 1000);
  EXPECT_DOUBLE_EQ(m.peak(), 500.0);
  // 300 bytes at once at t = 2.2: second 2 holds 550.
  m.add(2.2, 2.2, 300);
  EXPECT_DOUBLE_EQ(m.peak(), 550.0);
  // A long transfer [10, 20) of 100 bytes adds 10 per second: the peak stays.
  m.add(10.0, 20.0, 100);
  EXPECT_DOUBLE_EQ(m.peak(), 550.0);
  EXPECT_DOUBLE_EQ(m.total(), 1400.0);
  // Nothing for empty or non-finite transfers.
  m.add(0.0, 1.0, 0);
  m.add(0.0, 1.0 / 0.0, 5);
  EXPECT_DOUBLE_EQ(m.total(), 1400.0);
  EXPECT_DOUBLE_EQ(m.sync_peak(), 550.0);  // nothing initial yet
}

TEST(BandwidthMeterTest, TheSyncPeakLeavesOutInitialDownloads) {
  BandwidthMeter m;
  m.add(0.0, 0.5, 800, /*initial=*/true);  // the model's first distribution
  m.add(0.5, 1.0, 100);
  m.add(5.0, 5.5, 300);
  EXPECT_DOUBLE_EQ(m.peak(), 900.0);
  EXPECT_DOUBLE_EQ(m.sync_peak(), 300.0);
  EXPECT_DOUBLE_EQ(m.total(), 1200.0);
}

}  // namespace
}  // namespace cohort::runtime
