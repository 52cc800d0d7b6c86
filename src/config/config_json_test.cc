#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/config/config.h"
#include "config/config_test_util.h"

namespace cohort {
namespace {

using namespace config_testing;  // NOLINT

TEST(ConfigDocsTest, CompleteExampleInDocsParses) {
  const char* source_dir = std::getenv("COHORT_SOURCE_DIR");
  if (source_dir == nullptr) GTEST_SKIP() << "COHORT_SOURCE_DIR not set (run through ctest)";
  const std::string path = std::string(source_dir) + "/docs/config.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto section = doc.find("## A complete example");
  ASSERT_NE(section, std::string::npos);
  const auto begin = doc.find("```yaml\n", section);
  ASSERT_NE(begin, std::string::npos);
  const auto end = doc.find("```", begin + 8);
  ASSERT_NE(end, std::string::npos);
  auto c = parse_simulation_config(doc.substr(begin + 8, end - begin - 8), "docs/config.md");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->data.partition.alpha, 0.3);
  EXPECT_EQ(c->clients.num_clients, 100);
  EXPECT_EQ(c->clients.speed.kind, "lognormal");
  expect_same(c->clients.down_mbps, sim::Distribution::constant(100.0), "down");
  EXPECT_EQ(c->strategy.params.at("fraction"), Scalar(0.1));
  EXPECT_EQ(c->strategy.params.at("min_clients"), Scalar(int64_t{2}));
  EXPECT_EQ(c->run.rounds, 100);
  EXPECT_EQ(c->run.target_accuracy, 0.8);
  // The keys the comments do not mark as changed hold the defaults.
  SimulationConfig expected;
  expected.data.partition.alpha = 0.3;
  expected.clients = c->clients;
  expected.strategy = c->strategy;
  expected.run.rounds = 100;
  expected.run.target_accuracy = 0.8;
  expect_same(*c, expected);
}

// Block-style YAML for `j`: "key: value" lines, sequences as "- item" lines, scalars as
// their JSON text (valid YAML flow scalars; strings stay double-quoted).
void to_block_yaml(const Json& j, int indent, std::string* out) {
  for (const auto& [key, value] : j.items()) {
    out->append(static_cast<size_t>(indent), ' ').append(key).append(":");
    if (value.is_object()) {
      out->append("\n");
      to_block_yaml(value, indent + 2, out);
    } else if (value.is_array() && !value.empty()) {
      out->append("\n");
      for (const auto& item : value) {
        out->append(static_cast<size_t>(indent) + 2, ' ').append("- ").append(item.dump());
        out->append("\n");
      }
    } else {
      out->append(" ").append(value.dump()).append("\n");
    }
  }
}

TEST(ConfigJsonTest, ToJsonHasEveryKeyInYamlStructure) {
  auto c = parse(kFullConfig);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  const Json j = to_json(*c);
  std::vector<std::string> sections;
  for (const auto& [key, value] : j.items()) sections.push_back(key);
  EXPECT_EQ(sections,
            (std::vector<std::string>{"data", "clients", "model", "training", "strategy", "run",
                                      "admission", "compression"}));
  EXPECT_EQ(j["data"].size(), 14u);
  EXPECT_EQ(j["data"]["partition"], "shards");
  EXPECT_EQ(j["data"]["synthetic"]["classes"], 3);
  EXPECT_EQ(j["data"]["synthetic"]["test_examples"], 200);
  EXPECT_EQ(j["clients"]["count"], 64);
  EXPECT_EQ(j["clients"]["speed"],
            Json::parse(R"({"distribution": "lognormal", "mean": 80.0, "std": 0.0, "low": 0.0,
                            "high": 1.0, "sigma": 0.8, "min": 5.0, "max": 400.0})"));
  EXPECT_EQ(j["model"]["hidden"], Json::parse("[64, 32, 16]"));
  EXPECT_EQ(j["training"].size(), 7u);
  EXPECT_EQ(j["strategy"], Json::parse(R"({"name": "fedbuff", "buffer_size": 10,
                                            "mode": "async", "server_lr": 1.0,
                                            "weighted": true})"));
  EXPECT_TRUE(j["strategy"]["buffer_size"].is_number_integer());
  EXPECT_TRUE(j["strategy"]["server_lr"].is_number_float());
  EXPECT_EQ(j["run"]["seed"], std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(j["run"].size(), 8u);
}

TEST(ConfigJsonTest, RoundTripThroughJsonAndYamlText) {
  SimulationConfig tricky;
  tricky.strategy.name = "fedbuff";
  tricky.strategy.params = {{"a_string_number", Scalar(std::string("1.5"))},
                            {"a_string_bool", Scalar(std::string("false"))},
                            {"a_string_null", Scalar(std::string("null"))},
                            {"unicode", Scalar(std::string("caf\xc3\xa9 \"q\" \\ \t"))},
                            {"whole_double", Scalar(3.0)},
                            {"small", Scalar(1e-300)},
                            {"big_int", Scalar(std::numeric_limits<int64_t>::min())},
                            {"flag", Scalar(false)}};
  tricky.clients.speed.max = 1e300;
  tricky.training.lr = 0.1 + 0.2;  // not exactly representable in short decimal
  // An empty list round-trips (for the mlp it is an error: it needs a hidden layer).
  tricky.model.name = "logreg";
  tricky.model.hidden = {};

  auto full = parse(kFullConfig);
  ASSERT_TRUE(full.ok()) << full.error().to_string();
  for (const SimulationConfig& original : {SimulationConfig{}, *full, tricky}) {
    const Json j = to_json(original);
    std::string block;
    to_block_yaml(j, 0, &block);
    for (const std::string& text : {j.dump(), j.dump(2), block}) {
      SCOPED_TRACE(text);
      auto back = parse_simulation_config(text, "config.json");
      ASSERT_TRUE(back.ok()) << back.error().to_string();
      expect_same(*back, original);
      EXPECT_EQ(to_json(*back), j);
    }
  }
}

// ---------------------------------------------------------------------------------------
// clients: trace, jitter, dropout, task_timeout_factor, availability.

TEST(ConfigClientsTest, DynamicsKeysDefaultsAndValues) {
  auto d = parse("");
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->clients.trace, "");
  EXPECT_EQ(d->clients.dynamics.jitter, 0.0);
  EXPECT_EQ(d->clients.dynamics.dropout, 0.0);
  EXPECT_EQ(d->clients.dynamics.task_timeout_factor, 3.0);
  EXPECT_EQ(d->clients.dynamics.availability.mean_online_s, 0.0);
  EXPECT_EQ(d->clients.dynamics.availability.mean_offline_s, 60.0);
  EXPECT_EQ(d->clients.dynamics.availability.distribution, "exponential");

  auto c = parse(R"(
clients:
  count: 8
  jitter: 0.1
  dropout: 0.05
  task_timeout_factor: 2
  availability: {mean_online_s: 300, mean_offline_s: 120, distribution: constant}
)");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  const sim::ClientDynamics& dyn = c->clients.dynamics;
  EXPECT_EQ(c->clients.num_clients, 8);
  EXPECT_EQ(dyn.jitter, 0.1);
  EXPECT_EQ(dyn.dropout, 0.05);
  EXPECT_EQ(dyn.task_timeout_factor, 2.0);
  EXPECT_EQ(dyn.availability.mean_online_s, 300.0);
  EXPECT_EQ(dyn.availability.mean_offline_s, 120.0);
  EXPECT_EQ(dyn.availability.distribution, "constant");

  // Omitted availability keys keep their defaults; an empty section is the defaults.
  auto partial = parse("clients:\n  availability: {mean_online_s: 30}\n");
  ASSERT_TRUE(partial.ok()) << partial.error().to_string();
  EXPECT_EQ(partial->clients.dynamics.availability.mean_offline_s, 60.0);
  EXPECT_TRUE(parse("clients:\n  availability:\n").ok());

  auto ov = parse("", {"clients.availability.mean_online_s=45", "clients.dropout=0.2"});
  ASSERT_TRUE(ov.ok()) << ov.error().to_string();
  EXPECT_EQ(ov->clients.dynamics.availability.mean_online_s, 45.0);
  EXPECT_EQ(ov->clients.dynamics.dropout, 0.2);
}

TEST(ConfigClientsTest, TraceAndCount) {
  // With a trace and no count, the count is the trace's (0 = resolved from its rows).
  auto a = parse("clients:\n  trace: traces/devices.csv\n");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->clients.trace, "traces/devices.csv");
  EXPECT_EQ(a->clients.num_clients, 0);
  // Key order does not matter.
  auto b = parse("clients:\n  count: 5\n  trace: devices.csv\n");
  ASSERT_TRUE(b.ok()) << b.error().to_string();
  EXPECT_EQ(b->clients.num_clients, 5);
  auto zero = parse("clients:\n  count: 0\n  trace: devices.csv\n");
  ASSERT_TRUE(zero.ok()) << zero.error().to_string();
  EXPECT_EQ(zero->clients.num_clients, 0);
  // trace: null (config.json without a trace) means none.
  auto none = parse("clients:\n  trace: null\n");
  ASSERT_TRUE(none.ok()) << none.error().to_string();
  EXPECT_EQ(none->clients.trace, "");
  EXPECT_EQ(none->clients.num_clients, 20);
  auto cleared =
      parse("clients:\n  trace: devices.csv\n", {"clients.trace=null", "clients.count=4"});
  ASSERT_TRUE(cleared.ok()) << cleared.error().to_string();
  EXPECT_EQ(cleared->clients.trace, "");
  EXPECT_EQ(cleared->clients.num_clients, 4);

