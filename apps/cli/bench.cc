// `cohort bench`: the micro-benchmarks of bench/ (cohort_bench_kernels: aggregate,
// fedavg-round; cohort_bench_deploy with COHORT_WITH_GRPC: load, large-model and the hidden
// deploy-server). bench/bench.h describes them; bench/run.sh (`make bench`) runs them.
#include "bench/bench.h"

#include <functional>

#include "cohort/core/status.h"
#include "commands.h"

namespace cohort::cli {

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Micro-benchmarks of Cohort's server side");
  bench->require_subcommand(1);
  const cohort::bench::Guard guard = [](const char* what, const std::function<Status()>& fn) {
    run_guarded(what, fn);
  };
  cohort::bench::add_kernel_benchmarks(bench, guard);
  cohort::bench::add_eval_benchmark(bench, guard);
  cohort::bench::add_population_benchmark(bench, guard);
#ifdef COHORT_WITH_GRPC
  cohort::bench::add_deploy_benchmarks(bench, guard);
#endif
}

}  // namespace cohort::cli
