#include "cohort/sim/device_model.h"

#include <gtest/gtest.h>

namespace cohort::sim {
namespace {

TEST(DistributionTest, KindsAndClamping) {
  Rng rng(1);
  Distribution c = Distribution::constant(7.0);
  EXPECT_EQ(c.sample(rng), 7.0);
  Distribution u;
  u.kind = "uniform";
  u.low = 2.0;
  u.high = 4.0;
  for (int i = 0; i < 100; ++i) {
    double v = u.sample(rng);
    EXPECT_GE(v, 2.0);
    EXPECT_LT(v, 4.0);
  }
  Distribution n;
  n.kind = "normal";
  n.mean = 1.0;
  n.std = 10.0;
  n.min = 0.5;
  n.max = 2.0;
  for (int i = 0; i < 100; ++i) {
    double v = n.sample(rng);
    EXPECT_GE(v, 0.5);
    EXPECT_LE(v, 2.0);
  }
  Distribution ln;
  ln.kind = "lognormal";
  ln.mean = 3.0;
  ln.sigma = 0.5;
  double s = 0;
  for (int i = 0; i < 100000; ++i) s += ln.sample(rng);
  EXPECT_NEAR(s / 100000, 3.0, 0.05);
}

TEST(DistributionTest, ValidationNamesPath) {
  Distribution d;
  d.kind = "weibull";
  EXPECT_EQ(d.validate("clients.speed").message(),
            "clients.speed.distribution: unknown value 'weibull' (known: constant, normal, "
            "exponential, uniform, lognormal)");
  d.kind = "exponential";
  d.mean = 0;
  EXPECT_NE(d.validate("clients.speed").message().find("clients.speed.mean: must be > 0"),
            std::string::npos);
  d.kind = "uniform";
  d.low = 3;
  d.high = 1;
  EXPECT_NE(d.validate("x").message().find("x.low"), std::string::npos);
}

TEST(PopulationTest, SeededAndUnitsConverted) {
  PopulationOptions o;
  o.num_clients = 5;
  o.speed.kind = "exponential";
  o.speed.mean = 10.0;
  o.up_mbps = Distribution::constant(8.0);
  o.latency_ms = Distribution::constant(50.0);
  auto a = draw_population(o, 42);
  auto b = draw_population(o, 42);
  auto c = draw_population(o, 43);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_EQ(a->size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ((*a)[i].speed, (*b)[i].speed);
    EXPECT_EQ((*a)[i].up_bytes_per_s, 1e6);  // 8 Mbit/s
    EXPECT_EQ((*a)[i].latency_s, 0.05);
  }
  EXPECT_NE((*a)[0].speed, (*c)[0].speed);
  o.num_clients = 0;
  EXPECT_EQ(draw_population(o, 1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cohort::sim
