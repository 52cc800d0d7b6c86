#include "cohort/sim/device_model.h"

#include <filesystem>
#include <fstream>

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
  EXPECT_NE(d.validate("x").message().find("x.high: must be > low (3)"), std::string::npos);
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

// ---------------------------------------------------------------------------------------
// Device traces.

constexpr const char* kHeader = "client,steps_per_s,up_mbps,down_mbps,latency_ms\n";

std::string trace_error(const std::string& text, int64_t count = 0) {
  auto r = parse_device_trace(text, "t.csv", count);
  EXPECT_FALSE(r.ok()) << "expected an error for:\n" << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  return r.error().message();
}

TEST(DeviceTraceTest, ParsesRowsInAnyOrderWithCommentsSpacesAndCrlf) {
  const std::string text =
      "# measured on 2026-11-01\r\n"
      "client, latency_ms, steps_per_s, up_mbps, down_mbps\r\n"
      "\r\n"
      "2, 0, 7.5, 1, 2\r\n"
      "0, 50, 100, 8, 16\r\n"
      "  # a comment between rows\n"
      "1,12.5,1e2,0.5,4";  // no final newline
  auto r = parse_device_trace(text, "t.csv", 0);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->size(), 3u);
  const auto& p = *r;
  EXPECT_EQ(p[0].speed, 100.0);
  EXPECT_EQ(p[0].up_bytes_per_s, 1e6);  // 8 Mbit/s
  EXPECT_EQ(p[0].down_bytes_per_s, 2e6);
  EXPECT_EQ(p[0].latency_s, 0.05);
  EXPECT_EQ(p[1].speed, 100.0);
  EXPECT_EQ(p[1].up_bytes_per_s, 62500.0);
  EXPECT_EQ(p[1].down_bytes_per_s, 500000.0);
  EXPECT_EQ(p[1].latency_s, 0.0125);
  EXPECT_EQ(p[2].speed, 7.5);
  EXPECT_EQ(p[2].latency_s, 0.0);
}

TEST(DeviceTraceTest, CountSelectsTheFirstClientsAndZeroMeansAllRows) {
  const std::string text = std::string(kHeader) + "0,1,1,1,1\n1,2,1,1,1\n2,3,1,1,1\n";
  auto two = parse_device_trace(text, "t.csv", 2);
  ASSERT_TRUE(two.ok()) << two.error().to_string();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].speed, 2.0);
  auto all = parse_device_trace(text, "t.csv", 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  EXPECT_EQ(trace_error(text, 4), "t.csv: no row for client 3 (clients.count is 4)");
  // Rows beyond the population are still checked.
  EXPECT_EQ(trace_error(text + "7,0,1,1,1\n", 2), "t.csv:5: steps_per_s: must be > 0, got 0");
}

TEST(DeviceTraceTest, MalformedFilesNameTheLine) {
  const std::string h = kHeader;
  EXPECT_EQ(trace_error(""),
            "t.csv:1: expected the header client,steps_per_s,up_mbps,down_mbps,latency_ms, got "
            "an empty file");
  EXPECT_EQ(trace_error("# only a comment\n\n"),
            "t.csv:2: expected the header client,steps_per_s,up_mbps,down_mbps,latency_ms, got "
            "an empty file");
  EXPECT_EQ(trace_error("client,speed,up_mbps,down_mbps,latency_ms\n0,1,1,1,1\n"),
            "t.csv:1: unknown column 'speed' in the header (expected "
            "client,steps_per_s,up_mbps,down_mbps,latency_ms)");
  EXPECT_EQ(trace_error("client,steps_per_s,up_mbps,down_mbps\n"),
            "t.csv:1: the header has no column 'latency_ms' (expected "
            "client,steps_per_s,up_mbps,down_mbps,latency_ms)");
  EXPECT_EQ(trace_error("client,steps_per_s,up_mbps,up_mbps,latency_ms\n"),
            "t.csv:1: column 'up_mbps' appears twice");
  EXPECT_EQ(trace_error(h), "t.csv: no client rows after the header");
  EXPECT_EQ(trace_error(h + "0,1,1,1,1\n1,1,1,1\n"),
            "t.csv:3: expected 5 comma-separated fields, got 4");
  EXPECT_EQ(trace_error(h + "0,1,1,1,1,9\n"), "t.csv:2: expected 5 comma-separated fields, got 6");
  EXPECT_EQ(trace_error(h + "0,1,fast,1,1\n"),
            "t.csv:2: up_mbps: expected a finite number, got 'fast'");
  EXPECT_EQ(trace_error(h + "0,1,1,,1\n"), "t.csv:2: down_mbps: expected a finite number, got ''");
  EXPECT_EQ(trace_error(h + "0,1,1,1,inf\n"),
            "t.csv:2: latency_ms: expected a finite number, got 'inf'");
  EXPECT_EQ(trace_error(h + "0,nan,1,1,1\n"),
            "t.csv:2: steps_per_s: expected a finite number, got 'nan'");
  EXPECT_EQ(trace_error(h + "0,1,1 2,1,1\n"),
            "t.csv:2: up_mbps: expected a finite number, got '1 2'");
  EXPECT_EQ(trace_error(h + "0,0,1,1,1\n"), "t.csv:2: steps_per_s: must be > 0, got 0");
  EXPECT_EQ(trace_error(h + "0,1,-2,1,1\n"), "t.csv:2: up_mbps: must be > 0, got -2");
  EXPECT_EQ(trace_error(h + "0,1,1,0,1\n"), "t.csv:2: down_mbps: must be > 0, got 0");
  EXPECT_EQ(trace_error(h + "0,1,1,1,-1\n"), "t.csv:2: latency_ms: must be >= 0, got -1");
  EXPECT_EQ(trace_error(h + "x,1,1,1,1\n"),
            "t.csv:2: client: expected a non-negative integer id, got 'x'");
  EXPECT_EQ(trace_error(h + "-1,1,1,1,1\n"),
            "t.csv:2: client: expected a non-negative integer id, got '-1'");
  EXPECT_EQ(trace_error(h + "1.0,1,1,1,1\n"),
            "t.csv:2: client: expected a non-negative integer id, got '1.0'");
  EXPECT_EQ(trace_error(h + "0,1,1,1,1\n# c\n1,1,1,1,1\n0,2,2,2,2\n"),
            "t.csv:5: client 0 already has a row (line 2)");
  EXPECT_EQ(trace_error(h + "0,1,1,1,1\n2,1,1,1,1\n"),
            "t.csv: no row for client 1 (clients.count is 0, so the trace's 2 rows must be "
            "clients 0..1)");
  EXPECT_EQ(trace_error(h + "0,1,1,1,1\n99999999999,1,1,1,1\n"),
            "t.csv:3: client 99999999999 is out of range: with clients.count 0 the ids must be "
            "0..rows-1, and the file cannot hold that many rows");
}

class DeviceTraceFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cohort_trace_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  std::filesystem::path dir_;
};

TEST_F(DeviceTraceFileTest, PopulationFromTraceOverridesDistributions) {
  const std::string path = write("devices.csv", std::string(kHeader) + "1,20,2,4,5\n0,10,1,2,0\n");
  PopulationOptions o;
  o.num_clients = 0;
  o.trace = path;
  o.speed = Distribution::constant(999.0);
  auto a = draw_population(o, 1);
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].speed, 10.0);
  EXPECT_EQ((*a)[1].speed, 20.0);
  EXPECT_EQ((*a)[1].down_bytes_per_s, 500000.0);
  EXPECT_EQ((*a)[1].latency_s, 0.005);
  // The seed does not matter for a trace.
  auto b = draw_population(o, 2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)[0].speed, 10.0);
}

TEST_F(DeviceTraceFileTest, FileErrorsNameThePathAndLine) {
  const std::string bad = write("bad.csv", std::string(kHeader) + "0,1,1,1,1\n1,1,1,1\n");
  auto r = read_device_trace(bad, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), bad + ":3: expected 5 comma-separated fields, got 4");

  const std::string missing = (dir_ / "nope.csv").string();
  PopulationOptions o;
  o.trace = missing;
  auto m = draw_population(o, 1);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(m.error().message(), "cannot read device trace '" + missing +
                                     "' (clients.trace): No such file or directory");
}

// ---------------------------------------------------------------------------------------
// Dynamics options.

TEST(ClientDynamicsTest, ValidationNamesTheKey) {
  EXPECT_TRUE(ClientDynamics{}.validate().ok());
  ClientDynamics d;
  d.dropout = 1.0;
  EXPECT_EQ(d.validate().message(), "clients.dropout: must be in [0, 1), got 1");
  d = {};
  d.jitter = -0.1;
  EXPECT_EQ(d.validate().message(), "clients.jitter: must be >= 0, got -0.1");
  d = {};
  d.task_timeout_factor = 0.5;
  EXPECT_EQ(d.validate().message(), "clients.task_timeout_factor: must be >= 1, got 0.5");
  d = {};
  d.availability.mean_offline_s = 0;
  EXPECT_EQ(d.validate().message(), "clients.availability.mean_offline_s: must be > 0, got 0");
  d = {};
  d.availability.distribution = "weibull";
  EXPECT_EQ(d.validate().message(),
            "clients.availability.distribution: unknown value 'weibull' (known: exponential, "
            "constant)");
  PopulationOptions o;
  o.num_clients = 0;
  EXPECT_EQ(o.validate().message(), "clients.count: must be >= 1, got 0");
  o.trace = "devices.csv";
  EXPECT_TRUE(o.validate().ok());
}

TEST(ClientDynamicsTest, AvailabilityPeriods) {
  Availability a;
  a.mean_online_s = 30;
  a.mean_offline_s = 10;
  a.distribution = "constant";
  Rng rng(3);
  EXPECT_EQ(a.sample(rng, true), 30.0);
  EXPECT_EQ(a.sample(rng, false), 10.0);
  a.distribution = "exponential";
  double on = 0, off = 0;
  for (int i = 0; i < 20000; ++i) {
    on += a.sample(rng, true);
    off += a.sample(rng, false);
  }
  EXPECT_NEAR(on / 20000, 30.0, 1.0);
  EXPECT_NEAR(off / 20000, 10.0, 0.35);
  EXPECT_FALSE(Availability{}.enabled());
}

}  // namespace
}  // namespace cohort::sim
