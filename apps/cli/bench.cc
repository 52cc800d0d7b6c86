// `cohort bench aggregate` and `cohort bench fedavg-round`: the aggregation benchmarks behind
// `make bench` (bench/run.sh: bench_aggregate, bench_memory).
//
//   cohort bench aggregate --params N --clients K [--threads T] [--repeats R] [--json]
//     Times, on the same K input buffers of N float32s (each repeat runs the three one after
//     another, so machine noise hits all of them alike; medians are reported):
//       weighted_sum  ops::weighted_sum with weights n_k / sum n (the fused one-pass kernel);
//       streaming     what FedAvg does as updates arrive: fill(0), then K ops::axpy;
//       reference     a plain one-pass "sum K arrays into one" loop that only streams the
//                     bytes, on the same kernel_pool() threads with the same ops::kChunk
//                     chunks, so weighted_sum / reference isolates Cohort's kernel overhead.
//     "threads" is the kernel pool's size (--threads, 0 = all cores); as in every kernel, the
//     calling thread also takes chunks.
//     Bandwidths count (K reads + 1 write) of N float32s per aggregation for all three
//     ("gbytes_per_s", "streaming_gbytes_per_s", "reference_gbytes_per_s"); the streaming form
//     really moves 1 + 3K arrays (fill writes once; each axpy reads the input and reads and
//     writes the accumulator), reported as "streaming_traffic_gbytes_per_s".
//
//   cohort bench fedavg-round --params N --clients K [--rounds R] [--threads T] [--json]
//     Runs R rounds of the real FedAvg strategy on a minimal in-process host: K updates are
//     created one at a time, each handed to on_update() and freed when it returns. Reports
//     peak resident memory (getrusage ru_maxrss) both absolute and as the increment over the
//     process's resident size just before the model was allocated (the libraries the binary
//     maps, LibTorch included, are not server memory); "peak_rss_over_model", the number the
//     4x goal is about, is the increment / model bytes.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/strategy/fedavg.h"
#include "commands.h"

// The reference loop gets the same AVX2 / baseline code selection as src/core/ops.cc, so the
// comparison is not between instruction sets.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define COHORT_BENCH_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define COHORT_BENCH_MULTIVERSION
#endif

