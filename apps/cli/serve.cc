// `cohort serve CONFIG.yaml --listen HOST:PORT --tokens FILE (--cert C --key K | --insecure)
//   [--out DIR] [--checkpoint-dir D --checkpoint-every N] [--resume] [--set k=v]...`
//
// Reuses the simulate YAML (strategy, training, model, data, run; clients/partition are
// ignored). The budget is run.rounds commits or run.max_virtual_time_s read as wall seconds.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "cohort/config/config.h"
#include "cohort/data/idx.h"
#include "cohort/data/synthetic.h"
#include "cohort/deploy/server.h"
#include "cohort/strategy/registry.h"
#include "cohort/torch/torch_trainer.h"
#include "commands.h"

namespace cohort::cli {

namespace {

std::atomic<bool> g_serve_stop{false};

extern "C" void on_serve_signal(int) { g_serve_stop.store(true); }

struct ServeArgs {
  std::string config;
  std::string listen;
  std::string tokens;
  std::string cert, key;
  bool insecure = false;
  std::string out;
  std::string checkpoint_dir;
  int64_t checkpoint_every = 1;
  bool resume = false;
  bool no_eval = false;
  int64_t chunk_bytes = 1 << 20;
  int64_t max_concurrent_pushes = 0;
  double client_timeout_s = 10.0;
  double task_timeout_s = 0.0;
  std::vector<std::string> sets;
};

// The test split, for the model's input shape and (optionally) server-side evaluation.
Result<std::shared_ptr<const Dataset>> load_test_split(const SimulationConfig& cfg) {
  const DataConfig& d = cfg.data;
  if (d.dataset == "fashion-mnist") {
    COHORT_ASSIGN_OR_RETURN(Dataset ds, load_fashion_mnist(d.path, "test", d.test_limit));
    return std::make_shared<const Dataset>(std::move(ds));
  }
  if (d.dataset == "synthetic") {
    // Same seeding as the simulator's runner, so clients and server agree on the data.
    SyntheticOptions o = d.synthetic;
    o.seed = Rng::mix_seed(cfg.run.seed, "synthetic");
    o.num_examples = d.synthetic_test_examples;
    COHORT_ASSIGN_OR_RETURN(Dataset ds, make_synthetic(o, 1));
    return std::make_shared<const Dataset>(std::move(ds));
  }
  return Status::invalid_argument("data.dataset: unknown value '" + d.dataset +
                                  "' (known: fashion-mnist, synthetic)");
}

Status run_serve(const ServeArgs& a) {
  COHORT_ASSIGN_OR_RETURN(SimulationConfig cfg, load_simulation_config(a.config, a.sets));
  if (!cfg.strategies.empty()) {
    return Status::invalid_argument(a.config + ": strategies: lists several strategies; "
                                    "cohort serve runs one strategy: section");
  }
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy,
                          make_strategy(cfg.strategy.name, cfg.strategy.params));
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const Dataset> test, load_test_split(cfg));

