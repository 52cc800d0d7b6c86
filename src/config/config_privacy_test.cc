// The privacy: section: DP and secure aggregation settings parse with their defaults, reach
// every key through --set, echo in the JSON config, and bad values name the key.
#include <gtest/gtest.h>

#include "config/config_test_util.h"

namespace cohort {
namespace {

using config_testing::error_message;
using config_testing::parse;

TEST(ConfigPrivacyTest, SectionParsesWithDefaults) {
  auto c = parse("{}");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->privacy.enabled());
  EXPECT_FALSE(to_json(*c).contains("privacy"));
  c = parse(
      "privacy:\n"
      "  dp: {noise_multiplier: 1.1, clip_norm: 0.5, delta: 1e-6, target_epsilon: 3,\n"
      "       side: client, adaptive_clipping: true, target_quantile: 0.7}\n"
      "  secagg: {threshold: 0.6, neighbours: 8, input_bits: 12, range: 2}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  const auto& p = c->privacy;
  EXPECT_DOUBLE_EQ(p.dp.noise_multiplier, 1.1);
  EXPECT_DOUBLE_EQ(p.dp.clip_norm, 0.5);
  EXPECT_DOUBLE_EQ(p.dp.delta, 1e-6);
  EXPECT_EQ(p.dp.target_epsilon, 3.0);
  EXPECT_EQ(p.dp.side, "client");
  EXPECT_TRUE(p.dp.adaptive_clipping);
  EXPECT_DOUBLE_EQ(p.dp.target_quantile, 0.7);
  EXPECT_EQ(p.dp.conversion, "improved");
  // A secagg: section turns it on without enabled: true.
  EXPECT_TRUE(p.secagg.enabled);
  EXPECT_DOUBLE_EQ(p.secagg.threshold, 0.6);
  EXPECT_EQ(p.secagg.neighbours, 8);
  EXPECT_EQ(p.secagg.input_bits, 12);
  const Json j = to_json(*c);
  EXPECT_EQ(j["privacy"]["dp"]["side"], "client");
  EXPECT_EQ(j["privacy"]["dp"]["target_epsilon"], 3.0);
  EXPECT_EQ(j["privacy"]["secagg"]["neighbours"], 8);

  c = parse("{}", {"privacy.dp.noise_multiplier=0.9", "privacy.secagg.enabled=false"});
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_DOUBLE_EQ(c->privacy.dp.noise_multiplier, 0.9);
  EXPECT_FALSE(c->privacy.secagg.enabled);
  // target_epsilon alone: the noise multiplier is derived at start.
  c = parse("privacy: {dp: {target_epsilon: 8}}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_TRUE(c->privacy.dp.enabled());
}

TEST(ConfigPrivacyTest, BadValuesNameTheKey) {
  EXPECT_EQ(error_message("privacy: {dp: {noise_multiplier: -1}}\n"),
            "demo.yaml: privacy.dp.noise_multiplier: must be a finite number >= 0, got -1");
  EXPECT_EQ(error_message("privacy: {dp: {noise_multiplier: 1, delta: 2}}\n"),
            "demo.yaml: privacy.dp.delta: must be in (0, 1), got 2");
  EXPECT_NE(error_message("privacy: {dp: {noise_multiplier: 1, side: both}}\n")
                .find("privacy.dp.side: must be server or client"),
            std::string::npos);
  EXPECT_NE(error_message("privacy: {dp: {clip_norm: 2}}\n")
                .find("privacy.dp.noise_multiplier: required"),
            std::string::npos);
  EXPECT_NE(error_message("privacy: {dp: {noise_multiplier: 0}}\n")
                .find("privacy.dp.noise_multiplier: 0 turns the noise off"),
            std::string::npos);
  EXPECT_NE(error_message("privacy: {dp: {noise_multiplier: 1, epsilon: 3}}\n")
                .find("privacy.dp.epsilon: unknown key"),
            std::string::npos);
  EXPECT_EQ(error_message("privacy: {secagg: {neighbours: 3}}\n"),
            "demo.yaml: privacy.secagg.neighbours: must be an even count >= 0 (0 = every "
            "client), got 3");
  EXPECT_EQ(error_message("privacy: {secagg: {threshold: 2.5}}\n"),
            "demo.yaml: privacy.secagg.threshold: must be a fraction in (0, 1) or a whole count "
            ">= 2, got 2.5");
  EXPECT_NE(error_message("privacy: {secagg: {input_bits: 40}}\n").find("privacy.secagg.input_bits"),
            std::string::npos);
  EXPECT_NE(error_message("privacy: {dpp: {}}\n").find("privacy.dpp: unknown key"),
            std::string::npos);
}

TEST(ConfigPrivacyTest, StrategiesItemsSetOrClearTheirOwn) {
  auto c = parse(
      "privacy: {dp: {noise_multiplier: 1.0}}\n"
      "strategies:\n"
      "  - {name: fedavg, label: none, privacy: none}\n"
      "  - {name: fedavg, label: eps3, privacy: {dp: {target_epsilon: 3, clip_norm: 0.5}}}\n"
      "  - {name: fedavg, label: base}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_EQ(c->strategies.size(), 3u);
  EXPECT_TRUE(c->strategies[0].privacy_set);
  EXPECT_FALSE(c->strategies[0].privacy.enabled());
  EXPECT_EQ(c->strategies[1].privacy.dp.target_epsilon, 3.0);
  EXPECT_DOUBLE_EQ(c->strategies[1].privacy.dp.clip_norm, 0.5);
  EXPECT_FALSE(c->strategies[2].privacy_set);
  EXPECT_EQ(c->strategies[1].params.count("privacy"), 0u);
  // The JSON echo reads back as the same comparison.
  const Json j = to_json(*c);
  EXPECT_EQ(j["strategies"][0]["privacy"], "none");
  EXPECT_EQ(j["strategies"][1]["privacy"]["dp"]["target_epsilon"], 3.0);
  EXPECT_FALSE(j["strategies"][2].contains("privacy"));
  auto again = parse(j.dump());
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(again->strategies[1].privacy.dp.target_epsilon, 3.0);
  EXPECT_FALSE(again->strategies[0].privacy.enabled());
  // An item's bad value names the item's path.
  EXPECT_NE(error_message("strategies:\n  - {name: fedavg, privacy: {dp: {noise_multiplier: 1, "
                          "delta: 3}}}\n")
                .find("strategies[0].privacy.dp.delta: must be in (0, 1)"),
            std::string::npos);
}

}  // namespace
}  // namespace cohort
