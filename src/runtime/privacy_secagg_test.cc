// Secure aggregation in a strategy's update path (PrivacyRuntime with privacy.secagg): the
// committed model equals the plaintext weighted mean up to the fixed-point error, with and
// without dropouts below the threshold (then over the clients that stayed); above it the
// round fails with a clear error and the model is unchanged; DP on the server side is
// refused with it; the "secagg" event counts the protocol's bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "cohort/runtime/privacy.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/fedbuff.h"
#include "cohort/strategy/task_config.h"
#include "testing/fake_host.h"

namespace cohort::runtime {
namespace {

using testing::FakeHost;
using testing::make_update;
using testing::make_vector;
using testing::values;

PrivacyOptions secagg(double threshold = 2.0 / 3.0) {
  PrivacyOptions o;
  o.secagg.enabled = true;
  o.secagg.threshold = threshold;
  o.secagg.range = 10.0;
  return o;
}

struct Group {
  FakeHost host;
  std::unique_ptr<FedAvg> strategy;
  std::unique_ptr<PrivacyRuntime> privacy;
  std::shared_ptr<GroupAggregation> group;

  Status start(PrivacyOptions o, int64_t n, int64_t dim) {
    for (int64_t k = 0; k < n; ++k) host.add_client(k, 10 + 5 * k);
    strategy = std::make_unique<FedAvg>();
    COHORT_RETURN_IF_ERROR(
        strategy->start(&host, make_vector(std::vector<float>(static_cast<size_t>(dim), 0.0f))));
    privacy = std::make_unique<PrivacyRuntime>(o, host, privacy::derive_seed(9, "secagg"),
                                               host.num_clients(), 0);
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<GroupAggregation> g,
                            GroupAggregation::create(RobustOptions{}, nullptr, 1, privacy.get()));
    group = std::move(g);
    return strategy->set_group_aggregation(group, host.num_clients());
  }
  // One round: client k ends at ends[k], with 10 + 5k examples.
  void round(const std::vector<std::vector<float>>& ends) {
    strategy->on_client_idle(0);
    for (const Task& t : host.take_tasks()) {
      ASSERT_TRUE(strategy->on_update(make_update(t, ends[t.client], 10 + 5 * t.client)).ok());
    }
  }
  const Json* last(const std::string& kind) const {
    const Json* out = nullptr;
    for (const Json& e : host.events) {
      if (e.value("event", "") == kind) out = &e;
    }
    return out;
  }
};

std::vector<std::vector<float>> ends_for(int64_t n, int64_t dim) {
  std::vector<std::vector<float>> ends;
  Rng rng(4);
  for (int64_t k = 0; k < n; ++k) {
    std::vector<float> e(static_cast<size_t>(dim));
    for (float& x : e) x = static_cast<float>(rng.uniform(-3, 3));
    ends.push_back(e);
  }
  return ends;
}

// The example-weighted mean of -ends over `who`: the new model from 0 with server_lr 1.
std::vector<float> expected_model(const std::vector<std::vector<float>>& ends,
                                  const std::vector<ClientId>& who) {
  std::vector<double> acc(ends[0].size(), 0.0);
  double w = 0;
  for (ClientId k : who) {
    const double wk = 10.0 + 5.0 * static_cast<double>(k);
    for (size_t i = 0; i < acc.size(); ++i) acc[i] += wk * ends[k][i];
    w += wk;
  }
  std::vector<float> out(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) out[i] = static_cast<float>(acc[i] / w);
  return out;
}

TEST(SecAggRuntimeTest, SumEqualsThePlaintextWeightedMean) {
  Group g;
  const int64_t n = 6, dim = 50;
  ASSERT_TRUE(g.start(secagg(), n, dim).ok());
  auto ends = ends_for(n, dim);
  g.round(ends);
  ASSERT_EQ(g.strategy->version(), 1);
  const auto w = values(*g.strategy->global_model());
  const auto want = expected_model(ends, {0, 1, 2, 3, 4, 5});
  // Fixed point: each scaled value is within one quantum (range / (2^15 - 1)) of its input.
  const double quantum = 10.0 / 32767;
  for (int64_t i = 0; i < dim; ++i) EXPECT_NEAR(w[i], want[i], 2 * quantum) << i;
  const Json* ev = g.last("secagg");
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ((*ev)["members"], n);
  EXPECT_EQ((*ev)["included"], n);
  EXPECT_EQ((*ev)["threshold"], 4);  // ceil(2/3 x 5 neighbours)
  EXPECT_EQ((*ev)["bits"], 16 + 3);  // input bits + ceil(log2 6)
  EXPECT_GT((*ev)["bytes_to_server"].get<double>(), n * dim * 19 / 8.0);
  RunSummary summary;
  g.privacy->fill(summary);
  EXPECT_EQ(summary.secagg_groups, 1);
}

TEST(SecAggRuntimeTest, DropoutsBelowTheThresholdLeaveTheSurvivorsSum) {
  Group g;
  const int64_t n = 10, dim = 20;
  PrivacyOptions o = secagg(0.5);
  // Dropping before the masked input leaves the sum; after it, the input stays in (its self
  // mask is removed through the others' shares of b_u).
  o.secagg.dropout_before_masking = 0.25;
  o.secagg.dropout_after_masking = 0.2;
  ASSERT_TRUE(g.start(o, n, dim).ok());
  auto ends = ends_for(n, dim);
  g.round(ends);
  ASSERT_EQ(g.strategy->version(), 1);
  const Json* ev = g.last("secagg");
  ASSERT_NE(ev, nullptr);
  const auto dropped = (*ev)["dropped"].get<std::vector<ClientId>>();
  ASSERT_FALSE(dropped.empty()) << "seed chosen so that some clients drop";
  EXPECT_FALSE((*ev)["dropped_after_masking"].empty());
  std::vector<ClientId> kept;
  for (ClientId k = 0; k < n; ++k) {
    if (std::find(dropped.begin(), dropped.end(), k) == dropped.end()) kept.push_back(k);
  }
  const auto w = values(*g.strategy->global_model());
  const auto want = expected_model(ends, kept);
  for (int64_t i = 0; i < dim; ++i) EXPECT_NEAR(w[i], want[i], 2 * 10.0 / 32767) << i;
}

TEST(SecAggRuntimeTest, TooManyDropoutsFailTheRoundAndKeepTheModel) {
  Group g;
  PrivacyOptions o = secagg(0.9);
  o.secagg.dropout_before_masking = 0.6;
  ASSERT_TRUE(g.start(o, 8, 4).ok());
  g.round(ends_for(8, 4));
  EXPECT_EQ(g.strategy->version(), 0);
  EXPECT_EQ(values(*g.strategy->global_model()), std::vector<float>(4, 0.0f));
  const Json* round = g.last("round");
  ASSERT_NE(round, nullptr);
  const std::string error = round->value("error", "");
  EXPECT_NE(error.find("secure aggregation"), std::string::npos) << error;
  RunSummary summary;
  g.privacy->fill(summary);
  EXPECT_EQ(summary.secagg_failed, 1);
}

TEST(SecAggRuntimeTest, ServerSideDpAndTinyGroupsAreRefused) {
  Group g;
  PrivacyOptions o = secagg();
  o.dp.noise_multiplier = 1.0;
  o.dp.side = "server";
  Status s = g.start(o, 5, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("privacy.dp.side"), std::string::npos) << s.message();

  // Groups of two are refused at start (a sum of two reveals each to the other), and so are
  // words too narrow for the group.
  Group two;
  Status small = two.start(secagg(), 2, 2);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.message().find("at least 3"), std::string::npos) << small.message();
  Group narrow;
  PrivacyOptions bits = secagg();
  bits.secagg.bits = 17;
  Status n = narrow.start(bits, 6, 2);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.message().find("privacy.secagg.bits: must be >= 19"), std::string::npos)
      << n.message();
}

