// `cohort join --server HOST:PORT --token-file F (--ca CA.pem | --insecure) [--partition i/N]
//  [--set key=value]... CONFIG.yaml`
//
// Runs one deployment client: loads the data the YAML names (data: section), takes part i of
// N of the training set (data/shards.h: the shard client i gets in a simulation of N clients
// with the same data: section and run.seed), builds the LibTorch trainer for model:, and
// trains tasks from the server until it says the run is over.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cohort/config/config.h"
#include "cohort/data/data_config.h"
#include "cohort/data/shards.h"
#include "cohort/deploy/client.h"
#include "cohort/runner/runner.h"
#include "cohort/torch/torch_trainer.h"
#include "commands.h"
#include "common.h"
#include "reproducible.h"

namespace cohort::cli {

namespace {

std::atomic<bool> g_join_stop{false};

extern "C" void on_join_sigint(int) {
  g_join_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

struct JoinArgs {
  std::string config;
  std::string server;
  std::string token_file;
  std::string state_dir;
  std::string ca;
  bool insecure = false;
  std::string ssl_target_name;
  std::string partition = "0/1";
  std::vector<std::string> sets;
  int64_t threads = 1;
  double max_disconnected_s = 300.0;
  double backoff_max_s = 5.0;
  std::string inject_fault = "none";
  std::string attack = "none";
  bool quiet = false;
};

// "i/N" with 0 <= i < N.
Result<std::pair<int64_t, int64_t>> parse_partition(const std::string& s) {
  const auto slash = s.find('/');
  auto bad = [&] {
    return Status::invalid_argument("--partition: expected i/N with 0 <= i < N, got '" + s + "'");
  };
  if (slash == std::string::npos) return bad();
  try {
    size_t a = 0, b = 0;
    const std::string left = s.substr(0, slash), right = s.substr(slash + 1);
    const long long i = std::stoll(left, &a);
    const long long n = std::stoll(right, &b);
    if (a != left.size() || b != right.size() || n < 1 || i < 0 || i >= n) return bad();
    return std::make_pair(static_cast<int64_t>(i), static_cast<int64_t>(n));
  } catch (const std::exception&) {
    return bad();
  }
}

void run_join(const JoinArgs& a) {
  Result<std::pair<int64_t, int64_t>> part = parse_partition(a.partition);
  if (!part.ok()) return fail(part.error());
  const auto [index, count] = *part;
  Result<deploy::InjectedFault> fault = deploy::parse_injected_fault(a.inject_fault);
  if (!fault.ok()) return fail(fault.error());
  Result<std::string> token = read_token_file(a.token_file, "--token-file");
  if (!token.ok()) return fail(token.error());

  Result<SimulationConfig> cfg = load_simulation_config(a.config, a.sets, ConfigUse::kDeployment);
  if (!cfg.ok()) return fail(cfg.error());
  if (Status r = apply_reproducibility(cfg->run); !r.ok()) return fail(r);
  Result<std::shared_ptr<const Dataset>> train = load_split(cfg->data, "train", cfg->run.seed);
  if (!train.ok()) return fail(train.error());
  // The same shard client `index` gets in a simulation of `count` clients.
  Result<ClientData> mine = client_data(*train, index, count, cfg->data, cfg->run.seed);
  if (!mine.ok()) return fail(mine.error().with_context("--partition " + a.partition));
  libtorch::set_torch_threads(static_cast<int>(a.threads));
  Result<TrainerFactory> factory = trainer_factory(*cfg, **train);
  if (!factory.ok()) return fail(factory.error());
  Result<std::unique_ptr<Trainer>> trainer = (*factory)();
  if (!trainer.ok()) return fail(trainer.error());
  Shard shard = std::move(mine->train);
  // --attack KIND[:X]: X is the scale (sign_flip, scaling), sigma (gaussian) or the mode
  // (free_rider: zero | noise).
  attack::AttackOptions attack;
  {
    const size_t colon = a.attack.find(':');
    attack.kind = a.attack.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : a.attack.substr(colon + 1);
    Result<attack::Kind> kind = attack::parse_kind(attack.kind);
    if (!kind.ok()) return fail(kind.error().with_context("--attack"));
    if (attack::is_colluding(*kind)) {
      return fail(Status::invalid_argument(
          "--attack: " + attack.kind +
          " needs the other clients' updates (a colluding attack): simulator only"));
    }
    if (!arg.empty()) {
      if (*kind == attack::Kind::kFreeRider) {
        attack.free_rider = arg;
      } else {
        char* end = nullptr;
        const double x = std::strtod(arg.c_str(), &end);
        if (end == arg.c_str() || *end != '\0') {
          return fail(Status::invalid_argument("--attack: '" + arg + "' is not a number"));
        }
        (*kind == attack::Kind::kGaussian ? attack.sigma : attack.scale) = x;
      }
    }
    Status ok = attack::check_options(attack);
    if (!ok.ok()) return fail(ok.with_context("--attack"));
    if (*kind == attack::Kind::kLabelFlip) {
      // This process's own copy of its examples, labels flipped.
      auto flipped = std::make_shared<Dataset>(*shard.data);
      for (int64_t i : shard.indices) {
        int32_t& y = flipped->labels[static_cast<size_t>(i)];
        y = static_cast<int32_t>(attack::flip_label(y, flipped->num_classes));
      }
      shard.data = std::move(flipped);
    }
  }

  const std::string prefix = "join[" + std::to_string(index) + "/" + std::to_string(count) + "]: ";
  deploy::ClientOptions o;
  o.server = a.server;
  o.token = *token;
  o.ca_file = a.ca;
  o.insecure = a.insecure;
  o.ssl_target_name = a.ssl_target_name;
  o.max_disconnected_s = a.max_disconnected_s;
  o.backoff_max_s = a.backoff_max_s;
  o.backoff_initial_s = std::min(o.backoff_initial_s, a.backoff_max_s);
  o.seed = cfg->run.seed;
  o.training = cfg->training;
  o.fault = *fault;
  o.stop_flag = &g_join_stop;
  o.state_dir = a.state_dir;
  o.attack = attack;
  if (!a.quiet) {
    o.log = [prefix](const std::string& line) {
      std::printf("%s%s\n", prefix.c_str(), line.c_str());
      std::fflush(stdout);
    };
  }
  deploy::keep_freed_memory_for_reuse();
  Result<std::unique_ptr<deploy::Client>> client =
      deploy::Client::create(std::move(o), std::move(*trainer), std::move(shard));
  if (!client.ok()) return fail(client.error());
  std::signal(SIGINT, on_join_sigint);
  Result<deploy::ClientStats> stats = (*client)->run();
  std::signal(SIGINT, SIG_DFL);
  if (!stats.ok()) return fail(stats.error());
  std::printf(
      "%sdone: client %lld, %lld tasks, %lld accepted, %lld rejected, %lld abandoned, "
      "%lld reconnects\n",
      prefix.c_str(), static_cast<long long>(stats->client_id),
      static_cast<long long>(stats->tasks), static_cast<long long>(stats->accepted),
      static_cast<long long>(stats->rejected), static_cast<long long>(stats->abandoned),
      static_cast<long long>(stats->reconnects));
  std::fflush(stdout);
}

}  // namespace

void add_join_command(CLI::App& app) {
  auto args = std::make_shared<JoinArgs>();
  CLI::App* cmd = app.add_subcommand("join", "Join a deployment server as a training client");
  cmd->add_option("config", args->config, "YAML file (data:, model:, training:, run.seed)")
      ->required();
  cmd->add_option("--server", args->server, "Server address HOST:PORT")->required();
  cmd->add_option("--token-file", args->token_file, "File holding this client's bearer token")
      ->required();
  auto* ca =
      cmd->add_option("--ca", args->ca, "PEM file of the CA that signed the server's certificate");
  auto* insecure = cmd->add_flag("--insecure", args->insecure, "Connect without TLS");
  ca->excludes(insecure);
  cmd->add_option("--ssl-target-name", args->ssl_target_name,
                  "Name to verify the server certificate against (default: the host of --server)");
  cmd->add_option("--partition", args->partition,
                  "Use part i of N of the training data (0-based), as in a simulation of N clients")
      ->capture_default_str();
  cmd->add_option("--set", args->sets, "Override a config key: --set training.lr=0.1")
      ->allow_extra_args(false);
  cmd->add_option("--threads", args->threads, "LibTorch threads for training")
      ->capture_default_str();
  cmd->add_option("--max-disconnected-s", args->max_disconnected_s,
                  "Give up after this long without reaching the server (0 = never)")
      ->capture_default_str();
  cmd->add_option("--backoff-max-s", args->backoff_max_s,
                  "Longest wait between reconnection attempts (exponential backoff from 0.2 s, "
                  "jittered)")
      ->capture_default_str();
  cmd->add_option("--state-dir", args->state_dir,
                  "Keep the client's state across tasks (error-feedback residual, SCAFFOLD's c_i) "
                  "in this directory, so a restarted client continues");
  cmd->add_option("--attack", args->attack,
                  "Act as a Byzantine client (robustness tests): sign_flip[:S], scaling[:S], "
                  "gaussian[:SIGMA], free_rider[:zero|noise] or label_flip")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", args->quiet, "No progress lines");
  // Test only: sends one deliberately broken update (wrong-shape | nan) to exercise the
  // server's validation. Hidden from --help (empty group).
  cmd->add_option("--inject-fault", args->inject_fault, "test only")->group("");
  cmd->callback([args] {
    if (args->ca.empty() && !args->insecure) {
      return fail(Status::invalid_argument(
          "cohort join: give --ca CA.pem (TLS, the default) or --insecure explicitly"));
    }
    run_join(*args);
  });
}

}  // namespace cohort::cli
