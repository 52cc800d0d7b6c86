// `cohort bench aggregate`: the aggregation-bandwidth benchmark behind `make bench`
// (bench/run.sh: bench_aggregate). Also add_kernel_benchmarks, which registers it and
// `cohort bench fedavg-round` (bench/fedavg_round.cc).
//
//   cohort bench aggregate --params N --clients K [--threads T] [--repeats R] [--rule NAME]
//                          [--json]
//     Times, on the same K input buffers of N float32s (each repeat runs them one after
//     another, so machine noise hits all of them alike; medians are reported):
//       weighted_sum  ops::weighted_sum with weights n_k / sum n (the fused one-pass kernel);
//       streaming     what FedAvg does as updates arrive: fill(0), then K ops::axpy;
//       reference     a plain one-pass "sum K arrays into one" loop that only streams the
//                     bytes, on the same kernel_pool() threads with the same ops::kChunk
//                     chunks, so weighted_sum / reference isolates Cohort's kernel overhead;
//       rule          with --rule NAME (a robust.rule: median, trimmed_mean, krum, ...; default
//                     none), that robust aggregation rule (robust/rule.h, default options) on
//                     the same inputs, with the per-input outcome a group aggregator asks for.
//                     "rule_vs_weighted_sum" is its time over weighted_sum's in the same run
//                     (2.0 = twice as slow): what the defence costs over plain FedAvg.
//     "threads" is the kernel pool's size (--threads, 0 = all cores); as in every kernel, the
//     calling thread also takes chunks.
//     Bandwidths count (K reads + 1 write) of N float32s per aggregation for all of them
//     ("gbytes_per_s", "streaming_gbytes_per_s", "reference_gbytes_per_s",
//     "rule_gbytes_per_s"), whatever a rule really reads (Krum reads every input twice, to score
//     and then to copy or average); the streaming form
//     really moves 1 + 3K arrays (fill writes once; each axpy reads the input and reads and
//     writes the accumulator), reported as "streaming_traffic_gbytes_per_s".
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
#include "cohort/core/multiversion.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "cohort/robust/rule.h"

// The reference loop gets the same AVX2 / baseline code selection as src/core/ops.cc
// (cohort/core/multiversion.h), so the comparison is not between instruction sets.