  libtorch::ModelSpec spec;
  spec.name = cfg.model.name;
  spec.hidden = cfg.model.hidden;
  spec.input_shape = test->sample_shape;
  spec.num_classes = test->num_classes;
  libtorch::set_torch_threads(cfg.run.threads > 0 ? static_cast<int>(cfg.run.threads) : 1);
  COHORT_ASSIGN_OR_RETURN(TrainerFactory factory, libtorch::make_trainer_factory(spec));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, factory());
  // The same initial model as `cohort simulate` with this seed.
  COHORT_ASSIGN_OR_RETURN(ArrayRecord initial,
                          trainer->init_params(Rng::mix_seed(cfg.run.seed, "init")));

  deploy::ServerOptions o;
  o.listen_address = a.listen;
  o.tls_cert_file = a.cert;
  o.tls_key_file = a.key;
  o.insecure = a.insecure;
  o.tokens_file = a.tokens;
  o.chunk_bytes = a.chunk_bytes;
  o.max_concurrent_pushes = a.max_concurrent_pushes;
  o.client_timeout_s = a.client_timeout_s;
  o.heartbeat_interval_s = std::max(0.1, a.client_timeout_s / 5);
  o.task_timeout_s = a.task_timeout_s;
  o.checkpoint_dir = a.checkpoint_dir;
  o.checkpoint_every = a.checkpoint_every;
  o.resume = a.resume;
  o.max_rounds = cfg.run.rounds;
  o.max_wall_s = cfg.run.max_virtual_time_s;
  o.out_dir = a.out;
  o.seed = cfg.run.seed;
  o.training = cfg.training;
  o.eval_every = cfg.run.eval_every;
  o.start_fields = {{"config", to_json(cfg)}};
  if (!a.no_eval) {
    auto shared_trainer = std::shared_ptr<Trainer>(std::move(trainer));
    Shard shard = Shard::all(test);
    o.evaluate = [shared_trainer, shard](const ArrayRecord& m) -> Result<EvalResult> {
      try {
        return shared_trainer->evaluate(m, shard);
      } catch (const std::exception& e) {
        return Status::internal(std::string("evaluation: ") + e.what());
      }
    };
  }

  deploy::Server server(std::move(o), std::move(strategy), std::move(initial));
  COHORT_ASSIGN_OR_RETURN(int port, server.start());
  const size_t colon = a.listen.rfind(':');
  const std::string host = colon == std::string::npos ? a.listen : a.listen.substr(0, colon);
  std::printf("listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  std::signal(SIGINT, on_serve_signal);
  std::signal(SIGTERM, on_serve_signal);
  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    while (!finished.load()) {
      if (g_serve_stop.load()) {
        std::fprintf(stderr, "cohort serve: stopping (signal)\n");
        server.shutdown();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  Status s = server.wait();
  finished.store(true);
  watcher.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  COHORT_RETURN_IF_ERROR(s);
  std::printf("served %s: version %lld%s\n", cfg.strategy.name.c_str(),
              static_cast<long long>(server.version()),
              a.out.empty() ? "" : ("; metrics in " + a.out + "/metrics.jsonl").c_str());
  return Status();
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Run a deployment server (gRPC, docs/wire_format.md)");
  cmd->add_option("config", a->config, "YAML config (strategy, training, model, data, run)")
      ->required();
  cmd->add_option("--listen", a->listen, "HOST:PORT to listen on (port 0 = any free port)")
      ->required();
  cmd->add_option("--tokens", a->tokens, "Tokens file: lines \"TOKEN CLIENT_ID\"")->required();
  cmd->add_option("--cert", a->cert, "Server certificate (PEM)");
  cmd->add_option("--key", a->key, "Server private key (PEM)");
  cmd->add_flag("--insecure", a->insecure, "Serve without TLS (explicit opt-out)");
  cmd->add_option("--out", a->out, "Output directory for metrics.jsonl");
  cmd->add_option("--checkpoint-dir", a->checkpoint_dir, "Directory for crash-safe checkpoints");
  cmd->add_option("--checkpoint-every", a->checkpoint_every, "Checkpoint every N commits")
      ->capture_default_str();
  cmd->add_flag("--resume", a->resume, "Continue from the checkpoint in --checkpoint-dir");
  cmd->add_flag("--no-eval", a->no_eval, "Do not evaluate the global model on the test set");
  cmd->add_option("--chunk-bytes", a->chunk_bytes, "Stream chunk size in bytes")
      ->capture_default_str();
  cmd->add_option("--max-concurrent-pushes", a->max_concurrent_pushes,
                  "Assemble at most N updates at once (bounds memory; 0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--client-timeout", a->client_timeout_s,
                  "Seconds without any RPC after which a client's task is lost")
      ->capture_default_str();
  cmd->add_option("--task-timeout", a->task_timeout_s,
                  "Seconds after dispatch after which a task is lost (0 = none)")
      ->capture_default_str();
  cmd->add_option("--set", a->sets, "Override a config key: --set run.rounds=5")
      ->allow_extra_args(false);
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
