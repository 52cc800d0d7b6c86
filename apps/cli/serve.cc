// `cohort serve CONFIG.yaml [--deploy DEPLOY.yaml] [--listen HOST:PORT] [--tokens FILE]
//   (--cert C --key K | --insecure) [--out DIR] [--checkpoint-dir D [--keep-checkpoints N]]
//   [--resume] [--max-wall-s S] [--dashboard HOST:PORT [--dashboard-token-file F]]
//   [--set k=v]... [--upstream HOST:PORT --upstream-token-file F (--upstream-ca CA |
//   --upstream-insecure) [--relay-min-clients N] [--relay-fraction F] [--relay-deadline-s S]]`
//
// With --upstream the process is an aggregator (deploy/aggregator.h): a server to its own
// clients and one weighted client of the server above (docs/design/hierarchy.md).
// The training config (strategy, training, model, data for the server's test split, run:
// rounds, eval_every, seed) is the YAML every command reads; the deployment's own settings
// (listen address, tokens, TLS, wall-clock budget, checkpoints, timeouts) come from the
// --deploy file (docs/config.md, "Deployment") and the flags below, which override it.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cohort/config/config.h"
#include "cohort/deploy/aggregator.h"
#include "cohort/deploy/server.h"
#include "cohort/runner/runner.h"
#include "cohort/runner/serving.h"
#include "cohort/strategy/registry.h"
#include "commands.h"
#include "common.h"
#include "live_dashboard.h"
#include "reproducible.h"

