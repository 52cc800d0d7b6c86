// Private to the deployment benchmarks (bench/deploy_*.cc; what they measure is described at
// the top of bench/deploy_load.cc):
//   deploy_server.cc   the hidden `cohort bench deploy-server`: the server child;
//   deploy_harness.cc  the parent's side: starting and stopping the child, the bench clients,
//                      run_deploy_bench;
//   deploy_load.cc     `cohort bench load` and `cohort bench large-model` on run_deploy_bench,
//                      and add_deploy_benchmarks.
// run_deploy_bench passes the child its settings as deploy-server's options (--strategy,
// --params, --clients, --buffer-size, --max-rounds, --max-concurrent-pushes, --chunk-bytes,
// --max-wall, --tokens, --out, --uplink, --spool-dir); the child prints "listening on 127.0.0.1:PORT" once it serves
// and "RESULT <json>" just before it exits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "cohort/core/metrics.h"
#include "cohort/core/status.h"

namespace cohort::bench {

// The server child `cohort bench deploy-server ARGS` (this executable): its pid, port, and the
// RESULT line its stdout reader thread keeps.
struct Child {
  pid_t pid = -1;
  int port = 0;
  std::thread reader;  // drains the child's stdout
  std::mutex mu;
  std::string result_line;
  std::string stderr_path;
};
// Starts the child and waits for its "listening on" line (up to 30 s); its stderr goes to
// `stderr_path`.
Status start_child(const std::vector<std::string>& args, const std::string& stderr_path,
                   Child* child);
// Waits up to `timeout_s` for the child to exit, then SIGTERM, then SIGKILL. Returns its
// RESULT json.
Result<Json> finish_child(Child* child, double timeout_s);

// Registers the hidden `cohort bench deploy-server` (bench/deploy_server.cc).
void add_deploy_server_command(CLI::App* bench, const Guard& guard);
// Registers `cohort bench hierarchy` (bench/hierarchy.cc).
void add_hierarchy_benchmark(CLI::App* bench, const Guard& guard);

struct DeployBenchSpec {
  std::string strategy;  // fedbuff | fedavg
  int64_t params = 0;
  int64_t clients = 0;
  int64_t updates_per_client = 1;
  int64_t threads = 1;
  int64_t buffer_size = 10;
  int64_t max_concurrent_pushes = 0;
  int64_t chunk_bytes = 1 << 20;
  double timeout_s = 110;
  // The uplink chain (compression.uplink): clients push the delta as a payload of it.
  std::string uplink = "none";
  // The downlink chain (compression.downlink): the model comes down as a payload of it, which
  // clients decode (a raw model is only counted: the comparison is conservative for codecs).
  std::string downlink = "none";
};

// What one client thread saw (run_deploy_bench adds them up).
struct ThreadStats {
  std::vector<double> push_s;
  int64_t accepted = 0, rejected = 0, errors = 0, waits = 0, done_early = 0, duplicates = 0;
  int64_t bytes_up = 0, bytes_down = 0;
  double last_download_end = 0;  // seconds: per thread since the bench's epoch; in the
                                 // result since the round began (wall_s's start)
  double first_push_start = -1;
  std::string first_error;
  std::string payload;        // a downloaded model payload (downlink chain), reused
  std::vector<float> decoded;  // ... decoded here
  void error(const std::string& what) {
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

struct DeployBenchResult {
  double wall_s = 0;           // from all clients registered to the last client finished
  std::vector<double> push_s;  // ascending
  ThreadStats totals;
  int64_t clients_with_wrong_count = 0;
  double rss_sample_peak_bytes = 0;  // the parent's 5 ms samples of the server's VmRSS
  double rss_sample_peak_at_s = 0;
  // CPU seconds spent over wall_s by the server child and by this process (the clients).
  double server_cpu_s = -1;
  double clients_cpu_s = -1;
  Json server;   // child's RESULT
  Json summary;  // child's summary.json
};

// Starts the server child, runs spec.clients bench clients on spec.threads threads until each
// pushed spec.updates_per_client accepted updates (or spec.timeout_s passed, or too many
// errors), then collects the child's RESULT and summary.json (bench/deploy_harness.cc).
Result<DeployBenchResult> run_deploy_bench(const DeployBenchSpec& spec);

}  // namespace cohort::bench
