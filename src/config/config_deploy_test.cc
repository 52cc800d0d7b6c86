// The deploy file, where values come from in errors (ConfigSource), and option rules that live
// with their structs but are reported by the loader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cohort/config/config.h"
#include "config/config_test_util.h"

namespace cohort {
namespace {

using namespace config_testing;  // NOLINT

TEST(DeployConfigTest, ParsesEveryKey) {
  auto d = parse_deploy_config(R"(
listen: 0.0.0.0:7000
tokens: tokens.txt
cert: server.pem
key: server.key
max_wall_s: 3600
checkpoint_dir: ckpt
keep_checkpoints: 5
client_timeout_s: 30
heartbeat_interval_s: 3
task_timeout_s: 120
max_concurrent_pushes: 4
chunk_bytes: 65536
pull_wait_s: 0.25
done_grace_s: 1
server_eval: false
spool_dir: /var/tmp/uploads
spool_memory_bytes: 1048576
)",
                               "deploy.yaml");
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->listen_address, "0.0.0.0:7000");
  EXPECT_EQ(d->tokens_file, "tokens.txt");
  EXPECT_EQ(d->tls_cert_file, "server.pem");
  EXPECT_EQ(d->tls_key_file, "server.key");
  EXPECT_FALSE(d->insecure);
  EXPECT_EQ(d->max_wall_s, 3600);
  EXPECT_EQ(d->checkpoint_dir, "ckpt");
  EXPECT_EQ(d->keep_checkpoints, 5);
  EXPECT_EQ(d->client_timeout_s, 30);
  EXPECT_EQ(d->heartbeat_s(), 3);
  EXPECT_EQ(d->task_timeout_s, 120);
  EXPECT_EQ(d->max_concurrent_pushes, 4);
  EXPECT_EQ(d->chunk_bytes, 65536);
  EXPECT_EQ(d->pull_wait_s, 0.25);
  EXPECT_EQ(d->done_grace_s, 1);
  EXPECT_FALSE(d->server_eval);
  EXPECT_EQ(d->spool_dir, "/var/tmp/uploads");
  EXPECT_EQ(d->spool_memory_bytes, 1048576);
  EXPECT_EQ(d->resolved_spool_dir(), "/var/tmp/uploads");
  EXPECT_TRUE(d->validate().ok()) << d->validate().to_string();
  // Round trip through JSON (serve's config echo).
  const Json j = to_json(*d);
  auto back = parse_deploy_config(j.dump(), "echo.json");
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(to_json(*back), j);
}

TEST(DeployConfigTest, TypesAreCheckedAtLoadAndRulesByValidate) {
  EXPECT_EQ(parse_deploy_config("listen: [1, 2]\n", "d.yaml").error().message(),
            "d.yaml: listen: expected a string, got a sequence");
  EXPECT_EQ(parse_deploy_config("insecure: yes\n", "d.yaml").error().message(),
            "d.yaml: insecure: expected true or false, got 'yes'");
  EXPECT_EQ(parse_deploy_config("max_wal_s: 5\n", "d.yaml")
                .error()
                .message()
                .rfind("d.yaml: max_wal_s: unknown key (known: listen, tokens", 0),
            0u);
  EXPECT_THAT(parse_deploy_config("{}", "d.yaml", {"client_timeout_s=fast"}).error().message(),
              HasSubstr("(from override 'client_timeout_s=fast')"));
  DeployConfig d;
  d.insecure = true;
  EXPECT_TRUE(d.validate().ok());
  d.client_timeout_s = 0;
  EXPECT_EQ(d.validate().message(), "deploy.client_timeout_s: must be > 0, got 0");
  d = DeployConfig();
  EXPECT_THAT(d.validate().message(), HasSubstr("--insecure"));  // neither TLS nor insecure
  d.insecure = true;
  d.tls_cert_file = "c.pem";
  EXPECT_THAT(d.validate().message(), HasSubstr("choose one"));
  d = DeployConfig();
  d.insecure = true;
  d.resume = true;
  EXPECT_THAT(d.validate().message(), HasSubstr("--resume needs --checkpoint-dir"));
  d.checkpoint_dir = "ckpt";
  EXPECT_TRUE(d.validate().ok());
  d.listen_address = "localhost";
  EXPECT_THAT(d.validate().message(), HasSubstr("deploy.listen: expected HOST:PORT"));
}