namespace cohort::cli {

namespace {

// Deterministic, cheap to generate contents (no randomness needed: the kernels' speed does not
// depend on the values, and the checks below recompute them from (client, index)).
inline float pattern(int64_t client, int64_t i) {
  const uint64_t h =
      (static_cast<uint64_t>(i) * 2654435761u + static_cast<uint64_t>(client) * 40503u) % 1024u;
  return static_cast<float>(h) * (1.0f / 1024.0f) - 0.5f;
}

void fill_pattern(std::span<float> x, int64_t client) {
  // First touch on the pool threads as well, so pages are faulted in before timing.
  kernel_pool().parallel_for(0, static_cast<int64_t>(x.size()), ops::kChunk,
                             [&](int64_t lo, int64_t hi) {
                               for (int64_t i = lo; i < hi; ++i) x[i] = pattern(client, i);
                             });
}

Result<std::shared_ptr<const ArrayLayout>> bench_layout(int64_t params) {
  // Eight tensors like a small network's layers (the Python baseline uses the same split);
  // kernels see one flat buffer either way.
  constexpr int64_t kLayers = 8;
  std::vector<ArraySpec> specs;
  for (int64_t l = 0; l < kLayers; ++l) {
    int64_t n = params / kLayers;
    if (l == kLayers - 1) n += params - kLayers * (params / kLayers);
    specs.push_back({"layer" + std::to_string(l), {n}});
  }
  return ArrayLayout::create(std::move(specs));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

Status check_positive(const char* flag, int64_t v, int64_t min) {
  if (v < min) {
    return Status::invalid_argument(std::string(flag) + " must be >= " + std::to_string(min) +
                                    ", got " + std::to_string(v));
  }
  return Status();
}

// ---------------------------------------------------------------------------------------
// bench aggregate

struct AggregateArgs {
  int64_t params = 25'000'000;
  int64_t clients = 10;
  int64_t threads = 0;
  int64_t repeats = 5;
  bool json = false;
};

// The plain loop: out[i] = in_0[i] + ... + in_{K-1}[i], all K inputs in one pass, 16 outputs
// at a time held in a local array the compiler keeps in registers. Each input is read once and
// out written once, with nothing else: the "only streams the bytes" bound. (Of the plain
// variants tried -- one, two or four inputs per pass over 1K-16K-float blocks, and this one --
// this was the fastest for K = 10 on the development machine, so the reference is not a
// straw man.)
constexpr int64_t kRefTile = 16;

COHORT_BENCH_MULTIVERSION void ref_sum_range(const float* const* in, int64_t k, int64_t lo,
                                             int64_t hi, float* __restrict out) {
  int64_t i = lo;
  for (; i + kRefTile <= hi; i += kRefTile) {
    float acc[kRefTile];
    const float* __restrict x0 = in[0] + i;
    for (int64_t j = 0; j < kRefTile; ++j) acc[j] = x0[j];
    for (int64_t c = 1; c < k; ++c) {
      const float* __restrict x = in[c] + i;
      for (int64_t j = 0; j < kRefTile; ++j) acc[j] += x[j];
    }
    for (int64_t j = 0; j < kRefTile; ++j) out[i + j] = acc[j];
  }
  for (; i < hi; ++i) {
    float s = in[0][i];
    for (int64_t c = 1; c < k; ++c) s += in[c][i];
    out[i] = s;
  }
}

void reference_sum(const std::vector<const float*>& in, std::span<float> out) {
  kernel_pool().parallel_for(0, static_cast<int64_t>(out.size()), ops::kChunk,
                             [&](int64_t lo, int64_t hi) {
                               ref_sum_range(in.data(), static_cast<int64_t>(in.size()), lo, hi,
                                             out.data());
                             });
}

void streaming_sum(const std::vector<const float*>& in, std::span<const float> w,
                   std::span<float> out) {
  ops::fill(out, 0.0f);
  for (size_t k = 0; k < in.size(); ++k) {
    ops::axpy(w[k], std::span<const float>(in[k], out.size()), out);
  }
}

// Compares `out` with sum_k w_k in_k computed in double at a spread of indices.
Status check_sum(const char* what, std::span<const float> out, std::span<const float> w,
                 int64_t clients) {
  const auto n = static_cast<int64_t>(out.size());
  const int64_t step = std::max<int64_t>(1, n / 4099);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; i += step) idx.push_back(i);
  idx.push_back(n - 1);
  for (int64_t i : idx) {
    double want = 0, mag = 0;
    for (int64_t k = 0; k < clients; ++k) {
      want += static_cast<double>(w[k]) * pattern(k, i);
      mag += std::abs(static_cast<double>(w[k]) * pattern(k, i));
    }
    if (std::abs(out[i] - want) > 1e-5 * mag + 1e-6) {
      return Status::internal(std::string("bench aggregate: ") + what + " result wrong at index " +
                              std::to_string(i) + ": got " + std::to_string(out[i]) +
                              ", expected " + std::to_string(want));
    }
  }
  return Status();
}

Status run_aggregate(const AggregateArgs& a) {
  COHORT_RETURN_IF_ERROR(check_positive("--params", a.params, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--clients", a.clients, 1));
  COHORT_RETURN_IF_ERROR(check_positive("--threads", a.threads, 0));
  COHORT_RETURN_IF_ERROR(check_positive("--repeats", a.repeats, 1));
  set_kernel_threads(static_cast<size_t>(a.threads));

  COHORT_ASSIGN_OR_RETURN(auto layout, bench_layout(a.params));
  std::vector<ArrayRecord> inputs;
  std::vector<const float*> ptrs;
  std::vector<float> weights;
  double total_examples = 0;
  for (int64_t k = 0; k < a.clients; ++k) total_examples += static_cast<double>(100 + k);
  for (int64_t k = 0; k < a.clients; ++k) {
    inputs.emplace_back(layout);
    fill_pattern(inputs.back().flat(), k);
    ptrs.push_back(inputs.back().data());
    weights.push_back(static_cast<float>((100 + k) / total_examples));
  }
  ArrayRecord out_ws(layout), out_stream(layout), out_ref(layout);

  // Warm-up: one of each (thread pool started, code paths and TLB warm).
  ops::weighted_sum(ptrs, weights, out_ws.flat());
  streaming_sum(ptrs, weights, out_stream.flat());
  reference_sum(ptrs, out_ref.flat());

  std::vector<double> t_ws, t_stream, t_ref;
  for (int64_t r = 0; r < a.repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    ops::weighted_sum(ptrs, weights, out_ws.flat());
    t_ws.push_back(seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    streaming_sum(ptrs, weights, out_stream.flat());
    t_stream.push_back(seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    reference_sum(ptrs, out_ref.flat());
    t_ref.push_back(seconds_since(t0));
  }

  COHORT_RETURN_IF_ERROR(check_sum("weighted_sum", out_ws.flat(), weights, a.clients));
  COHORT_RETURN_IF_ERROR(check_sum("streaming", out_stream.flat(), weights, a.clients));
  const std::vector<float> ones(static_cast<size_t>(a.clients), 1.0f);
  COHORT_RETURN_IF_ERROR(check_sum("reference", out_ref.flat(), ones, a.clients));

  const double n_bytes = static_cast<double>(a.params) * sizeof(float);
  const double agg_gb = static_cast<double>(a.clients + 1) * n_bytes / 1e9;
  const double stream_traffic_gb = static_cast<double>(1 + 3 * a.clients) * n_bytes / 1e9;
  const double s_ws = median(t_ws), s_stream = median(t_stream), s_ref = median(t_ref);
  Json j = {{"bench", "aggregate"},
            {"params", a.params},
            {"clients", a.clients},
            {"threads", kernel_threads()},
            {"repeats", a.repeats},
            {"bytes_per_aggregation", static_cast<int64_t>((a.clients + 1) * n_bytes)},
            {"seconds", s_ws},
            {"gbytes_per_s", agg_gb / s_ws},
            {"reference_seconds", s_ref},
            {"reference_gbytes_per_s", agg_gb / s_ref},
            {"ratio_to_reference", s_ref / s_ws},
            {"streaming_seconds", s_stream},
            {"streaming_gbytes_per_s", agg_gb / s_stream},
            {"streaming_traffic_gbytes_per_s", stream_traffic_gb / s_stream},
            {"min_seconds", *std::min_element(t_ws.begin(), t_ws.end())},
            {"reference_min_seconds", *std::min_element(t_ref.begin(), t_ref.end())}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return Status();
  }
  std::printf("aggregate: %lld params x %lld clients, %zu kernel threads, median of %lld\n",
              static_cast<long long>(a.params), static_cast<long long>(a.clients),
              kernel_threads(), static_cast<long long>(a.repeats));
  std::printf("  (GB/s count (K reads + 1 write) x N float32 = %.3f GB per aggregation)\n",
              agg_gb);
  std::printf("  %-26s %10s %10s\n", "", "seconds", "GB/s");
  std::printf("  %-26s %10.4f %10.2f\n", "weighted_sum (fused)", s_ws, agg_gb / s_ws);
  std::printf("  %-26s %10.4f %10.2f  (real traffic %.2f GB/s)\n", "streaming (fill + K axpy)",
              s_stream, agg_gb / s_stream, stream_traffic_gb / s_stream);
  std::printf("  %-26s %10.4f %10.2f\n", "reference (plain sum)", s_ref, agg_gb / s_ref);
  std::printf("  weighted_sum / reference: %.3f\n", s_ref / s_ws);
  return Status();
}

// ---------------------------------------------------------------------------------------
// bench fedavg-round

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
  const ClientInfo& client_info(ClientId id) const override { return infos_.at(id); }
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

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

// Resident now (/proc/self/statm), or the peak so far where /proc is unavailable. The baseline
// is the current RSS, not the peak so far: memory the process touched and released before the
// model existed must not be subtracted from the server's increment.
int64_t current_rss_bytes() {
  long pages = -1, resident = -1;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    std::fclose(f);
  }
  if (resident < 0) return peak_rss_bytes();
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

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
  const int64_t baseline = current_rss_bytes();

  ArrayRecord initial(layout);
  fill_pattern(initial.flat(), 0);
  FedAvgOptions opt;
  opt.round.min_clients = a.clients;  // a round starts once every client is idle
  FedAvg strategy(opt);
  BenchHost host(a.clients);
  COHORT_RETURN_IF_ERROR(strategy.start(&host, std::move(initial)));

  const auto t0 = std::chrono::steady_clock::now();
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
              static_cast<long long>(a.params), model_bytes / mb,
              static_cast<long long>(a.clients), static_cast<long long>(a.rounds), seconds);
  std::printf("  RSS before the model:               %.1f MB\n", baseline / mb);
  std::printf("  peak RSS:                           %.1f MB (%.3fx model)\n", peak / mb,
              static_cast<double>(peak) / model_bytes);
  std::printf("  peak RSS increment (server memory): %.1f MB (%.3fx model)\n", increment / mb,
              static_cast<double>(increment) / model_bytes);
  return Status();
}

}  // namespace

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Micro-benchmarks of Cohort's server side");
  bench->require_subcommand(1);

  auto agg = std::make_shared<AggregateArgs>();
  CLI::App* a = bench->add_subcommand(
      "aggregate", "Weighted-sum aggregation bandwidth vs a plain streaming loop");
  a->add_option("--params", agg->params, "Floats per model (N)")->capture_default_str();
  a->add_option("--clients", agg->clients, "Updates per aggregation (K)")->capture_default_str();
  a->add_option("--threads", agg->threads, "Kernel threads (0 = all cores)")
      ->capture_default_str();
  a->add_option("--repeats", agg->repeats, "Timed repeats; the median is reported")
      ->capture_default_str();
  a->add_flag("--json", agg->json, "Print one JSON object instead of a table");
  a->callback([agg] { run_guarded("bench aggregate", [&] { return run_aggregate(*agg); }); });

  auto rnd = std::make_shared<RoundArgs>();
  CLI::App* r = bench->add_subcommand(
      "fedavg-round", "Peak server memory of FedAvg rounds with updates streamed in");
  r->add_option("--params", rnd->params, "Floats per model (N)")->capture_default_str();
  r->add_option("--clients", rnd->clients, "Updates per round (K)")->capture_default_str();
  r->add_option("--rounds", rnd->rounds, "Rounds to run")->capture_default_str();
  r->add_option("--threads", rnd->threads, "Kernel threads (0 = all cores)")
      ->capture_default_str();
  r->add_flag("--json", rnd->json, "Print one JSON object instead of a table");
  r->callback(
      [rnd] { run_guarded("bench fedavg-round", [&] { return run_fedavg_round(*rnd); }); });
#ifdef COHORT_WITH_GRPC
  add_bench_deploy_commands(bench);
#endif
}

}  // namespace cohort::cli
