// `cohort bench load` and `cohort bench large-model`: end-to-end benchmarks of the gRPC
// deployment on loopback (compiled only with COHORT_WITH_GRPC).
//
// Both run the server as a child process (`cohort bench deploy-server`, hidden: a
// deploy::Server hosting a real strategy on a model built directly as an ArrayRecord, no
// LibTorch model; bench/deploy_server.cc), so its peak RSS (/proc/self/status VmHWM, read by
// the child just before it exits) is the server's alone. The parent runs lightweight clients
// with the generated sync stub, one channel (one TCP connection) per client, few threads each
// serving several clients: Register, then { PullTask -> Download -> PushUpdate } with a
// constructed delta, no training (bench/deploy_harness.cc).
//
//   load:        FedBuff (buffer_size B), C clients x N updates of `--update-mb` MB; reports
//                updates/s, uplink MB/s, p50/p99 PushUpdate latency, server peak RSS, and
//                checks that the server accepted exactly C x N updates (its summary.json),
//                that clients saw exactly C x N accepted replies, N per client, and no task
//                accepted twice.
//   large-model: FedAvg (fraction 1, min_clients K), K clients each pushing one P-param
//                update; reports round wall time, the server's aggregation time (the duration
//                of the strategy's on_update call that closed the round and committed, timed
//                by a forwarding Strategy wrapper in the child) and server peak RSS vs the
//                model size (goal < 4x).
//
// Everything binds 127.0.0.1 with an OS-chosen port; the run is bounded by --timeout.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "bench.h"
#include "bench_util.h"
#include "cohort/core/metrics.h"
#include "deploy_bench.h"

