// `cohort bench fedavg-round`: the server-memory benchmark behind `make bench`
// (bench/run.sh: bench_memory).
//
//   cohort bench fedavg-round --params N --clients K [--rounds R] [--threads T] [--json]
//     Runs R rounds of the real FedAvg strategy on a minimal in-process host: K updates are
//     created one at a time, each handed to on_update() and freed when it returns. Reports
//     peak resident memory (getrusage ru_maxrss) both absolute and as the increment over the
//     process's resident size just before the model was allocated (the libraries the binary
//     maps, LibTorch included, are not server memory); "peak_rss_over_model", the number the
//     4x goal is about, is the increment / model bytes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench.h"
#include "bench_util.h"
#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/strategy/fedavg.h"
#include "cohort/strategy/strategy.h"

namespace cohort::bench {

namespace {

struct RoundArgs {
  int64_t params = 25'000'000;
  int64_t clients = 50;
  int64_t rounds = 1;
  int64_t threads = 0;
  bool json = false;
};

// The least a StrategyHost can be: every client idle until dispatched, no timers needed
// (rounds wait for all replies), commits counted.
class BenchHost final : public StrategyHost {
 public:
  explicit BenchHost(int64_t clients) : rng_(1) {
    for (int64_t c = 0; c < clients; ++c) {
      ClientInfo info;
      info.id = c;
      info.num_examples = 100 + c;
      infos_.push_back(info);
      idle_.push_back(true);
    }
  }
  double now() const override { return 0.0; }
  std::vector<ClientId> idle_clients() const override {
    std::vector<ClientId> ids;
    for (size_t c = 0; c < idle_.size(); ++c) {
      if (idle_[c]) ids.push_back(static_cast<ClientId>(c));
    }
    return ids;
  }
  size_t num_clients() const override { return infos_.size(); }
  ClientInfo client_info(ClientId id) const override { return infos_.at(id); }
  int64_t default_local_steps(ClientId) const override { return 1; }
  void dispatch(Task task) override {
    idle_.at(task.client) = false;
    // Keep only what the reply needs: holding the Task would keep its model alive.
    dispatched.push_back({task.client, task.version});
  }
  TimerId set_timer(double) override { return next_timer_++; }
  void cancel_timer(TimerId) override {}
  void on_commit(ModelVersion version) override { commits.push_back(version); }
  Rng& rng() override { return rng_; }
  void emit(Json) override {}

  void set_idle(ClientId id) { idle_.at(id) = true; }

  struct Sent {
    ClientId client;
    ModelVersion version;
  };
  std::vector<Sent> dispatched;
  std::vector<ModelVersion> commits;

