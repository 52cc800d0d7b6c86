// The C++ benchmarks behind `cohort bench ...` (apps/cli/bench.cc registers them) and
// `make bench` (bench/run.sh parses their output):
//   cohort_bench_kernels: `cohort bench aggregate`, `fedavg-round`, `codec` and `secagg`
//                         (bench/aggregate.cc, fedavg_round.cc, codec.cc, secagg.cc);
//   cohort_bench_eval:    `cohort bench eval` and `population` (bench/eval.cc,
//                         population.cc; LibTorch, the runner);
//   cohort_bench_deploy:  `cohort bench load`, `cohort bench large-model` and the hidden
//                         `cohort bench deploy-server` (COHORT_WITH_GRPC; bench/deploy_*.cc).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "cohort/core/status.h"

namespace cohort::bench {

// Runs `fn`, reporting a failure or an exception (the CLI's run_guarded).
using Guard = std::function<void(const char* what, const std::function<Status()>& fn)>;

// `cohort bench aggregate` and `cohort bench fedavg-round` (bench/aggregate.cc,
// bench/fedavg_round.cc).
void add_kernel_benchmarks(CLI::App* bench, const Guard& guard);

// `cohort bench codec` (bench/codec.cc; add_kernel_benchmarks registers it).
void add_codec_benchmark(CLI::App* bench, const Guard& guard);

// `cohort bench secagg` (bench/secagg.cc; add_kernel_benchmarks registers it).
void add_secagg_benchmark(CLI::App* bench, const Guard& guard);

// `cohort bench eval` (LibTorch; bench/eval.cc).
void add_eval_benchmark(CLI::App* bench, const Guard& guard);

// `cohort bench population` (the simulator at a million clients; bench/population.cc).
void add_population_benchmark(CLI::App* bench, const Guard& guard);

// `cohort bench load`, `large-model` and the hidden `deploy-server` (gRPC; bench/deploy_*.cc).
void add_deploy_benchmarks(CLI::App* bench, const Guard& guard);

}  // namespace cohort::bench
