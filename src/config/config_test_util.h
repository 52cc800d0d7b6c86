// Helpers shared by the config loader's tests.
#pragma once

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/config/config.h"

namespace cohort::config_testing {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

inline Result<SimulationConfig> parse(const std::string& text,
                                      const std::vector<std::string>& overrides = {}) {
  return parse_simulation_config(text, "demo.yaml", overrides);
}

// The error parsing `text` gives; OK (and a test failure) if it parses.
inline Status parse_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  auto r = parse(text, overrides);
  EXPECT_FALSE(r.ok()) << "expected an error for:\n" << text;
  if (r.ok()) return Status();
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << r.error().to_string();
  return r.error();
}

inline std::string error_message(const std::string& text,
                                 const std::vector<std::string>& overrides = {}) {
  return parse_error(text, overrides).message();
}

inline void expect_same(const sim::Distribution& a, const sim::Distribution& b,
                        const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.std, b.std);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_EQ(a.sigma, b.sigma);
  EXPECT_EQ(a.min, b.min);
  EXPECT_EQ(a.max, b.max);
}

// Field-by-field equality (the structs have no operator==); exact for doubles on purpose.
inline void expect_same(const SimulationConfig& a, const SimulationConfig& b) {
  EXPECT_EQ(a.data.dataset, b.data.dataset);
  EXPECT_EQ(a.data.path, b.data.path);
  EXPECT_EQ(a.data.train_limit, b.data.train_limit);
  EXPECT_EQ(a.data.test_limit, b.data.test_limit);
  EXPECT_EQ(a.data.partition.kind, b.data.partition.kind);
  EXPECT_EQ(a.data.partition.alpha, b.data.partition.alpha);
  EXPECT_EQ(a.data.partition.shards_per_client, b.data.partition.shards_per_client);
  EXPECT_EQ(a.data.partition.min_size, b.data.partition.min_size);
  EXPECT_EQ(a.data.partition.size_skew, b.data.partition.size_skew);
  EXPECT_EQ(a.data.holdout_fraction, b.data.holdout_fraction);
  EXPECT_EQ(a.data.partition.seed, b.data.partition.seed);
  EXPECT_EQ(a.data.synthetic.num_examples, b.data.synthetic.num_examples);
  EXPECT_EQ(a.data.synthetic.dim, b.data.synthetic.dim);
  EXPECT_EQ(a.data.synthetic.num_classes, b.data.synthetic.num_classes);
  EXPECT_EQ(a.data.synthetic.separation, b.data.synthetic.separation);
  EXPECT_EQ(a.data.synthetic.noise, b.data.synthetic.noise);
  EXPECT_EQ(a.data.synthetic.seed, b.data.synthetic.seed);
  EXPECT_EQ(a.data.synthetic_test_examples, b.data.synthetic_test_examples);
  EXPECT_EQ(a.clients.num_clients, b.clients.num_clients);
  expect_same(a.clients.speed, b.clients.speed, "speed");
  expect_same(a.clients.up_mbps, b.clients.up_mbps, "up_mbps");
  expect_same(a.clients.down_mbps, b.clients.down_mbps, "down_mbps");
  expect_same(a.clients.latency_ms, b.clients.latency_ms, "latency_ms");
  EXPECT_EQ(a.clients.trace, b.clients.trace);
  EXPECT_EQ(a.clients.dynamics.jitter, b.clients.dynamics.jitter);
  EXPECT_EQ(a.clients.dynamics.dropout, b.clients.dynamics.dropout);
  EXPECT_EQ(a.clients.dynamics.task_timeout_factor, b.clients.dynamics.task_timeout_factor);
  EXPECT_EQ(a.clients.dynamics.availability.mean_online_s,
            b.clients.dynamics.availability.mean_online_s);
  EXPECT_EQ(a.clients.dynamics.availability.mean_offline_s,
            b.clients.dynamics.availability.mean_offline_s);
  EXPECT_EQ(a.clients.dynamics.availability.distribution,
            b.clients.dynamics.availability.distribution);
  EXPECT_EQ(a.model.name, b.model.name);
  EXPECT_EQ(a.model.hidden, b.model.hidden);
  EXPECT_EQ(a.training.optimizer, b.training.optimizer);
  EXPECT_EQ(a.training.lr, b.training.lr);
  EXPECT_EQ(a.training.momentum, b.training.momentum);
  EXPECT_EQ(a.training.weight_decay, b.training.weight_decay);
  EXPECT_EQ(a.training.batch_size, b.training.batch_size);
  EXPECT_EQ(a.training.local_epochs, b.training.local_epochs);
  EXPECT_EQ(a.training.local_steps, b.training.local_steps);
  EXPECT_EQ(a.strategy.name, b.strategy.name);
  EXPECT_EQ(a.strategy.params, b.strategy.params);
  EXPECT_EQ(a.run.rounds, b.run.rounds);
  EXPECT_EQ(a.admission.norm_policy, b.admission.norm_policy);
  EXPECT_EQ(a.admission.norm_factor, b.admission.norm_factor);
  EXPECT_EQ(a.admission.max_examples, b.admission.max_examples);
  EXPECT_EQ(a.admission.max_metrics, b.admission.max_metrics);
  EXPECT_EQ(a.admission.max_model_growth, b.admission.max_model_growth);
  EXPECT_EQ(a.admission.max_abs_weight, b.admission.max_abs_weight);
  EXPECT_EQ(a.compression.uplink, b.compression.uplink);
  EXPECT_EQ(a.compression.downlink, b.compression.downlink);
  EXPECT_EQ(a.run.max_virtual_time_s, b.run.max_virtual_time_s);
  EXPECT_EQ(a.run.eval_every, b.run.eval_every);
  EXPECT_EQ(a.run.eval_interval_s, b.run.eval_interval_s);
  EXPECT_EQ(a.run.target_accuracy, b.run.target_accuracy);
  EXPECT_EQ(a.run.seed, b.run.seed);
  EXPECT_EQ(a.run.threads, b.run.threads);
}

// Every key set to a non-default value.
constexpr const char* kFullConfig = R"(
data:
  dataset: synthetic
  path: /tmp/somewhere
  train_limit: 6000
  test_limit: 1000
  partition: shards
  alpha: 0.1
  shards_per_client: 3
  min_size: 5
  size_skew: 0.25
  synthetic: {num_examples: 500, test_examples: 200, dim: 8, classes: 3,
              separation: 2.5, noise: 0.75}
clients:
  count: 64
  speed: {distribution: lognormal, mean: 80, sigma: 0.8, min: 5, max: 400}
  up_mbps: {distribution: uniform, low: 1, high: 10}
  down_mbps: {distribution: normal, mean: 50, std: 12.5}
  latency_ms: {distribution: exponential, mean: 30}
model:
  name: cnn
  hidden: [64, 32, 16]
training:
  optimizer: sgd
  lr: 0.01
  momentum: 0.9
  weight_decay: 0.0005
  batch_size: 64
  local_epochs: 2.5
  local_steps: 20
strategy:
  name: fedbuff
  buffer_size: 10
  server_lr: 1.0
  weighted: true
  mode: async
run:
  rounds: 200
  max_virtual_time_s: 3600.5
  eval_every: 5
  target_accuracy: 0.85
  seed: 18446744073709551615
  threads: 2
)";

}  // namespace cohort::config_testing