namespace cohort::bench {

namespace {

int64_t json_int(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<int64_t>() : -1;
}

// ---- load -----------------------------------------------------------------------------------

struct LoadArgs {
  int64_t clients = 500;
  double update_mb = 1.0;
  int64_t updates_per_client = 2;
  int64_t threads = 50;
  int64_t buffer_size = 10;
  double timeout_s = 110;
  bool json = false;
};

Status run_load(const LoadArgs& a) {
  if (a.clients < 1 || a.updates_per_client < 1 || a.update_mb <= 0 || a.buffer_size < 1) {
    return Status::invalid_argument(
        "bench load: --clients, --updates-per-client, --update-mb "
        "and --buffer-size must be positive");
  }
  DeployBenchSpec spec;
  spec.strategy = "fedbuff";
  spec.params = static_cast<int64_t>(a.update_mb * 1e6 / 4);
  spec.clients = a.clients;
  spec.updates_per_client = a.updates_per_client;
  spec.threads = a.threads;
  spec.buffer_size = a.buffer_size;
  spec.timeout_s = a.timeout_s;
  if ((a.clients * a.updates_per_client) % a.buffer_size != 0) {
    return Status::invalid_argument("bench load: clients x updates-per-client (" +
                                    std::to_string(a.clients * a.updates_per_client) +
                                    ") must be a multiple of --buffer-size " +
                                    std::to_string(a.buffer_size));
  }
  COHORT_ASSIGN_OR_RETURN(DeployBenchResult r, run_deploy_bench(spec));
  const int64_t expected = a.clients * a.updates_per_client;
  const int64_t server_updates = json_int(r.summary, "updates");
  const int64_t server_rejected = json_int(r.summary, "rejected");
  const int64_t server_lost = json_int(r.summary, "lost");
  const bool exact = server_updates == expected && r.totals.accepted == expected &&
                     r.totals.duplicates == 0 && server_rejected == 0 && server_lost == 0 &&
                     r.totals.errors == 0;
  const int64_t model_bytes = spec.params * 4;
  Json j = {{"benchmark", "load"},
            {"strategy", "fedbuff"},
            {"buffer_size", a.buffer_size},
            {"clients", a.clients},
            {"client_threads", std::min(a.threads, a.clients)},
            {"updates_per_client", a.updates_per_client},
            {"update_bytes", model_bytes},
            {"expected_updates", expected},
            {"client_accepted", r.totals.accepted},
            {"client_rejected", r.totals.rejected},
            {"client_errors", r.totals.errors},
            {"duplicate_tasks", r.totals.duplicates},
            {"server_updates", server_updates},
            {"server_rejected", server_rejected},
            {"server_lost", server_lost},
            {"server_rounds", json_int(r.summary, "rounds")},
            {"exact", exact},
            {"wall_s", r.wall_s},
            {"server_cpu_s", r.server_cpu_s},
            {"clients_cpu_s", r.clients_cpu_s},
            {"updates_per_s", static_cast<double>(r.totals.accepted) / r.wall_s},
            {"uplink_mb_per_s", static_cast<double>(r.totals.bytes_up) / 1e6 / r.wall_s},
            {"downlink_mb_per_s", static_cast<double>(r.totals.bytes_down) / 1e6 / r.wall_s},
            {"push_p50_ms", percentile(r.push_s, 0.5) * 1e3},
            {"push_p99_ms", percentile(r.push_s, 0.99) * 1e3},
            {"push_max_ms", r.push_s.empty() ? 0.0 : r.push_s.back() * 1e3},
            {"server_peak_rss_bytes", json_int(r.server, "peak_rss_bytes")},
            {"server_rss_before_model_bytes", json_int(r.server, "rss_before_model_bytes")},
            {"server_rss_ready_bytes", json_int(r.server, "rss_ready_bytes")},
            {"first_error", r.totals.first_error}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  if (!exact) {
    return Status::internal("bench load: updates not exact (expected " + std::to_string(expected) +
                            ", server " + std::to_string(server_updates) + ", clients " +
                            std::to_string(r.totals.accepted) + "): " + r.totals.first_error);
  }
  return Status();
}

// ---- large-model ------------------------------------------------------------------------------

struct LargeArgs {
  int64_t params = 25000000;
  int64_t clients = 10;
  int64_t max_concurrent_pushes = 1;
  int64_t chunk_bytes = 1 << 20;
  double timeout_s = 110;
  std::string uplink = "none";
  std::string downlink = "none";
  bool json = false;
};

Status run_large(const LargeArgs& a) {
  if (a.clients < 1 || a.params < 1) {
    return Status::invalid_argument("bench large-model: --params and --clients must be positive");
  }
  DeployBenchSpec spec;
  spec.strategy = "fedavg";
  spec.params = a.params;
  spec.clients = a.clients;
  spec.updates_per_client = 1;
  spec.threads = a.clients;
  spec.max_concurrent_pushes = a.max_concurrent_pushes;
  spec.chunk_bytes = a.chunk_bytes;
  spec.timeout_s = a.timeout_s;
  spec.uplink = a.uplink;
  spec.downlink = a.downlink;
  COHORT_ASSIGN_OR_RETURN(DeployBenchResult r, run_deploy_bench(spec));
  const int64_t model_bytes = a.params * 4;
  const int64_t peak = json_int(r.server, "peak_rss_bytes");
  const int64_t before = json_int(r.server, "rss_before_model_bytes");
  const double over = static_cast<double>(peak) / static_cast<double>(model_bytes);
  const double incr = static_cast<double>(peak - before) / static_cast<double>(model_bytes);
  const bool ok = r.totals.accepted == a.clients && json_int(r.summary, "updates") == a.clients &&
                  json_int(r.summary, "rounds") == 1;
  Json j = {
      {"benchmark", "large-model"},
      {"strategy", "fedavg"},
      {"params", a.params},
      {"model_bytes", model_bytes},
      {"clients", a.clients},
      {"max_concurrent_pushes", a.max_concurrent_pushes},
      {"uplink", a.uplink},
      {"downlink", a.downlink},
      {"bytes_down_per_client", r.totals.bytes_down / a.clients},
      {"bytes_up_per_update", r.totals.accepted > 0 ? r.totals.bytes_up / r.totals.accepted : 0},
      {"chunk_bytes", a.chunk_bytes},
      {"client_accepted", r.totals.accepted},
      {"server_updates", json_int(r.summary, "updates")},
      {"server_rounds", json_int(r.summary, "rounds")},
      {"round_wall_s", r.wall_s},
      {"server_cpu_s", r.server_cpu_s},
      {"clients_cpu_s", r.clients_cpu_s},
      {"server_aggregate_s", r.server.value("last_commit_seconds", -1.0)},
      {"server_on_update_total_s", r.server.value("update_seconds", -1.0)},
      {"push_p50_ms", percentile(r.push_s, 0.5) * 1e3},
      {"push_max_ms", r.push_s.empty() ? 0.0 : r.push_s.back() * 1e3},
      {"server_peak_rss_bytes", peak},
      {"server_rss_before_model_bytes", before},
      {"server_rss_ready_bytes", json_int(r.server, "rss_ready_bytes")},
      {"peak_rss_over_model", over},
      {"rss_sampled_peak_bytes", r.rss_sample_peak_bytes},
      {"rss_sampled_peak_at_s", r.rss_sample_peak_at_s},
      {"first_push_start_s", r.totals.first_push_start},
      {"last_download_end_s", r.totals.last_download_end},
      {"peak_rss_increment_over_model", incr},
      {"goal_increment_under_4x_model", incr < 4.0},
      {"ok", ok},
      {"first_error", r.totals.first_error}};
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
  if (!ok) {
    return Status::internal("bench large-model: the round did not complete with every update: " +
                            r.totals.first_error);
  }
  return Status();
}

}  // namespace

void add_deploy_benchmarks(CLI::App* bench, const Guard& guard) {
  auto la = std::make_shared<LoadArgs>();
  CLI::App* l = bench->add_subcommand(
      "load", "Many gRPC clients pushing updates to a FedBuff server on loopback");
  l->add_option("--clients", la->clients, "Registered clients (one connection each)")
      ->capture_default_str();
  l->add_option("--update-mb", la->update_mb, "Update size in MB (float32)")->capture_default_str();
  l->add_option("--updates-per-client", la->updates_per_client, "Updates each client pushes")
      ->capture_default_str();
  l->add_option("--threads", la->threads, "Client threads (clients are spread over them)")
      ->capture_default_str();
  l->add_option("--buffer-size", la->buffer_size, "FedBuff buffer size")->capture_default_str();
  l->add_option("--timeout", la->timeout_s, "Give up after this many seconds")
      ->capture_default_str();
  l->add_flag("--json", la->json, "Print one JSON line");
  l->callback([la, guard] {
    guard("bench load", [&] {
      return run_load(*la);
    });
  });

  auto ga = std::make_shared<LargeArgs>();
  CLI::App* g = bench->add_subcommand("large-model",
                                      "One FedAvg round of large updates over gRPC on loopback");
  g->add_option("--params", ga->params, "Floats per model")->capture_default_str();
  g->add_option("--clients", ga->clients, "Clients (each pushes one update)")
      ->capture_default_str();
  g->add_option("--max-concurrent-pushes", ga->max_concurrent_pushes,
                "Server: uploads assembled at once (0 = unlimited)")
      ->capture_default_str();
  g->add_option("--chunk-bytes", ga->chunk_bytes, "Stream chunk size")->capture_default_str();
  g->add_option("--downlink", ga->downlink, "Downlink codec chain (compression.downlink)")
      ->capture_default_str();
  g->add_option("--uplink", ga->uplink, "Uplink codec chain (compression.uplink)")
      ->capture_default_str();
  g->add_option("--timeout", ga->timeout_s, "Give up after this many seconds")
      ->capture_default_str();
  g->add_flag("--json", ga->json, "Print one JSON line");
  g->callback([ga, guard] {
    guard("bench large-model", [&] {
      return run_large(*ga);
    });
  });

  add_deploy_server_command(bench, guard);
  add_hierarchy_benchmark(bench, guard);
}

}  // namespace cohort::bench