namespace cohort::bench {

namespace {

struct AggregateArgs {
  int64_t params = 25'000'000;
  int64_t clients = 10;
  int64_t threads = 0;
  int64_t repeats = 5;
  std::string rule;  // empty: no robust rule timed
  bool json = false;
};

// The plain loop: out[i] = in_0[i] + ... + in_{K-1}[i], all K inputs in one pass, 16 outputs
// at a time held in a local array the compiler keeps in registers. Each input is read once and
// out written once, with nothing else: the "only streams the bytes" bound. (Of the plain
// variants tried -- one, two or four inputs per pass over 1K-16K-float blocks, and this one --
// this was the fastest for K = 10 on the development machine, so the reference is not a
// straw man.)
constexpr int64_t kRefTile = 16;

COHORT_MULTIVERSION void ref_sum_range(const float* const* in, int64_t k, int64_t lo,
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
  kernel_pool().parallel_for(
      0, static_cast<int64_t>(out.size()), ops::kChunk, [&](int64_t lo, int64_t hi) {
        ref_sum_range(in.data(), static_cast<int64_t>(in.size()), lo, hi, out.data());
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

  // The robust rule, if any, on the same buffers (weights: the example counts).
  std::unique_ptr<robust::Rule> rule;
  robust::Inputs rule_in;
  robust::Outcome outcome;
  std::unique_ptr<ArrayRecord> out_rule;
  if (!a.rule.empty()) {
    robust::RuleOptions options;
    options.rule = a.rule;
    COHORT_ASSIGN_OR_RETURN(rule, robust::make_rule(options));
    COHORT_RETURN_IF_ERROR(rule->check(static_cast<size_t>(a.clients)).with_context("--rule"));
    for (int64_t k = 0; k < a.clients; ++k) {
      rule_in.vectors.push_back(inputs[static_cast<size_t>(k)].flat());
      rule_in.weights.push_back(static_cast<double>(100 + k));
    }
    out_rule = std::make_unique<ArrayRecord>(layout);
  }
  auto run_rule = [&] {
    return rule->aggregate(rule_in, out_rule->flat(), &outcome);
  };

  // Warm-up: one of each (thread pool started, code paths and TLB warm).
  ops::weighted_sum(ptrs, weights, out_ws.flat());
  streaming_sum(ptrs, weights, out_stream.flat());
  reference_sum(ptrs, out_ref.flat());
  if (rule) COHORT_RETURN_IF_ERROR(run_rule());

  std::vector<double> t_ws, t_stream, t_ref, t_rule;
  for (int64_t r = 0; r < a.repeats; ++r) {
    auto t0 = Clock::now();
    ops::weighted_sum(ptrs, weights, out_ws.flat());
    t_ws.push_back(seconds_since(t0));
    t0 = Clock::now();
    streaming_sum(ptrs, weights, out_stream.flat());
    t_stream.push_back(seconds_since(t0));
    t0 = Clock::now();
    reference_sum(ptrs, out_ref.flat());
    t_ref.push_back(seconds_since(t0));
    if (rule) {
      t0 = Clock::now();
      COHORT_RETURN_IF_ERROR(run_rule());
      t_rule.push_back(seconds_since(t0));
    }
  }

  COHORT_RETURN_IF_ERROR(check_sum("weighted_sum", out_ws.flat(), weights, a.clients));
  COHORT_RETURN_IF_ERROR(check_sum("streaming", out_stream.flat(), weights, a.clients));
  const std::vector<float> ones(static_cast<size_t>(a.clients), 1.0f);
  COHORT_RETURN_IF_ERROR(check_sum("reference", out_ref.flat(), ones, a.clients));
  if (rule && !ops::all_finite(out_rule->flat())) {
    return Status::internal("bench aggregate: " + rule->describe() + " result is not finite");
  }

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
  const double s_rule = rule ? median(t_rule) : 0.0;
  if (rule) {
    j["rule"] = rule->describe();
    j["rule_seconds"] = s_rule;
    j["rule_gbytes_per_s"] = agg_gb / s_rule;
    j["rule_vs_weighted_sum"] = s_rule / s_ws;
  }
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return Status();
  }
  std::printf("aggregate: %lld params x %lld clients, %zu kernel threads, median of %lld\n",
              static_cast<long long>(a.params), static_cast<long long>(a.clients), kernel_threads(),
              static_cast<long long>(a.repeats));
  std::printf("  (GB/s count (K reads + 1 write) x N float32 = %.3f GB per aggregation)\n", agg_gb);
  std::printf("  %-26s %10s %10s\n", "", "seconds", "GB/s");
  std::printf("  %-26s %10.4f %10.2f\n", "weighted_sum (fused)", s_ws, agg_gb / s_ws);
  std::printf("  %-26s %10.4f %10.2f  (real traffic %.2f GB/s)\n", "streaming (fill + K axpy)",
              s_stream, agg_gb / s_stream, stream_traffic_gb / s_stream);
  std::printf("  %-26s %10.4f %10.2f\n", "reference (plain sum)", s_ref, agg_gb / s_ref);
  if (rule) {
    std::printf("  %-26s %10.4f %10.2f\n", ("rule " + rule->describe()).c_str(), s_rule,
                agg_gb / s_rule);
  }
  std::printf("  weighted_sum / reference: %.3f\n", s_ref / s_ws);
  if (rule) std::printf("  rule / weighted_sum (time): %.3f\n", s_rule / s_ws);
  return Status();
}

}  // namespace

void add_kernel_benchmarks(CLI::App* bench, const Guard& guard) {
  auto agg = std::make_shared<AggregateArgs>();
  CLI::App* a = bench->add_subcommand(
      "aggregate", "Weighted-sum aggregation bandwidth vs a plain streaming loop");
  a->add_option("--params", agg->params, "Floats per model (N)")->capture_default_str();
  a->add_option("--clients", agg->clients, "Updates per aggregation (K)")->capture_default_str();
  a->add_option("--threads", agg->threads, "Kernel threads (0 = all cores)")->capture_default_str();
  a->add_option("--repeats", agg->repeats, "Timed repeats; the median is reported")
      ->capture_default_str();
  a->add_option("--rule", agg->rule,
                "Also time this robust aggregation rule (robust.rule: median, trimmed_mean, "
                "krum, ...; default options) on the same inputs");
  a->add_flag("--json", agg->json, "Print one JSON object instead of a table");
  a->callback([agg, guard] {
    guard("bench aggregate", [&] {
      return run_aggregate(*agg);
    });
  });

  add_fedavg_round_benchmark(bench, guard);
  add_codec_benchmark(bench, guard);
  add_secagg_benchmark(bench, guard);
}

}  // namespace cohort::bench
