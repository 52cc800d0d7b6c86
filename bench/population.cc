// `cohort bench population`: what a large simulated population costs (docs/design/scale.md).
//
//   cohort bench population [--clients N] [--model logreg|mlp] [--dataset synthetic|fashion-mnist]
//                           [--examples E] [--dim D] [--classes K] [--examples-per-client C]
//                           [--fraction F] [--rounds R] [--threads T] [--seed S] [--json]
//     Builds the scenario of N clients (synthetic Gaussian blobs of E x D, or Fashion-MNIST
//     with each client drawing C examples with replacement when C > 0) with FedAvg sampling a
//     fraction F of them per round, runs R rounds with T training threads (default 1, so that
//     the overhead below is not blurred by parallelism) and reports:
//       setup_s             data, partition, population and per-client records (build_scenario)
//                           plus writing the outputs (clients.json, the population file)
//       run_s               the simulation itself (its own wall clock): registering the
//                           population, the first evaluation, the event loop, the last one
//       loop_s              the event loop alone (RunSummary::loop_wall_s): every task's
//                           dispatch, training, arrival and aggregation; no evaluation runs in
//                           it (eval_every is past the last round)
//       model_s             time spent inside the trainers (train + evaluate), summed
//       train_s             of which train() calls (all of them inside the loop)
//       overhead            (loop_s * T - train_s) / train_s: the framework's share on top of
//                           pure training in the loop, measured in the same run
//       overhead_run        (run_s * T - model_s) / model_s: the same over the whole run, i.e.
//                           with registering the population
//       updates_per_s       simulated client updates per wall second of run_s
//       events_per_s        task dispatches + update arrivals per wall second of run_s
//       peak_rss_bytes      the process's peak resident size
//     bench/run.sh (bench_population) runs it at N and N/10 over the same data: the difference
//     in peak RSS over the difference in clients is the marginal cost of one client.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "bench.h"
#include "bench_util.h"
#include "cohort/config/config.h"
#include "cohort/core/format.h"
#include "cohort/runner/runner.h"

namespace cohort::bench {

namespace {

struct PopulationArgs {
  int64_t clients = 1000000;
  std::string model = "logreg";
  std::string dataset = "synthetic";
  int64_t examples = 4000000;
  int64_t dim = 32;
  int64_t classes = 10;
  int64_t examples_per_client = 0;
  double fraction = 0.001;
  int64_t rounds = 5;
  int64_t threads = 1;
  int64_t seed = 1;
  bool json = false;
};

// Time spent in the wrapped trainers, summed over threads (nanoseconds).
struct ModelClock {
  std::atomic<int64_t> ns{0};
  std::atomic<int64_t> train_ns{0};
};

// A Trainer that times its inner trainer's train and evaluate calls.
class TimedTrainer final : public Trainer {
 public:
  TimedTrainer(std::unique_ptr<Trainer> inner, std::shared_ptr<ModelClock> clock)
      : inner_(std::move(inner)), clock_(std::move(clock)) {}
  Result<ArrayRecord> init_params(uint64_t seed) override { return inner_->init_params(seed); }
  Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                            const TrainConfig& config, const ConfigRecord& task_config,
                            uint64_t seed, const ArrayRecord* grad_correction) override {
    inner_->set_optimizer_state(optimizer_state());
    const auto t0 = Clock::now();
    auto r = inner_->train(start, shard, steps, config, task_config, seed, grad_correction);
    clock_->train_ns += add(t0);
    return r;
  }
  Result<EvalResult> evaluate(const ArrayRecord& params, const Shard& shard) override {
    const auto t0 = Clock::now();
    auto r = inner_->evaluate(params, shard);
    add(t0);
    return r;
  }

 private:
  int64_t add(Clock::time_point t0) {
    const int64_t ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
    clock_->ns += ns;
    return ns;
  }
  std::unique_ptr<Trainer> inner_;
  std::shared_ptr<ModelClock> clock_;
};

std::string config_yaml(const PopulationArgs& a) {
  std::string data;
  if (a.dataset == "synthetic") {
    data = "data:\n  dataset: synthetic\n  partition: iid\n  synthetic: {num_examples: " +
           std::to_string(a.examples) + ", dim: " + std::to_string(a.dim) +
           ", classes: " + std::to_string(a.classes) + ", test_examples: 10000}\n";
  } else {
    data = "data:\n  dataset: " + a.dataset + "\n  partition: iid\n";
  }
  if (a.examples_per_client > 0) {
    data += "  with_replacement: true\n  examples_per_client: " +
            std::to_string(a.examples_per_client) + "\n";
  }
  const int64_t min_clients =
      std::max<int64_t>(1, static_cast<int64_t>(a.fraction * static_cast<double>(a.clients) / 2));
  return data + "clients: {count: " + std::to_string(a.clients) + "}\n" +
         "model: {name: " + a.model + "}\n" +
         "training: {optimizer: sgd, lr: 0.05, batch_size: 10, local_epochs: 1}\n" +
         "strategy: {name: fedavg, fraction: " + format_number(a.fraction) +
         ", min_clients: " + std::to_string(min_clients) + "}\n" +
         "run: {rounds: " + std::to_string(a.rounds) +
         ", eval_every: " + std::to_string(a.rounds + 1) + ", seed: " + std::to_string(a.seed) +
         ", threads: " + std::to_string(a.threads) + "}\n";
}

Status run_population(const PopulationArgs& a) {
  COHORT_RETURN_IF_ERROR(check_positive("--clients", a.clients, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--rounds", a.rounds, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--threads", a.threads, 1));
  COHORT_ASSIGN_OR_RETURN(SimulationConfig cfg,
                          parse_simulation_config(config_yaml(a), "bench-population"));
  namespace fs = std::filesystem;
  const std::string out_dir =
      (fs::temp_directory_path() / ("cohort_bench_population_" + std::to_string(::getpid())))
          .string();

  const auto t_setup = Clock::now();
  COHORT_ASSIGN_OR_RETURN(Scenario scenario, build_scenario(cfg));
  auto clock = std::make_shared<ModelClock>();
  TrainerFactory inner = scenario.factory;
  scenario.factory = [inner, clock]() -> Result<std::unique_ptr<Trainer>> {
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> t, inner());
    return std::unique_ptr<Trainer>(std::make_unique<TimedTrainer>(std::move(t), clock));
  };
  const double setup_build_s = seconds_since(t_setup);