TEST(SecAggRuntimeTest, ClientSideDpWithSecAggSplitsTheNoise) {
  Group g;
  PrivacyOptions o = secagg(0.5);
  o.dp.noise_multiplier = 1.0;
  o.dp.clip_norm = 2.0;
  o.dp.side = "client";
  ASSERT_TRUE(g.start(o, 9, 3).ok());
  Task t;
  g.privacy->annotate(t);
  auto d = task_dp(t.config);
  ASSERT_TRUE(d.ok() && d->has_value());
  // No released sum holds fewer than ceil(0.5 x 9) = 5 inputs: each client adds
  // sigma / sqrt(5) = z S / sqrt(5).
  EXPECT_DOUBLE_EQ((*d)->noise_stddev, 1.0 * 2.0 / std::sqrt(5.0));
  // The clients clip (the server cannot); without their noise in this test the mean is the
  // clipped sum over C = 9.
  auto ends = ends_for(9, 3);
  std::vector<double> acc(3, 0.0);
  for (auto& e : ends) {
    double norm = 0;
    for (float x : e) norm += double(x) * x;
    norm = std::sqrt(norm);
    const double f = norm > 2.0 ? 2.0 / norm : 1.0;
    for (size_t i = 0; i < 3; ++i) {
      e[i] = static_cast<float>(e[i] * f);
      acc[i] += e[i];
    }
  }
  g.round(ends);
  ASSERT_EQ(g.strategy->version(), 1);
  const auto w = values(*g.strategy->global_model());
  // range = S + 4 sigma / sqrt(5) < 6: quantum < 6 / 32767 per client.
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(w[i], acc[i] / 9, 9 * 6.0 / 32767 / 9 + 1e-6);
  ASSERT_NE(g.last("privacy"), nullptr);
  EXPECT_GT(g.privacy->epsilon(), 0.0);
}

}  // namespace
}  // namespace cohort::runtime