namespace cohort::cli {

namespace {

std::atomic<int> g_serve_signals{0};

extern "C" void on_serve_signal(int) { g_serve_signals.fetch_add(1); }

struct ServeArgs {
  ConfigArgs cfg;
  std::string deploy_file;
  std::vector<std::string> deploy_sets;
  // Flags override the deploy file; unset ones leave it alone.
  std::optional<std::string> listen, tokens, cert, key, checkpoint_dir;
  bool insecure = false;
  bool resume = false;
  bool no_eval = false;
  std::optional<int64_t> keep_checkpoints, chunk_bytes, max_concurrent_pushes;
  std::optional<double> client_timeout_s, task_timeout_s, max_wall_s;
  std::string out;
  DashboardArgs dashboard;
  // Aggregator (--upstream): the server above and the round each of its tasks becomes.
  std::string upstream, upstream_token_file, upstream_ca, upstream_ssl_target_name;
  bool upstream_insecure = false;
  double upstream_max_disconnected_s = 300.0;
  RoundOptions relay;
};

// The deploy file (if any) with the flags applied, then validated.
Result<DeployConfig> deploy_config(const ServeArgs& a) {
  DeployConfig d;
  if (!a.deploy_file.empty()) {
    COHORT_ASSIGN_OR_RETURN(d, load_deploy_config(a.deploy_file, a.deploy_sets));
  } else if (!a.deploy_sets.empty()) {
    // --deploy-set without --deploy: the overrides apply to an empty file (every default).
    COHORT_ASSIGN_OR_RETURN(d, parse_deploy_config("{}", "--deploy-set", a.deploy_sets));
  }
  if (a.listen) d.listen_address = *a.listen;
  if (a.tokens) d.tokens_file = *a.tokens;
  if (a.cert) d.tls_cert_file = *a.cert;
  if (a.key) d.tls_key_file = *a.key;
  if (a.insecure) d.insecure = true;
  if (a.checkpoint_dir) d.checkpoint_dir = *a.checkpoint_dir;
  if (a.keep_checkpoints) d.keep_checkpoints = *a.keep_checkpoints;
  if (a.resume) d.resume = true;
  if (a.no_eval) d.server_eval = false;
  if (a.chunk_bytes) d.chunk_bytes = *a.chunk_bytes;
  if (a.max_concurrent_pushes) d.max_concurrent_pushes = *a.max_concurrent_pushes;
  if (a.client_timeout_s) d.client_timeout_s = *a.client_timeout_s;
  if (a.task_timeout_s) d.task_timeout_s = *a.task_timeout_s;
  if (a.max_wall_s) d.max_wall_s = *a.max_wall_s;
  COHORT_RETURN_IF_ERROR(d.validate());
  return d;
}

// Runs `run` with SIGINT / SIGTERM watched: the first calls `stop` (end gracefully: polling
// clients are told DONE for deploy.done_grace_s), a second one `now` (stop at once).
Status run_with_signals(const std::function<Status()>& run, const std::function<void()>& stop,
                        const std::function<void()>& now) {
  std::signal(SIGINT, on_serve_signal);
  std::signal(SIGTERM, on_serve_signal);
  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    int handled = 0;
    while (!finished.load()) {
      const int signals = g_serve_signals.load();
      if (signals > handled) {
        handled = signals;
        if (handled == 1) {
          std::fprintf(stderr,
                       "cohort serve: stopping (signal): telling clients the run is over\n");
          stop();
        } else {
          std::fprintf(stderr, "cohort serve: stopping now (second signal)\n");
          now();
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  Status s = run();
  finished.store(true);
  watcher.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  return s;
}

// cohort serve --upstream: the middle tier. The config gives the model (its layout), the
// training section (each client's default steps), admission, codecs to its clients and robust
// rules; the strategy: section is the top server's business and is not read here.
Status run_aggregator(const ServeArgs& a, DeployConfig deploy, const SimulationConfig& cfg) {
  if (a.upstream_ca.empty() == !a.upstream_insecure) {
    return Status::invalid_argument(
        "cohort serve --upstream: give --upstream-ca CA.pem (TLS) or --upstream-insecure");
  }
  if (a.upstream_token_file.empty()) {
    return Status::invalid_argument("cohort serve --upstream: --upstream-token-file is required");
  }
  COHORT_ASSIGN_OR_RETURN(std::string token,
                          read_token_file(a.upstream_token_file, "--upstream-token-file"));
  deploy.server_eval = false;
  COHORT_ASSIGN_OR_RETURN(ServingSetup setup, prepare_serving(cfg, deploy, a.out));
  deploy::AggregatorOptions o;
  o.server = std::move(setup.options);
  o.upstream.server = a.upstream;
  o.upstream.token = token;
  o.upstream.ca_file = a.upstream_ca;
  o.upstream.insecure = a.upstream_insecure;
  o.upstream.ssl_target_name = a.upstream_ssl_target_name;
  o.upstream.max_disconnected_s = a.upstream_max_disconnected_s;
  o.upstream.seed = cfg.run.seed;
  o.upstream.training = cfg.training;
  o.upstream.log = [](const std::string& line) {
    std::fprintf(stderr, "cohort serve: upstream: %s\n", line.c_str());
  };
  o.round = a.relay;
  deploy::Aggregator agg(std::move(o), std::move(setup.initial));
  COHORT_ASSIGN_OR_RETURN(int port, agg.start());
  const size_t colon = deploy.listen_address.rfind(':');
  std::printf("listening on %s:%d\naggregating for %s\n",
              deploy.listen_address.substr(0, colon).c_str(), port, a.upstream.c_str());
  std::fflush(stdout);
  Status s = run_with_signals(
      [&] {
        return agg.run();
      },
      [&] {
        agg.stop();
      },
      [&] {
        agg.stop();
      });
  COHORT_RETURN_IF_ERROR(s);
  std::printf("aggregated %lld upstream tasks%s\n", static_cast<long long>(agg.jobs_done()),
              a.out.empty() ? "" : ("; metrics in " + a.out + "/metrics.jsonl").c_str());
  return Status();
}

Status run_serve(const ServeArgs& a) {
  COHORT_ASSIGN_OR_RETURN(DeployConfig deploy, deploy_config(a));
  COHORT_ASSIGN_OR_RETURN(
      SimulationConfig cfg,
      load_simulation_config(a.cfg.config, a.cfg.overrides(), ConfigUse::kDeployment));
  COHORT_RETURN_IF_ERROR(apply_reproducibility(cfg.run));
  if (!cfg.strategies.empty()) {
    return Status::invalid_argument(a.cfg.config +
                                    ": strategies: lists several strategies; "
                                    "cohort serve runs one strategy: section");
  }
  if (!a.upstream.empty()) return run_aggregator(a, std::move(deploy), cfg);
  // The population is the tokens file's, checked when the server starts.
  COHORT_RETURN_IF_ERROR(cfg.source.explain(check_strategies(cfg, 0)));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy,
                          make_strategy(cfg.strategy.name, cfg.strategy.params));
  COHORT_ASSIGN_OR_RETURN(ServingSetup setup, prepare_serving(cfg, deploy, a.out));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<LiveDashboard> dash, start_dashboard(a.dashboard));
  if (dash) setup.options.sinks.push_back(dash->sink());
  deploy::Server server(std::move(setup.options), std::move(strategy), std::move(setup.initial));
  COHORT_ASSIGN_OR_RETURN(int port, server.start());
  const size_t colon = deploy.listen_address.rfind(':');
  std::printf("listening on %s:%d\n", deploy.listen_address.substr(0, colon).c_str(), port);
  std::fflush(stdout);

  Status s = run_with_signals(
      [&] {
        return server.wait();
      },
      [&] {
        server.request_stop("signal");
      },
      [&] {
        server.shutdown();
      });
  COHORT_RETURN_IF_ERROR(s);
  std::printf("served %s: version %lld%s\n", cfg.strategy.name.c_str(),
              static_cast<long long>(server.version()),
              a.out.empty() ? "" : ("; metrics in " + a.out + "/metrics.jsonl").c_str());
  return Status();
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd =
      app.add_subcommand("serve", "Run a deployment server (gRPC, docs/wire_format.md)");
  a->cfg.add_options(cmd);
  cmd->add_option("--deploy", a->deploy_file,
                  "Deployment file (listen, tokens, TLS, budget, checkpoints; docs/config.md)");
  cmd->add_option("--deploy-set", a->deploy_sets,
                  "Override a deploy-file key: --deploy-set max_wall_s=60")
      ->allow_extra_args(false);
  cmd->add_option("--listen", a->listen, "HOST:PORT to listen on (port 0 = any free port)");
  cmd->add_option("--tokens", a->tokens, "Tokens file: lines \"TOKEN CLIENT_ID\"");
  cmd->add_option("--cert", a->cert, "Server certificate (PEM)");
  cmd->add_option("--key", a->key, "Server private key (PEM)");
  cmd->add_flag("--insecure", a->insecure, "Serve without TLS (explicit opt-out)");
  cmd->add_option("--out", a->out, "Output directory for metrics.jsonl and summary.json");
  cmd->add_option("--checkpoint-dir", a->checkpoint_dir, "Directory for crash-safe checkpoints");
  cmd->add_option("--keep-checkpoints", a->keep_checkpoints,
                  "Checkpoints kept in --checkpoint-dir, newest first (3)");
  cmd->add_flag("--resume", a->resume, "Continue from the checkpoint in --checkpoint-dir");
  cmd->add_flag("--no-eval", a->no_eval, "Do not evaluate the global model on the test set");
  cmd->add_option("--max-wall-s", a->max_wall_s,
                  "Wall-clock budget in seconds (0 = none; or run.rounds)");
  cmd->add_option("--chunk-bytes", a->chunk_bytes, "Stream chunk size in bytes (1048576)");
  cmd->add_option("--max-concurrent-pushes", a->max_concurrent_pushes,
                  "Assemble at most N updates at once (bounds memory; 0 = no limit)");
  cmd->add_option("--client-timeout", a->client_timeout_s,
                  "Seconds without any RPC after which a client's task is lost (10)");
  cmd->add_option("--task-timeout", a->task_timeout_s,
                  "Seconds after dispatch after which a task is lost (0 = none)");
  a->dashboard.add_options(cmd);
  cmd->add_option("--upstream", a->upstream,
                  "Run as an aggregator: a client of the server at HOST:PORT that forwards one "
                  "partial aggregate of its own clients per task (docs/design/hierarchy.md)");
  cmd->add_option("--upstream-token-file", a->upstream_token_file,
                  "File holding the aggregator's bearer token for the server above");
  cmd->add_option("--upstream-ca", a->upstream_ca,
                  "PEM file of the CA that signed the upstream server's certificate");
  cmd->add_flag("--upstream-insecure", a->upstream_insecure, "Connect upstream without TLS");
  cmd->add_option("--upstream-ssl-target-name", a->upstream_ssl_target_name,
                  "Name to verify the upstream certificate against (default: its host)");
  cmd->add_option("--upstream-max-disconnected-s", a->upstream_max_disconnected_s,
                  "Give up after this long without reaching the server above (0 = never)")
      ->capture_default_str();
  cmd->add_option("--relay-min-clients", a->relay.min_clients,
                  "Aggregator: clients that must poll before a task's round starts")
      ->capture_default_str();
  cmd->add_option("--relay-fraction", a->relay.fraction,
                  "Aggregator: fraction of the polling clients a round samples")
      ->capture_default_str();
  cmd->add_option("--relay-deadline-s", a->relay.round_deadline_s,
                  "Aggregator: forward what arrived this many seconds after a round opened "
                  "(0 = wait for every sampled client)")
      ->capture_default_str();
  cmd->callback([a] {
    try {
      Status s = run_serve(*a);
      if (!s.ok()) fail(s);
    } catch (const std::exception& e) {
      fail(Status::internal(std::string("cohort serve: ") + e.what()));
    }
  });
}

}  // namespace cohort::cli