  RunOutputs out;
  out.out_dir = out_dir;
  out.progress = false;
  const auto t_run = Clock::now();
  Result<sim::SimSummary> s = run_simulation(cfg, scenario, out);
  const double total_s = seconds_since(t_run);
  std::error_code ec;
  fs::remove_all(out_dir, ec);
  if (!s.ok()) return s.error();
  // The simulation itself (its own wall clock); the rest of run_simulation wrote the outputs
  // (clients.json, the population file, before it started): set-up.
  const double run_s = s->wall_time_s;
  const double setup_s = setup_build_s + (total_s - run_s);
  const double loop_s = s->loop_wall_s;
  const double model_s = static_cast<double>(clock->ns.load()) * 1e-9;
  const double train_s = static_cast<double>(clock->train_ns.load()) * 1e-9;
  const auto threads = static_cast<double>(a.threads);
  const double overhead = train_s > 0 ? (loop_s * threads - train_s) / train_s : 0.0;
  const double overhead_run = model_s > 0 ? (run_s * threads - model_s) / model_s : 0.0;
  const int64_t tasks = s->updates + s->rejected + s->lost;
  const int64_t peak = peak_rss_bytes();
  if (a.json) {
    std::printf(
        "{\"bench\":\"population\",\"clients\":%lld,\"model\":\"%s\",\"dataset\":\"%s\","
        "\"threads\":%lld,\"rounds\":%lld,\"updates\":%lld,\"setup_s\":%.4f,\"run_s\":%.4f,"
        "\"loop_s\":%.4f,\"model_s\":%.4f,\"train_s\":%.4f,\"overhead\":%.5f,"
        "\"overhead_run\":%.5f,\"updates_per_s\":%.1f,\"events_per_s\":%.1f,"
        "\"peak_rss_bytes\":%lld,\"final_accuracy\":%.4f,\"model_hash\":\"%s\"}\n",
        static_cast<long long>(a.clients), a.model.c_str(), a.dataset.c_str(),
        static_cast<long long>(a.threads), static_cast<long long>(s->rounds),
        static_cast<long long>(s->updates), setup_s, run_s, loop_s, model_s, train_s, overhead,
        overhead_run, static_cast<double>(s->updates) / run_s,
        static_cast<double>(tasks + s->updates + s->rejected) / run_s, static_cast<long long>(peak),
        s->final_accuracy, s->model_hash.c_str());
  } else {
    std::printf("population: %lld clients (%s, %s), %lld rounds, %lld updates\n",
                static_cast<long long>(a.clients), a.model.c_str(), a.dataset.c_str(),
                static_cast<long long>(s->rounds), static_cast<long long>(s->updates));
    std::printf(
        "  set-up %.2f s, run %.2f s (loop %.2f s, training %.2f s: overhead %.1f%%; whole run "
        "%.1f%%), %.0f updates/s\n",
        setup_s, run_s, loop_s, train_s, 100.0 * overhead, 100.0 * overhead_run,
        static_cast<double>(s->updates) / run_s);
    std::printf("  peak RSS %.1f MB\n", static_cast<double>(peak) / 1e6);
  }
  return Status();
}

}  // namespace

void add_population_benchmark(CLI::App* bench, const Guard& guard) {
  auto args = std::make_shared<PopulationArgs>();
  CLI::App* cmd = bench->add_subcommand(
      "population", "Set-up, memory and overhead of a large simulated population");
  cmd->add_option("--clients", args->clients, "Simulated clients")->capture_default_str();
  cmd->add_option("--model", args->model, "logreg | mlp")->capture_default_str();
  cmd->add_option("--dataset", args->dataset, "synthetic | fashion-mnist")->capture_default_str();
  cmd->add_option("--examples", args->examples, "Synthetic training examples")
      ->capture_default_str();
  cmd->add_option("--dim", args->dim, "Synthetic features")->capture_default_str();
  cmd->add_option("--classes", args->classes, "Synthetic classes")->capture_default_str();
  cmd->add_option("--examples-per-client", args->examples_per_client,
                  "> 0: each client draws this many examples with replacement")
      ->capture_default_str();
  cmd->add_option("--fraction", args->fraction, "Clients sampled per round")->capture_default_str();
  cmd->add_option("--rounds", args->rounds, "Rounds")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Training threads")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Run seed")->capture_default_str();
  cmd->add_flag("--json", args->json, "One JSON line");
  cmd->callback([args, guard] {
    guard("bench population", [&] {
      return run_population(*args);
    });
  });
}

}  // namespace cohort::bench