  EXPECT_EQ(error_message("clients:\n  count: 0\n"),
            "demo.yaml: clients.count: must be >= 1, got 0");
  EXPECT_EQ(error_message("clients:\n  trace: d.csv\n  count: -1\n"),
            "demo.yaml: clients.count: must be >= 0, got -1");
  EXPECT_EQ(error_message("clients:\n  trace: ''\n"),
            "demo.yaml: clients.trace: must not be empty");
  EXPECT_EQ(error_message("clients:\n  trace: [a.csv]\n"),
            "demo.yaml: clients.trace: expected a string, got a sequence");
}

TEST(ConfigClientsTest, ErrorsNameTheKeyPath) {
  EXPECT_EQ(error_message("clients:\n  dropout: 1\n"),
            "demo.yaml: clients.dropout: must be in [0, 1), got 1");
  EXPECT_EQ(error_message("clients:\n  dropout: -0.1\n"),
            "demo.yaml: clients.dropout: must be in [0, 1), got -0.1");
  EXPECT_EQ(error_message("clients:\n  jitter: -0.5\n"),
            "demo.yaml: clients.jitter: must be >= 0, got -0.5");
  EXPECT_EQ(error_message("clients:\n  jitter: high\n"),
            "demo.yaml: clients.jitter: expected a number, got 'high'");
  EXPECT_EQ(error_message("clients:\n  task_timeout_factor: 0.5\n"),
            "demo.yaml: clients.task_timeout_factor: must be >= 1, got 0.5");
  EXPECT_EQ(error_message("clients:\n  availability: {mean_online_s: -1}\n"),
            "demo.yaml: clients.availability.mean_online_s: must be >= 0, got -1");
  EXPECT_EQ(error_message("clients:\n  availability: {mean_offline_s: 0}\n"),
            "demo.yaml: clients.availability.mean_offline_s: must be > 0, got 0");
  EXPECT_EQ(error_message("clients:\n  availability: {distribution: weibull}\n"),
            "demo.yaml: clients.availability.distribution: unknown value 'weibull' (known: "
            "exponential, constant)");
  EXPECT_EQ(error_message("clients:\n  availability: {mean_on: 5}\n"),
            "demo.yaml: clients.availability.mean_on: unknown key (known: mean_online_s, "
            "mean_offline_s, distribution)");
  EXPECT_EQ(error_message("clients:\n  availability: 5\n"),
            "demo.yaml: clients.availability: expected a mapping, got 5");
  EXPECT_EQ(error_message("clients:\n  drop: 0.1\n"),
            "demo.yaml: clients.drop: unknown key (known: count, speed, up_mbps, down_mbps, "
            "latency_ms, trace, jitter, dropout, task_timeout_factor, availability)");
  EXPECT_EQ(error_message("", {"clients.dropout=1.5"}),
            "demo.yaml: clients.dropout: must be in [0, 1), got 1.5 (from override "
            "'clients.dropout=1.5')");
}