 private:
  Rng rng_;
  std::vector<ClientInfo> infos_;
  std::vector<bool> idle_;
  TimerId next_timer_ = 0;
};

// Client c's delta in every round: small values so models stay finite over many rounds.
inline float delta_value(int64_t client, int64_t i) { return 1e-3f * pattern(client + 1, i); }

Status run_fedavg_round(const RoundArgs& a) {
  COHORT_RETURN_IF_ERROR(check_positive("--params", a.params, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--clients", a.clients, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--rounds", a.rounds, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--threads", a.threads, 0));
  set_kernel_threads(static_cast<size_t>(a.threads));
  // Start the pool (its stacks) and lay out the model before the baseline is taken, so the
  // increment is buffers only.
  (void)kernel_threads();
  COHORT_ASSIGN_OR_RETURN(auto layout, bench_layout(a.params));
  // The baseline is the current RSS, not the peak so far: memory the process touched and
  // released before the model existed must not be subtracted from the server's increment.
  const int64_t baseline = current_rss_bytes();

  ArrayRecord initial(layout);
  fill_pattern(initial.flat(), 0);
  FedAvgOptions opt;
  opt.round.min_clients = a.clients;  // a round starts once every client is idle
  FedAvg strategy(opt);
  BenchHost host(a.clients);
  COHORT_RETURN_IF_ERROR(strategy.start(&host, std::move(initial)));

  const auto t0 = Clock::now();
  for (int64_t r = 0; r < a.rounds; ++r) {
    host.dispatched.clear();
    for (int64_t c = 0; c < a.clients; ++c) host.set_idle(c);
    strategy.on_client_idle(0);
    if (static_cast<int64_t>(host.dispatched.size()) != a.clients) {
      return Status::internal("bench fedavg-round: round " + std::to_string(r + 1) +
                              " dispatched " + std::to_string(host.dispatched.size()) +
                              " tasks, expected " + std::to_string(a.clients));
    }
    // Updates arrive one at a time; each is freed when on_update() returns.
    for (const BenchHost::Sent& s : host.dispatched) {
      Update u;
      u.client = s.client;
      u.base_version = s.version;
      u.delta = ArrayRecord(layout);
      std::span<float> d = u.delta.flat();
      kernel_pool().parallel_for(0, a.params, ops::kChunk, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) d[i] = delta_value(s.client, i);
      });
      u.num_examples = 100 + s.client;
      u.local_steps = 1;
      COHORT_RETURN_IF_ERROR(strategy.on_update(std::move(u)));
    }
  }
  const double seconds = seconds_since(t0);
  const int64_t peak = peak_rss_bytes();
  if (static_cast<int64_t>(host.commits.size()) != a.rounds) {
    return Status::internal("bench fedavg-round: " + std::to_string(host.commits.size()) +
                            " commits after " + std::to_string(a.rounds) + " rounds");
  }

  // The model must be initial - rounds * (sum_k n_k delta_k / sum_k n_k), at a spread of
  // indices (float accumulation: loose tolerance relative to the delta's size).
  double total = 0;
  for (int64_t c = 0; c < a.clients; ++c) total += static_cast<double>(100 + c);
  std::span<const float> w = strategy.global_model()->flat();
  const int64_t step = std::max<int64_t>(1, a.params / 997);
  for (int64_t i = 0; i < a.params; i += step) {
    double avg = 0;
    for (int64_t c = 0; c < a.clients; ++c) avg += (100 + c) * double{delta_value(c, i)} / total;
    const double want = pattern(0, i) - static_cast<double>(a.rounds) * avg;
    if (std::abs(w[i] - want) > 1e-5 * static_cast<double>(a.rounds) + 1e-6) {
      return Status::internal("bench fedavg-round: model wrong at index " + std::to_string(i) +
                              ": got " + std::to_string(w[i]) + ", expected " +
                              std::to_string(want));
    }
  }

  const int64_t model_bytes = layout->num_bytes();
  const int64_t increment = peak - baseline;
  Json j = {{"bench", "fedavg-round"},
            {"params", a.params},
            {"clients", a.clients},
            {"rounds", a.rounds},
            {"threads", kernel_threads()},
            {"model_bytes", model_bytes},
            {"baseline_rss_bytes", baseline},
            {"peak_rss_bytes", peak},
            {"peak_rss_increment_bytes", increment},
            {"peak_rss_over_model", static_cast<double>(increment) / model_bytes},
            {"absolute_peak_rss_over_model", static_cast<double>(peak) / model_bytes},
            {"seconds", seconds}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return Status();
  }
  const double mb = 1e6;
  std::printf("fedavg-round: %lld params (%.1f MB model) x %lld clients, %lld round(s), %.2f s\n",
              static_cast<long long>(a.params), model_bytes / mb, static_cast<long long>(a.clients),
              static_cast<long long>(a.rounds), seconds);
  std::printf("  RSS before the model:               %.1f MB\n", baseline / mb);
  std::printf("  peak RSS:                           %.1f MB (%.3fx model)\n", peak / mb,
              static_cast<double>(peak) / model_bytes);
  std::printf("  peak RSS increment (server memory): %.1f MB (%.3fx model)\n", increment / mb,
              static_cast<double>(increment) / model_bytes);
  return Status();
}

}  // namespace

void add_fedavg_round_benchmark(CLI::App* bench, const Guard& guard) {
  auto rnd = std::make_shared<RoundArgs>();
  CLI::App* r = bench->add_subcommand(
      "fedavg-round", "Peak server memory of FedAvg rounds with updates streamed in");
  r->add_option("--params", rnd->params, "Floats per model (N)")->capture_default_str();
  r->add_option("--clients", rnd->clients, "Updates per round (K)")->capture_default_str();
  r->add_option("--rounds", rnd->rounds, "Rounds to run")->capture_default_str();
  r->add_option("--threads", rnd->threads, "Kernel threads (0 = all cores)")->capture_default_str();
  r->add_flag("--json", rnd->json, "Print one JSON object instead of a table");
  r->callback([rnd, guard] {
    guard("bench fedavg-round", [&] {
      return run_fedavg_round(*rnd);
    });
  });
}

}  // namespace cohort::bench