TEST(ConfigSourceTest, ErrorsFoundAfterLoadingNameTheFileAndOverride) {
  auto c = parse("strategy: {name: fedavg}\n", {"strategy.min_clients=30", "run.seed=4"});
  ASSERT_TRUE(c.ok());
  const Status late = Status::invalid_argument(
      "strategy.min_clients: must be <= the number of clients (20), got 30");
  EXPECT_EQ(c->source.explain(late).message(),
            "demo.yaml: strategy.min_clients: must be <= the number of clients (20), got 30 "
            "(from override 'strategy.min_clients=30')");
  EXPECT_EQ(c->source.explain(late).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->source.explain(Status::not_found("x: gone")).message(), "demo.yaml: x: gone");
  EXPECT_TRUE(c->source.explain(Status()).ok());
  ASSERT_NE(c->source.override_for("run.seed"), nullptr);
  EXPECT_EQ(*c->source.override_for("run.seed"), "run.seed=4");
  EXPECT_EQ(c->source.override_for("run.rounds"), nullptr);
}

TEST(ConfigRulesTest, RangeErrorsQuoteTheValueAsWritten) {
  // The rule is TrainConfig::validate's; the loader quotes the YAML text, not a reformatting.
  EXPECT_EQ(error_message("training:\n  lr: -1e-3\n"),
            "demo.yaml: training.lr: must be > 0, got -1e-3");
  EXPECT_EQ(error_message("training:\n  momentum: 1.00\n"),
            "demo.yaml: training.momentum: must be in [0, 1), got 1.00");
  EXPECT_EQ(error_message("run:\n  threads: -2\n"), "demo.yaml: run.threads: must be >= 0, got -2");
  EXPECT_EQ(error_message("run:\n  seed: -5\n"),
            "demo.yaml: run.seed: expected a non-negative integer, got -5");
  // An mlp needs a hidden layer (the docs used to allow an empty list).
  EXPECT_EQ(error_message("model:\n  name: mlp\n  hidden: []\n"),
            "demo.yaml: model.hidden: mlp needs at least one hidden layer");
  EXPECT_TRUE(parse("model:\n  name: logreg\n  hidden: []\n").ok());
  // A deployment config may leave the simulated budget unset.
  EXPECT_TRUE(
      parse_simulation_config("run: {rounds: 0}\n", "s.yaml", {}, ConfigUse::kDeployment).ok());
  EXPECT_FALSE(parse_simulation_config("run: {rounds: 0}\n", "s.yaml").ok());
}

TEST(ConfigAdmissionTest, ParsesAndChecksTheBounds) {
  auto c = parse("admission: {norm_policy: clip, norm_factor: 5, max_examples: 1000, "
                 "max_norm: 3.5}\n");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->admission.norm_policy, "clip");
  EXPECT_EQ(c->admission.norm_factor, 5);
  EXPECT_EQ(c->admission.max_examples, 1000);
  EXPECT_EQ(c->admission.max_norm, 3.5);
  EXPECT_EQ(parse(kFullConfig)->admission.norm_policy, "reject");  // the default
  EXPECT_EQ(error_message("admission: {norm_policy: shrink}\n"),
            "demo.yaml: admission.norm_policy: unknown value 'shrink' (known: off, reject, clip, "
            "downweight)");
  EXPECT_EQ(error_message("admission: {norm_factor: 0.5}\n"),
            "demo.yaml: admission.norm_factor: must be >= 1, got 0.5");
  EXPECT_EQ(error_message("x: 1\n", {}).rfind("demo.yaml: x: unknown key", 0), 0u);
  EXPECT_THAT(error_message("{}", {"admission.max_metrics=-1"}),
              HasSubstr("admission.max_metrics: must be >= 0, got -1 (from override"));
}

}  // namespace
}  // namespace cohort