TEST(ConfigClientsTest, ToJsonHasTheDynamicsAndReadsBack) {
  auto c = parse(R"(
clients:
  trace: devices.csv
  jitter: 0.25
  dropout: 0.1
  task_timeout_factor: 4
  availability: {mean_online_s: 100, mean_offline_s: 20, distribution: constant}
)");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  const Json j = to_json(*c);
  EXPECT_EQ(j["clients"]["count"], 0);
  EXPECT_EQ(j["clients"]["trace"], "devices.csv");
  EXPECT_EQ(j["clients"]["jitter"], 0.25);
  EXPECT_EQ(j["clients"]["dropout"], 0.1);
  EXPECT_EQ(j["clients"]["task_timeout_factor"], 4.0);
  EXPECT_EQ(j["clients"]["availability"],
            Json::parse(R"({"mean_online_s": 100.0, "mean_offline_s": 20.0,
                            "distribution": "constant"})"));
  EXPECT_TRUE(to_json(SimulationConfig{})["clients"]["trace"].is_null());
  for (const SimulationConfig& original : {*c, SimulationConfig{}}) {
    const Json jj = to_json(original);
    auto back = parse_simulation_config(jj.dump(), "config.json");
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    expect_same(*back, original);
    EXPECT_EQ(to_json(*back), jj);
  }
}

TEST(ConfigHoldoutTest, ParsesAndRejectsOutOfRange) {
  auto ok = parse_simulation_config("data: {holdout_fraction: 0.2}", "h.yaml");
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_DOUBLE_EQ(ok->data.holdout_fraction, 0.2);
  auto one = parse_simulation_config("data: {holdout_fraction: 1}", "h.yaml");
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.error().message().find("data.holdout_fraction: must be < 1"), std::string::npos);
  auto neg = parse_simulation_config("data: {holdout_fraction: -0.1}", "h.yaml");
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.error().message().find("data.holdout_fraction"), std::string::npos);
}

}  // namespace
}  // namespace cohort
