#include "cohort/config/config.h"

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

#include "config/config_test_util.h"

namespace cohort {
namespace {

using namespace config_testing;  // NOLINT

TEST(ConfigDefaultsTest, EmptyTextEmptyMappingAndCommentsGiveDefaults) {
  const SimulationConfig defaults;
  for (const char* text : {"", "{}", "# nothing here\n", "data:\nclients:\nrun:\n"}) {
    SCOPED_TRACE(text);
    auto c = parse(text);
    ASSERT_TRUE(c.ok()) << c.error().to_string();
    expect_same(*c, defaults);
  }
  // The defaults the header documents (and docs/config.md repeats).
  auto c = parse("{}");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data.dataset, "fashion-mnist");
  EXPECT_EQ(c->data.path, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(c->data.partition.kind, "dirichlet");
  EXPECT_EQ(c->data.partition.alpha, 0.5);
  EXPECT_EQ(c->data.synthetic_test_examples, 1000);
  EXPECT_EQ(c->clients.num_clients, 20);
  EXPECT_EQ(c->clients.speed.kind, "constant");
  EXPECT_EQ(c->clients.speed.mean, 100.0);
  EXPECT_EQ(c->clients.up_mbps.mean, 20.0);
  EXPECT_EQ(c->clients.down_mbps.mean, 100.0);
  EXPECT_EQ(c->clients.latency_ms.mean, 20.0);
  EXPECT_EQ(c->model.name, "mlp");
  EXPECT_EQ(c->model.hidden, (std::vector<int64_t>{200, 200}));
  EXPECT_EQ(c->training.lr, 0.05);
  EXPECT_EQ(c->training.batch_size, 32);
  EXPECT_EQ(c->strategy.name, "fedavg");
  EXPECT_TRUE(c->strategy.params.empty());
  EXPECT_EQ(c->run.rounds, 50);
  EXPECT_EQ(c->run.seed, 1u);
  // The partition and synthetic seeds are derived from run.seed by the CLI, not read here.
  EXPECT_EQ(c->data.partition.seed, 0u);
  EXPECT_EQ(c->data.synthetic.seed, 0u);
}

TEST(ConfigParseTest, FullConfigParsesEveryKey) {
  auto r = parse(kFullConfig);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const SimulationConfig& c = *r;
  EXPECT_EQ(c.data.dataset, "synthetic");
  EXPECT_EQ(c.data.path, "/tmp/somewhere");
  EXPECT_EQ(c.data.train_limit, 6000);
  EXPECT_EQ(c.data.test_limit, 1000);
  EXPECT_EQ(c.data.partition.kind, "shards");
  EXPECT_DOUBLE_EQ(c.data.partition.alpha, 0.1);
  EXPECT_EQ(c.data.partition.shards_per_client, 3);
  EXPECT_EQ(c.data.partition.min_size, 5);
  EXPECT_DOUBLE_EQ(c.data.partition.size_skew, 0.25);
  EXPECT_EQ(c.data.partition.seed, 0u);
  EXPECT_EQ(c.data.synthetic.num_examples, 500);
  EXPECT_EQ(c.data.synthetic_test_examples, 200);
  EXPECT_EQ(c.data.synthetic.dim, 8);
  EXPECT_EQ(c.data.synthetic.num_classes, 3);
  EXPECT_DOUBLE_EQ(c.data.synthetic.separation, 2.5);
  EXPECT_DOUBLE_EQ(c.data.synthetic.noise, 0.75);
  EXPECT_EQ(c.data.synthetic.seed, 0u);

  EXPECT_EQ(c.clients.num_clients, 64);
  EXPECT_EQ(c.clients.speed.kind, "lognormal");
  EXPECT_DOUBLE_EQ(c.clients.speed.mean, 80.0);
  EXPECT_DOUBLE_EQ(c.clients.speed.sigma, 0.8);
  EXPECT_DOUBLE_EQ(c.clients.speed.min, 5.0);
  EXPECT_DOUBLE_EQ(c.clients.speed.max, 400.0);
  EXPECT_EQ(c.clients.up_mbps.kind, "uniform");
  EXPECT_DOUBLE_EQ(c.clients.up_mbps.low, 1.0);
  EXPECT_DOUBLE_EQ(c.clients.up_mbps.high, 10.0);
  EXPECT_DOUBLE_EQ(c.clients.up_mbps.mean, 20.0);  // not given: keeps up_mbps's default
  EXPECT_EQ(c.clients.down_mbps.kind, "normal");
  EXPECT_DOUBLE_EQ(c.clients.down_mbps.mean, 50.0);
  EXPECT_DOUBLE_EQ(c.clients.down_mbps.std, 12.5);
  EXPECT_EQ(c.clients.latency_ms.kind, "exponential");
  EXPECT_DOUBLE_EQ(c.clients.latency_ms.mean, 30.0);
  EXPECT_DOUBLE_EQ(c.clients.latency_ms.min, 1e-6);  // Distribution's default

  EXPECT_EQ(c.model.name, "cnn");
  EXPECT_EQ(c.model.hidden, (std::vector<int64_t>{64, 32, 16}));

  EXPECT_EQ(c.training.optimizer, "sgd");
  EXPECT_DOUBLE_EQ(c.training.lr, 0.01);
  EXPECT_DOUBLE_EQ(c.training.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.training.weight_decay, 0.0005);
  EXPECT_EQ(c.training.batch_size, 64);
  EXPECT_DOUBLE_EQ(c.training.local_epochs, 2.5);
  EXPECT_EQ(c.training.local_steps, 20);

  EXPECT_EQ(c.strategy.name, "fedbuff");
  ASSERT_EQ(c.strategy.params.size(), 4u);
  EXPECT_EQ(std::get<int64_t>(c.strategy.params.at("buffer_size")), 10);
  EXPECT_EQ(std::get<double>(c.strategy.params.at("server_lr")), 1.0);
  EXPECT_EQ(std::get<bool>(c.strategy.params.at("weighted")), true);
  EXPECT_EQ(std::get<std::string>(c.strategy.params.at("mode")), "async");

  EXPECT_EQ(c.run.rounds, 200);
  EXPECT_DOUBLE_EQ(c.run.max_virtual_time_s, 3600.5);
  EXPECT_EQ(c.run.eval_every, 5);
  EXPECT_DOUBLE_EQ(c.run.target_accuracy, 0.85);
  EXPECT_EQ(c.run.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(c.run.threads, 2);
}

TEST(ConfigErrorTest, UnknownKeysNameThePathAndTheKnownKeys) {
  EXPECT_EQ(error_message("run:\n  round: 5\n"),
            "demo.yaml: run.round: unknown key (known: rounds, max_virtual_time_s, eval_every, "
            "eval_interval_s, target_accuracy, seed, threads, reproducible)");
  EXPECT_EQ(error_message("trainig:\n  lr: 0.1\n"),
            "demo.yaml: trainig: unknown key (known: data, clients, model, models, training, strategy, "
            "strategies, run, admission, compression, robust, contribution, attack, privacy)");
  EXPECT_EQ(error_message("data:\n  synthetic:\n    clases: 3\n"),
            "demo.yaml: data.synthetic.clases: unknown key (known: num_examples, test_examples, "
            "dim, classes, separation, noise)");
  EXPECT_EQ(error_message("clients:\n  speed: {distribution: normal, stdev: 3}\n"),
            "demo.yaml: clients.speed.stdev: unknown key (known: distribution, mean, std, low, "
            "high, sigma, min, max)");
  EXPECT_EQ(error_message("model:\n  layers: 3\n"),
            "demo.yaml: model.layers: unknown key (known: name, hidden, init)");
}

TEST(ConfigErrorTest, WrongTypesQuoteWhatWasFound) {
  EXPECT_EQ(error_message("training:\n  lr: fast\n"),
            "demo.yaml: training.lr: expected a number, got 'fast'");
  EXPECT_EQ(error_message("clients:\n  count: 2.5\n"),
            "demo.yaml: clients.count: expected an integer, got 2.5");
  EXPECT_EQ(error_message("training:\n  lr: \"0.1\"\n"),
            "demo.yaml: training.lr: expected a number, got '0.1' (a quoted string)");
  EXPECT_EQ(error_message("training:\n  lr: true\n"),
            "demo.yaml: training.lr: expected a number, got true");
  EXPECT_EQ(error_message("training:\n  lr:\n"),
            "demo.yaml: training.lr: expected a number, got null");
  EXPECT_EQ(error_message("training:\n  lr: .inf\n"),
            "demo.yaml: training.lr: expected a finite number, got .inf");
  EXPECT_EQ(error_message("training:\n  batch_size: [32]\n"),
            "demo.yaml: training.batch_size: expected an integer, got a sequence");
  EXPECT_EQ(error_message("run:\n  seed: -1\n"),
            "demo.yaml: run.seed: expected a non-negative integer, got -1");
  EXPECT_EQ(error_message("run:\n  seed: 18446744073709551616\n"),
            "demo.yaml: run.seed: integer out of the unsigned 64-bit range, got "
            "18446744073709551616");
  EXPECT_EQ(error_message("run:\n  rounds: 9223372036854775808\n"),
            "demo.yaml: run.rounds: integer out of the 64-bit range, got 9223372036854775808");
  EXPECT_EQ(error_message("training:\n  lr: 1e999\n"),
            "demo.yaml: training.lr: number out of the double range, got 1e999");
  EXPECT_EQ(error_message("strategy:\n  name: x\n  mu: 1e-999\n"),
            "demo.yaml: strategy.mu: number out of the double range, got 1e-999");
  EXPECT_EQ(error_message("data:\n  path: {a: 1}\n"),
            "demo.yaml: data.path: expected a string, got a mapping");
  EXPECT_EQ(error_message("data:\n  path: ''\n"), "demo.yaml: data.path: must not be empty");
  EXPECT_EQ(error_message("model:\n  hidden: 200\n"),
            "demo.yaml: model.hidden: expected a sequence of integers, got 200");
  EXPECT_EQ(error_message("model:\n  hidden: [200, wide]\n"),
            "demo.yaml: model.hidden[1]: expected an integer, got 'wide'");
  EXPECT_EQ(error_message("strategy:\n  name: [fedavg]\n"),
            "demo.yaml: strategy.name: expected a string, got a sequence");
}

TEST(ConfigErrorTest, OutOfRangeValuesNameTheBound) {
  EXPECT_EQ(error_message("clients:\n  count: 0\n"),
            "demo.yaml: clients.count: must be >= 1, got 0");
  EXPECT_EQ(error_message("data:\n  alpha: -1\n"), "demo.yaml: data.alpha: must be > 0, got -1");
  EXPECT_EQ(error_message("data:\n  train_limit: -5\n"),
            "demo.yaml: data.train_limit: must be >= 0, got -5");
  EXPECT_EQ(error_message("data:\n  synthetic: {classes: 1}\n"),
            "demo.yaml: data.synthetic.classes: must be >= 2, got 1");
  EXPECT_EQ(error_message("training:\n  batch_size: 0\n"),
            "demo.yaml: training.batch_size: must be >= 1, got 0");
  EXPECT_EQ(error_message("training:\n  lr: 0\n"), "demo.yaml: training.lr: must be > 0, got 0");
  EXPECT_EQ(error_message("training:\n  momentum: 1\n"),
            "demo.yaml: training.momentum: must be in [0, 1), got 1");
  EXPECT_EQ(error_message("training:\n  local_epochs: 0\n"),
            "demo.yaml: training.local_epochs: must be > 0 when local_steps is 0, got 0");
  EXPECT_EQ(error_message("run:\n  target_accuracy: 1.5\n"),
            "demo.yaml: run.target_accuracy: must be in [0, 1], got 1.5");
  EXPECT_EQ(error_message("run:\n  eval_every: 0\n"),
            "demo.yaml: run.eval_every: must be >= 1 unless run.eval_interval_s > 0, got 0");
  EXPECT_EQ(error_message("model:\n  hidden: [100, 0]\n"),
            "demo.yaml: model.hidden[1]: must be >= 1, got 0");
  EXPECT_EQ(error_message("run:\n  rounds: 0\n"),
            "demo.yaml: run: rounds and max_virtual_time_s are both 0 (no limit), so the run "
            "would never stop; set at least one of them");
  // local_epochs is irrelevant when local_steps > 0, and rounds 0 is fine with a time limit.
  EXPECT_TRUE(parse("training: {local_epochs: 0, local_steps: 5}\n").ok());
  EXPECT_TRUE(parse("run: {rounds: 0, max_virtual_time_s: 60}\n").ok());
}

TEST(ConfigErrorTest, WrongNodeKinds) {
  EXPECT_EQ(error_message("clients:\n  speed: [1, 2]\n"),
            "demo.yaml: clients.speed: expected a mapping or a number, got a sequence");
  EXPECT_EQ(error_message("clients:\n  speed: fast\n"),
            "demo.yaml: clients.speed: expected a mapping or a number, got 'fast'");
  EXPECT_EQ(error_message("data: 5\n"), "demo.yaml: data: expected a mapping, got 5");
  EXPECT_EQ(error_message("run: [1, 2]\n"), "demo.yaml: run: expected a mapping, got a sequence");
  EXPECT_EQ(error_message("data:\n  synthetic: big\n"),
            "demo.yaml: data.synthetic: expected a mapping, got 'big'");
  EXPECT_EQ(error_message("- a\n- b\n"),
            "demo.yaml: expected a mapping at the top level, got a sequence");
  EXPECT_EQ(error_message("hello\n"),
            "demo.yaml: expected a mapping at the top level, got 'hello'");
}

TEST(ConfigErrorTest, UnknownEnumValuesListTheKnownOnes) {
  EXPECT_EQ(error_message("data:\n  partition: random\n"),
            "demo.yaml: data.partition: unknown value 'random' (known: iid, dirichlet, shards, "
            "natural, file)");
  EXPECT_EQ(error_message("data:\n  dataset: mnist\n"),
            "demo.yaml: data.dataset: unknown value 'mnist' (known: fashion-mnist, synthetic, text)");
  EXPECT_EQ(error_message("model:\n  name: resnet\n"),
            "demo.yaml: model.name: unknown value 'resnet' (known: logreg, mlp, cnn, char_lstm)");
  EXPECT_EQ(error_message("training:\n  optimizer: adam\n"),
            "demo.yaml: training.optimizer: unknown value 'adam' (known: sgd, adamw)");
  EXPECT_EQ(error_message("clients:\n  speed: {distribution: gamma}\n"),
            "demo.yaml: clients.speed.distribution: unknown value 'gamma' (known: constant, "
            "normal, exponential, uniform, lognormal)");
}

TEST(ConfigErrorTest, YamlSyntaxErrorsGiveLineAndColumn) {
  EXPECT_EQ(error_message("run:\n  rounds: 5\n  seed: a: b\n"),
            "demo.yaml: YAML syntax error at line 3, column 10: illegal map value");
  EXPECT_EQ(error_message("training:\n  lr: 0.1\n  momentum: [0.9\n"),
            "demo.yaml: YAML syntax error at line 4, column 1: end of sequence flow not found");
  EXPECT_EQ(error_message("run:\n  rounds: 1\n  rounds: 2\n"),
            "demo.yaml: run.rounds: duplicate key");
  EXPECT_EQ(error_message("run: {rounds: 1}\n---\nrun: {rounds: 2}\n"),
            "demo.yaml: expected one YAML document, found 2");
  // yaml-cpp reports empty documents forever on a stray ',' (found by fuzzing): an error, not
  // a loop that eats all memory.
  EXPECT_EQ(error_message(","), "demo.yaml: expected one YAML document, found more than 16");
  EXPECT_EQ(error_message("? [a, b]\n: 1\n"),
            "demo.yaml: top level: mapping keys must be scalars, got a sequence");
  // An alias to its own ancestor would recurse forever; the depth limit stops it.
  EXPECT_THAT(error_message("data: &a [*a]\n"),
              AllOf(StartsWith("demo.yaml: data[0][0]"),
                    HasSubstr("nested more than 64 levels deep (a recursive alias?)")));
}

TEST(ConfigErrorTest, StrategyNeedsAName) {
  EXPECT_EQ(error_message("strategy:\n  fraction: 0.5\n"),
            "demo.yaml: strategy.name: required key is missing (the strategy to run, e.g. "
            "fedavg)");
  EXPECT_EQ(error_message("strategy:\n"),
            "demo.yaml: strategy.name: required key is missing (the strategy to run, e.g. "
            "fedavg)");
  EXPECT_EQ(error_message("strategy:\n  name: fedavg\n  schedule: {warmup: 3}\n"),
            "demo.yaml: strategy.schedule: expected a scalar (number, bool or string), got a "
            "mapping");
  EXPECT_EQ(error_message("strategy:\n  name: fedavg\n  clients: [1, 2]\n"),
            "demo.yaml: strategy.clients: expected a scalar (number, bool or string), got a "
            "sequence");
  EXPECT_EQ(error_message("strategy:\n  name: fedavg\n  fraction:\n"),
            "demo.yaml: strategy.fraction: expected a scalar (number, bool or string), got null");
}

TEST(ConfigErrorTest, DistributionValuesAreChecked) {
  EXPECT_EQ(error_message("clients:\n  latency_ms: 0\n"),
            "demo.yaml: clients.latency_ms: must be > 0, got 0");
  EXPECT_EQ(error_message("clients:\n  speed: {distribution: normal, mean: -2, std: 1}\n"),
            "demo.yaml: clients.speed.mean: must be > 0, got -2");
  EXPECT_EQ(error_message("clients:\n  speed: {distribution: normal, std: -1}\n"),
            "demo.yaml: clients.speed.std: must be >= 0, got -1");
  EXPECT_EQ(error_message("clients:\n  up_mbps: {distribution: uniform, low: 5, high: 5}\n"),
            "demo.yaml: clients.up_mbps.high: must be > low (5) for a uniform distribution, got 5");
  EXPECT_EQ(error_message("clients:\n  down_mbps: {distribution: lognormal, sigma: 0}\n"),
            "demo.yaml: clients.down_mbps.sigma: must be > 0 for a lognormal distribution, got 0");
  EXPECT_EQ(error_message("clients:\n  speed: {min: 10, max: 2.5}\n"),
            "demo.yaml: clients.speed.max: must be >= min (10), got 2.5");
  // Uniform ignores the mean, so a mean of 0 is fine there.
  EXPECT_TRUE(parse("clients:\n  speed: {distribution: uniform, mean: 0, low: 1, high: 2}\n").ok());
}

TEST(ConfigDistributionTest, NumberMeansConstant) {
  auto c = parse("clients:\n  speed: 50\n  latency_ms: 2.5\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  expect_same(c->clients.speed, sim::Distribution::constant(50.0), "speed");
  expect_same(c->clients.latency_ms, sim::Distribution::constant(2.5), "latency");
  expect_same(c->clients.up_mbps, sim::Distribution::constant(20.0), "up (default)");
}

TEST(ConfigDistributionTest, MappingFieldsAndDefaults) {
  auto c = parse(
      "clients:\n"
      "  up_mbps: {distribution: lognormal, mean: 10, sigma: 0.8, min: 1, max: 100}\n"
      "  down_mbps: {distribution: normal, std: 5}\n"
      "  latency_ms:\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  sim::Distribution up;
  up.kind = "lognormal";
  up.mean = 10;
  up.sigma = 0.8;
  up.min = 1;
  up.max = 100;
  expect_same(c->clients.up_mbps, up, "up");
  // Omitted keys keep the field's default, so down_mbps keeps its mean of 100.
  sim::Distribution down = sim::Distribution::constant(100.0);
  down.kind = "normal";
  down.std = 5;
  expect_same(c->clients.down_mbps, down, "down");
  // An empty value is an empty mapping: all defaults.
  expect_same(c->clients.latency_ms, sim::Distribution::constant(20.0), "latency");
}

TEST(ConfigStrategyTest, ParamsKeepTheirYamlTypes) {
  auto c = parse(R"(
strategy:
  name: somethingnew
  buffer_size: 10
  neg: -3
  hex: 0x10
  fraction: 0.5
  tiny: 1e-3
  whole: 2.0
  weighted: true
  off_flag: False
  mode: async
  quoted_number: "42"
  quoted_bool: 'true'
  yes_is_a_string: yes
)");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->strategy.name, "somethingnew");  // not validated here
  const ConfigRecord& p = c->strategy.params;
  EXPECT_EQ(p.size(), 12u);
  EXPECT_EQ(p.count("name"), 0u);
  EXPECT_EQ(p.at("buffer_size"), Scalar(int64_t{10}));
  EXPECT_EQ(p.at("neg"), Scalar(int64_t{-3}));
  EXPECT_EQ(p.at("hex"), Scalar(int64_t{16}));
  EXPECT_EQ(p.at("fraction"), Scalar(0.5));
  EXPECT_EQ(p.at("tiny"), Scalar(0.001));
  EXPECT_EQ(p.at("whole"), Scalar(2.0));
  EXPECT_EQ(p.at("weighted"), Scalar(true));
  EXPECT_EQ(p.at("off_flag"), Scalar(false));
  EXPECT_EQ(p.at("mode"), Scalar(std::string("async")));
  EXPECT_EQ(p.at("quoted_number"), Scalar(std::string("42")));
  EXPECT_EQ(p.at("quoted_bool"), Scalar(std::string("true")));
  EXPECT_EQ(p.at("yes_is_a_string"), Scalar(std::string("yes")));
}

TEST(ConfigOverrideTest, NumbersListsAndStrings) {
  auto c = parse(kFullConfig,
                 {"training.lr=0.1", "run.rounds=7", "model.hidden=[100, 50]", "data.partition=iid",
                  "strategy.name = fedasync", "strategy.mode=sync", "run.seed=42"});
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_DOUBLE_EQ(c->training.lr, 0.1);
  EXPECT_EQ(c->run.rounds, 7);
  EXPECT_EQ(c->model.hidden, (std::vector<int64_t>{100, 50}));
  EXPECT_EQ(c->data.partition.kind, "iid");
  EXPECT_EQ(c->strategy.name, "fedasync");
  EXPECT_EQ(c->strategy.params.at("mode"), Scalar(std::string("sync")));
  EXPECT_EQ(c->strategy.params.at("buffer_size"), Scalar(int64_t{10}));  // untouched
  EXPECT_EQ(c->run.seed, 42u);
  // Untouched keys keep the file's values.
  EXPECT_DOUBLE_EQ(c->training.momentum, 0.9);
  EXPECT_EQ(c->clients.num_clients, 64);
}

TEST(ConfigOverrideTest, CreatesNestedKeysAndLaterOverridesWin) {
  auto c = parse("", {"clients.speed.distribution=normal", "clients.speed.std=10",
                      "strategy.name=fedprox", "strategy.mu=0.01", "run.rounds=5", "run.rounds=9"});
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  sim::Distribution speed = sim::Distribution::constant(100.0);
  speed.kind = "normal";
  speed.std = 10;
  expect_same(c->clients.speed, speed, "speed");
  EXPECT_EQ(c->strategy.name, "fedprox");
  EXPECT_EQ(c->strategy.params.at("mu"), Scalar(0.01));
  EXPECT_EQ(c->run.rounds, 9);

  // A mapping value replaces the whole subtree.
  auto d = parse("clients:\n  speed: {distribution: normal, mean: 5, std: 1}\n",
                 {"clients.speed={distribution: uniform, low: 1, high: 3}"});
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  sim::Distribution uniform = sim::Distribution::constant(100.0);
  uniform.kind = "uniform";
  uniform.low = 1;
  uniform.high = 3;
  expect_same(d->clients.speed, uniform, "replaced speed");
}

TEST(ConfigOverrideTest, UnknownKeysAndBadValuesNameTheOverride) {
  EXPECT_EQ(error_message("{}", {"run.round=5"}),
            "demo.yaml: run.round: unknown key (known: rounds, max_virtual_time_s, eval_every, "
            "eval_interval_s, target_accuracy, seed, threads, reproducible) (from override "
            "'run.round=5')");
  EXPECT_EQ(error_message("{}", {"foo.bar=1"}),
            "demo.yaml: foo: unknown key (known: data, clients, model, models, training, strategy, "
            "strategies, run, admission, compression, robust, contribution, attack, privacy) (from "
            "override 'foo.bar=1')");
  EXPECT_EQ(error_message("{}", {"training.lr=fast"}),
            "demo.yaml: training.lr: expected a number, got 'fast' (from override "
            "'training.lr=fast')");
  EXPECT_EQ(error_message("{}", {"training.lr="}),
            "demo.yaml: training.lr: expected a number, got null (from override 'training.lr=')");
  EXPECT_EQ(error_message("{}", {"clients.speed={distribution: normal, mean: 0}"}),
            "demo.yaml: clients.speed.mean: must be > 0, got 0 (from override "
            "'clients.speed={distribution: normal, mean: 0}')");
  // An error in the file itself does not mention overrides.
  EXPECT_EQ(error_message("training:\n  lr: fast\n", {"training.momentum=0.5"}),
            "demo.yaml: training.lr: expected a number, got 'fast'");
}

TEST(ConfigOverrideTest, MalformedOverrides) {
  EXPECT_EQ(error_message("{}", {"training.lr"}),
            "demo.yaml: override 'training.lr': expected key.path=value (e.g. training.lr=0.1)");
  EXPECT_EQ(error_message("{}", {"=5"}), "demo.yaml: override '=5': empty key path before '='");
  EXPECT_EQ(error_message("{}", {" =5"}), "demo.yaml: override ' =5': empty key path before '='");
  EXPECT_EQ(error_message("{}", {"training..lr=5"}),
            "demo.yaml: override 'training..lr=5': empty key in path 'training..lr'");
  EXPECT_EQ(error_message("{}", {"training.lr.=5"}),
            "demo.yaml: override 'training.lr.=5': empty key in path 'training.lr.'");
  // yaml-cpp marks an unterminated flow sequence at its opening bracket.
  EXPECT_EQ(error_message("{}", {"model.hidden=[1,"}),
            "demo.yaml: override 'model.hidden=[1,': value: YAML syntax error at line 1, column "
            "1: end of sequence flow not found");
  EXPECT_EQ(error_message("{}", {"model.hidden={a: 1, a: 2}"}),
            "demo.yaml: model.hidden.a: duplicate key (from override 'model.hidden={a: 1, a: 2}')");
  EXPECT_EQ(error_message("training:\n  lr: 0.05\n", {"training.lr.x=1"}),
            "demo.yaml: override 'training.lr.x=1': cannot set a key inside training.lr, which "
            "is 0.05, not a mapping");
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           (std::string("cohort_config_test_") + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigFileTest, LoadsFileWithOverrides) {
  const std::string path = write("run.yaml", kFullConfig);
  auto c = load_simulation_config(path, {"run.threads=4"});
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->model.name, "cnn");
  EXPECT_EQ(c->clients.num_clients, 64);
  EXPECT_EQ(c->run.threads, 4);
}

TEST_F(ConfigFileTest, ErrorsArePrefixedWithThePath) {
  const std::string path = write("bad.yaml", "training:\n  lr: fast\n");
  auto c = load_simulation_config(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.error().message(), path + ": training.lr: expected a number, got 'fast'");
}

TEST_F(ConfigFileTest, MissingFileOrDirectoryIsNotFound) {
  const std::string missing = (dir_ / "nope.yaml").string();
  auto c = load_simulation_config(missing);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(c.error().message(),
            "cannot read config file '" + missing + "': No such file or directory");

  auto d = load_simulation_config(dir_.string());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), StatusCode::kNotFound);
  EXPECT_THAT(d.error().message(), StartsWith("cannot read config file '" + dir_.string() + "'"));
}

// The "complete example" of docs/config.md must load and mean what the page says.

}  // namespace
}  // namespace cohort

namespace cohort {
namespace {

using namespace config_testing;  // NOLINT

TEST(ConfigCompressionTest, ChainsAsStringsListsAndOverrides) {
  auto c = parse("compression:\n  uplink: topk:0.01 -> int8 -> zstd\n  downlink: fp16\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->compression.uplink, "topk:0.01 -> int8 -> zstd");
  EXPECT_EQ(c->compression.downlink, "fp16");
  c = parse("compression:\n  uplink: [topk:0.01, int8, zstd]\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->compression.uplink, "topk:0.01 -> int8 -> zstd");
  EXPECT_EQ(c->compression.downlink, "none");
  c = parse("{}", {"compression.uplink=topk:0.01 -> int8 -> zstd"});
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->compression.uplink, "topk:0.01 -> int8 -> zstd");
  EXPECT_EQ(parse("{}")->compression.uplink, "none");
}

TEST(ConfigCompressionTest, BadChainsNameTheKeyAndTheStage) {
  EXPECT_EQ(error_message("compression:\n  uplink: int8 -> topk:0.1\n"),
            "demo.yaml: compression.uplink: compression chain 'int8 -> topk:0.1': a sparsifier "
            "(topk, randk) must come before a value codec (f32, fp16, bf16, int8/4/2, terngrad, "
            "kmeans) (order: sparsifier -> value codec -> byte codec)");
  EXPECT_NE(error_message("compression:\n  downlink: randk:0.5\n").find("compression.downlink"),
            std::string::npos);
  EXPECT_NE(error_message("compression:\n  uplink: []\n").find("compression.uplink"),
            std::string::npos);
  EXPECT_NE(error_message("compression:\n  uplnk: int8\n").find("unknown key (known: uplink, "
                                                                 "downlink, downlink_delta, "
                                                                 "downlink_history)"),
            std::string::npos);
  EXPECT_EQ(error_message("compression:\n  downlink_delta: true\n"),
            "demo.yaml: compression.downlink_delta: needs a downlink chain (compression.downlink "
            "is none)");
  // A strategies: item's sparse downlink is fine when the section sends changes.
  EXPECT_NE(error_message("strategies:\n  - {name: fedavg, downlink: topk:0.1}\n")
                .find("strategies[0].downlink: 'topk:0.1' sparsifies"),
            std::string::npos);
  auto c = parse(
      "compression: {downlink: int8, downlink_delta: true, downlink_history: 2}\n"
      "strategies:\n  - {name: fedavg, downlink: topk:0.1 -> int8}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_TRUE(c->compression.downlink_delta);
  EXPECT_EQ(c->compression.downlink_history, 2);
  // An item may turn it on for itself.
  c = parse("strategies:\n  - {name: fedavg, downlink: topk:0.1, downlink_delta: true}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->strategies[0].downlink_delta, std::optional<bool>(true));
  EXPECT_TRUE(c->strategies[0].params.empty());
  EXPECT_EQ(error_message("strategies:\n  - {name: fedavg, downlink_delta: true}\n"),
            "demo.yaml: strategies[0].downlink_delta: needs a downlink chain "
            "(compression.downlink is none)");
}

TEST(ConfigModelsTest, SeveralModelsWithLabelsAndTargets) {
  auto c = parse(
      "models:\n  - {name: logreg, target_accuracy: 0.78}\n"
      "  - {name: mlp, label: small, hidden: [32]}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_EQ(c->models.size(), 2u);
  EXPECT_EQ(c->models[0].label, "logreg");
  EXPECT_EQ(c->models[0].target_accuracy, 0.78);
  EXPECT_EQ(c->models[1].label, "small");
  EXPECT_EQ(c->models[1].model.hidden, (std::vector<int64_t>{32}));
  EXPECT_EQ(c->models[1].target_accuracy, 0.0);
  EXPECT_NE(error_message("model: {name: mlp}\nmodels:\n  - {name: logreg}\n")
                .find("models: cannot be combined with a model: section"),
            std::string::npos);
  EXPECT_NE(error_message("models:\n  - {name: mlp}\n  - {name: mlp}\n")
                .find("models[1].name: 'mlp' labels two models"),
            std::string::npos);
  EXPECT_NE(error_message("models:\n  - {name: mlp, hidden: [0]}\n").find("models[0].hidden[0]"),
            std::string::npos);
  EXPECT_NE(error_message("models:\n  - {name: mlp, label: a/b}\n").find("models[0].label"),
            std::string::npos);
  EXPECT_NE(error_message("models:\n  - {name: mlp, target_accuracy: 2}\n")
                .find("models[0].target_accuracy: must be in [0, 1]"),
            std::string::npos);
  EXPECT_NE(error_message("models: []\n").find("models: expected a non-empty sequence"),
            std::string::npos);
}

TEST(ConfigRobustTest, SectionsParseWithDefaults) {
  auto c = parse("{}");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->robust.has_value());
  EXPECT_FALSE(c->contribution.enabled());
  EXPECT_EQ(c->attack.kind, "none");
  c = parse(
      "robust: {rule: krum, f: 2, bucketing: 2, client_momentum: 0.9}\n"
      "contribution: {method: loo, evaluations: 8, utility: loss, validation_examples: 200}\n"
      "attack: {kind: alie, clients: [3, 1], start: 10}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_TRUE(c->robust.has_value());
  EXPECT_EQ(c->robust->rule.rule, "krum");
  EXPECT_EQ(c->robust->rule.f, 2);
  EXPECT_EQ(c->robust->rule.bucketing, 2);
  EXPECT_DOUBLE_EQ(c->robust->client_momentum, 0.9);
  EXPECT_EQ(c->contribution.options.method, "loo");
  EXPECT_EQ(c->contribution.options.evaluations, 8);
  EXPECT_EQ(c->contribution.utility, "loss");
  EXPECT_EQ(c->contribution_validation_examples, 200);
  EXPECT_EQ(c->attack.kind, "alie");
  EXPECT_EQ(c->attack.clients, (std::vector<ClientId>{3, 1}));
  EXPECT_DOUBLE_EQ(c->attack.start, 10.0);
  // --set reaches every key; the JSON echo holds the sections that are on.
  c = parse("{}", {"robust.rule=trimmed_mean", "robust.beta=0.2", "attack.kind=sign_flip",
                   "attack.fraction=0.2"});
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_DOUBLE_EQ(c->robust->rule.beta, 0.2);
  const Json j = to_json(*c);
  EXPECT_EQ(j["robust"]["rule"], "trimmed_mean");
  EXPECT_EQ(j["attack"]["kind"], "sign_flip");
  EXPECT_FALSE(j.contains("contribution"));
}

TEST(ConfigRobustTest, BadValuesNameTheKey) {
  EXPECT_EQ(error_message("robust: {rule: krumm}\n").substr(0, 40),
            "demo.yaml: robust.rule: unknown 'krumm' ");
  EXPECT_EQ(error_message("robust: {rule: trimmed_mean, beta: 0.6}\n"),
            "demo.yaml: robust.beta: must be in [0, 0.5), got 0.6");
  EXPECT_EQ(error_message("robust: {client_momentum: 1.5}\n"),
            "demo.yaml: robust.client_momentum: must be in [0, 1), got 1.5");
  EXPECT_NE(error_message("robust: {rule: median, tau2: 1}\n").find("robust.tau2: unknown key"),
            std::string::npos);
  EXPECT_EQ(error_message("contribution: {method: banzhaf}\n"),
            "demo.yaml: contribution.method: unknown 'banzhaf' (known: none, loo, shapley)");
  EXPECT_EQ(error_message("attack: {kind: sign_flip, fraction: 1.5}\n"),
            "demo.yaml: attack.fraction: must be in [0, 1], got 1.5");
  EXPECT_NE(error_message("attack: {kind: nope}\n").find("attack.kind: unknown 'nope'"),
            std::string::npos);
}

TEST(ConfigRobustTest, StrategiesItemsSetOrClearTheirOwn) {
  auto c = parse(
      "robust: {rule: median}\n"
      "strategies:\n"
      "  - {name: fedavg, label: none, robust: none}\n"
      "  - {name: fedavg, label: krum, robust: {rule: krum, f: 1}}\n"
      "  - {name: fedavg, label: median}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_EQ(c->strategies.size(), 3u);
  EXPECT_TRUE(c->strategies[0].robust_set);
  EXPECT_FALSE(c->strategies[0].robust.has_value());
  EXPECT_EQ(c->strategies[1].robust->rule.rule, "krum");
  EXPECT_FALSE(c->strategies[2].robust_set);
  EXPECT_EQ(c->strategies[1].params.count("robust"), 0u);
  EXPECT_NE(error_message("strategies:\n  - {name: fedavg, robust: {rule: krum, f: -1}}\n")
                .find("strategies[0].robust.f"),
            std::string::npos);
}

}  // namespace
}  // namespace cohort
