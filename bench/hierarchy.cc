// `cohort bench hierarchy`: what the top server of a deployment takes in, flat against two
// levels (docs/design/hierarchy.md). The same C clients (real deploy::Client, gRPC on loopback)
// train R FedAvg rounds of a P-parameter model either straight against the top server
// (flat) or through K aggregators (deploy::Aggregator, `cohort serve --upstream`'s engine) of
// C/K clients each. The top server runs in a child process (`cohort bench deploy-server`), so
// its peak RSS is its own; its ingress is the bytes of the updates it received (summary
// bytes_up). Clients and aggregators share this process; their trainer is a cheap O(P) step,
// so the figures are the protocol's, not a model's.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "cohort/core/rng.h"
#include "cohort/deploy/aggregator.h"
#include "cohort/deploy/client.h"
#include "deploy_bench.h"

namespace cohort::bench {

namespace {

struct HierarchyArgs {
  int64_t clients = 200;
  int64_t aggregators = 4;
  int64_t params = 250000;
  int64_t rounds = 3;
  double timeout_s = 300;
  bool json = false;
};

// start + a small step towards 1: O(params), no model.
class StepTrainer final : public Trainer {
 public:
  explicit StepTrainer(std::shared_ptr<const ArrayLayout> layout) : layout_(std::move(layout)) {}
  Result<ArrayRecord> init_params(uint64_t) override { return ArrayRecord(layout_); }
  Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                            const TrainConfig&, const ConfigRecord&, uint64_t seed,
                            const ArrayRecord*) override {
    TrainResult r;
    r.params = start.clone();
    const float a = 0.01f * static_cast<float>(1 + seed % 7);
    for (float& v : r.params.flat()) v += a * (1.0f - v);
    r.num_examples = shard.size();
    r.steps = steps;
    r.metrics["train_loss"] = 1.0;
    return r;
  }
  Result<EvalResult> evaluate(const ArrayRecord&, const Shard&) override { return EvalResult{}; }

 private:
  std::shared_ptr<const ArrayLayout> layout_;
};

// Writes a tokens file for ids [first, first + n); returns the tokens.
std::vector<std::string> write_tokens(const std::string& path, const std::string& tag,
                                      int64_t first, int64_t n) {
  std::ofstream f(path);
  std::vector<std::string> out;
  for (int64_t i = first; i < first + n; ++i) {
    out.push_back("bench-" + tag + "-" + std::to_string(i));
    f << out.back() << " " << i << "\n";
  }
  return out;
}

deploy::ClientOptions client_options(int port, const std::string& token) {
  deploy::ClientOptions o;
  o.server = "127.0.0.1:" + std::to_string(port);
  o.token = token;
  o.insecure = true;
  o.max_disconnected_s = 60;
  o.backoff_max_s = 0.5;
  o.rpc_timeout_s = 60;
  return o;
}

// One mode: the top server's RESULT (peak RSS) and summary (ingress), and the wall time.
Result<Json> run_mode(const HierarchyArgs& a, bool two_level, const std::string& dir) {
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const ArrayLayout> layout, dense_layout(a.params));
  const int64_t k = two_level ? a.aggregators : 0;
  const int64_t top_clients = two_level ? k : a.clients;
  const std::string tag = two_level ? "two_level" : "flat";
  const std::string top_tokens_path = dir + "/" + tag + "_top_tokens.txt";
  std::vector<std::string> top_tokens = write_tokens(top_tokens_path, tag + "-top", 0, top_clients);
  const std::string out = dir + "/" + tag + "_top";
  Child child;
  COHORT_RETURN_IF_ERROR(start_child(
      {"--strategy", "fedavg", "--params", std::to_string(a.params), "--clients",
       std::to_string(top_clients), "--max-rounds", std::to_string(a.rounds), "--max-wall",
       std::to_string(a.timeout_s), "--tokens", top_tokens_path, "--out", out},
      dir + "/" + tag + "_top.err", &child));
  const auto t0 = Clock::now();

  std::vector<std::unique_ptr<deploy::Aggregator>> aggs;
  std::vector<int> leaf_ports;
  std::vector<std::string> leaf_tokens;
  if (two_level) {
    const int64_t per = a.clients / k;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t n = i + 1 == k ? a.clients - per * (k - 1) : per;
      deploy::AggregatorOptions o;
      o.server.listen_address = "127.0.0.1:0";
      o.server.insecure = true;
      o.server.tokens_file = dir + "/" + tag + "_agg" + std::to_string(i) + "_tokens.txt";
      o.server.client_timeout_s = 60;
      o.server.heartbeat_interval_s = 10;
      o.server.done_grace_s = 1.0;
      std::vector<std::string> toks =
          write_tokens(o.server.tokens_file, tag + "-agg" + std::to_string(i), i * per, n);
      o.upstream = client_options(child.port, top_tokens[static_cast<size_t>(i)]);
      o.round.min_clients = n;
      auto agg = std::make_unique<deploy::Aggregator>(std::move(o), ArrayRecord(layout));
      COHORT_ASSIGN_OR_RETURN(int port, agg->start());
      for (const std::string& t : toks) {
        leaf_ports.push_back(port);
        leaf_tokens.push_back(t);
      }
      aggs.push_back(std::move(agg));
    }
  } else {
    for (const std::string& t : top_tokens) {
      leaf_ports.push_back(child.port);
      leaf_tokens.push_back(t);
    }
  }
  std::vector<std::unique_ptr<deploy::Client>> clients;
  for (size_t i = 0; i < leaf_tokens.size(); ++i) {
    deploy::ClientOptions o = client_options(leaf_ports[i], leaf_tokens[i]);
    o.seed = i + 1;
    COHORT_ASSIGN_OR_RETURN(
        std::unique_ptr<deploy::Client> c,
        deploy::Client::create(std::move(o), std::make_unique<StepTrainer>(layout),
                               Shard::blank()));
    clients.push_back(std::move(c));
  }
  std::atomic<int64_t> failed{0};
  std::string first_error;
  std::mutex err_mu;
  std::vector<std::thread> threads;
  auto record = [&](const Status& s, const std::string& who) {
    if (s.ok()) return;
    failed.fetch_add(1);
    std::lock_guard<std::mutex> lk(err_mu);
    if (first_error.empty()) first_error = who + ": " + s.to_string();
  };
  for (auto& c : clients) {
    threads.emplace_back([&, c = c.get()] {
      Result<deploy::ClientStats> r = c->run();
      record(r.ok() ? Status() : r.error(), "client");
    });
  }
  for (auto& g : aggs) {
    threads.emplace_back([&, g = g.get()] {
      record(g->run(), "aggregator");
    });
  }
  for (auto& t : threads) t.join();
  const double wall = seconds_since(t0);
  COHORT_ASSIGN_OR_RETURN(Json result, finish_child(&child, a.timeout_s));
  Json summary;
  {
    std::ifstream f(out + "/summary.json");
    if (!f) return Status::internal("no summary.json from the top server in " + out);
    summary = Json::parse(f);
  }
  if (failed.load() > 0) return Status::internal(first_error);
  const auto num = [](const Json& j, const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
  };
  return Json{{"mode", tag},
              {"top_clients", top_clients},
              {"clients", a.clients},
              {"aggregators", k},
              {"rounds_committed", result.value("version", 0)},
              {"top_updates", num(summary, "updates")},
              {"top_ingress_bytes", num(summary, "bytes_up")},
              {"top_egress_bytes", num(summary, "bytes_down")},
              {"top_peak_rss_bytes", num(result, "peak_rss_bytes")},
              {"top_ready_rss_bytes", num(result, "rss_ready_bytes")},
              {"top_peak_above_ready_bytes",
               num(result, "peak_rss_bytes") - num(result, "rss_ready_bytes")},
              {"wall_s", wall}};
}

Status run_hierarchy(const HierarchyArgs& a) {
  if (a.clients < 1 || a.aggregators < 1 || a.aggregators > a.clients || a.rounds < 1) {
    return Status::invalid_argument(
        "bench hierarchy: need 1 <= --aggregators <= --clients and --rounds >= 1");
  }
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("cohort_bench_hierarchy_" + std::to_string(getpid())))
                              .string();
  std::filesystem::create_directories(dir);
  COHORT_ASSIGN_OR_RETURN(Json flat, run_mode(a, false, dir));
  COHORT_ASSIGN_OR_RETURN(Json two, run_mode(a, true, dir));
  std::filesystem::remove_all(dir);
  const double model_bytes = 4.0 * static_cast<double>(a.params);
  Json r = {{"bench", "hierarchy"},
            {"params", a.params},
            {"model_bytes", model_bytes},
            {"rounds", a.rounds},
            {"flat", flat},
            {"two_level", two},
            {"ingress_ratio", flat["top_ingress_bytes"].get<double>() /
                                  std::max(1.0, two["top_ingress_bytes"].get<double>())},
            {"peak_above_ready_ratio",
             flat["top_peak_above_ready_bytes"].get<double>() /
                 std::max(1.0, two["top_peak_above_ready_bytes"].get<double>())}};
  if (a.json) {
    std::printf("%s\n", r.dump().c_str());
  } else {
    for (const Json* m : {&flat, &two}) {
      std::printf(
          "%-9s top server: %3lld clients, ingress %8.1f MB, peak RSS %7.1f MB (%6.1f MB "
          "above ready), %5.1f s\n",
          (*m)["mode"].get<std::string>().c_str(), (*m)["top_clients"].get<long long>(),
          (*m)["top_ingress_bytes"].get<double>() / 1e6,
          (*m)["top_peak_rss_bytes"].get<double>() / 1e6,
          (*m)["top_peak_above_ready_bytes"].get<double>() / 1e6, (*m)["wall_s"].get<double>());
    }
    std::printf("flat / two-level: ingress %.1fx, peak above ready %.1fx\n",
                r["ingress_ratio"].get<double>(), r["peak_above_ready_ratio"].get<double>());
  }
  return Status();
}

}  // namespace

void add_hierarchy_benchmark(CLI::App* bench, const Guard& guard) {
  auto a = std::make_shared<HierarchyArgs>();
  CLI::App* c = bench->add_subcommand(
      "hierarchy", "Top-server ingress and memory: clients flat vs through aggregators (loopback)");
  c->add_option("--clients", a->clients, "Clients in all")->capture_default_str();
  c->add_option("--aggregators", a->aggregators, "Aggregators in the two-level run")
      ->capture_default_str();
  c->add_option("--params", a->params, "Floats per model")->capture_default_str();
  c->add_option("--rounds", a->rounds, "FedAvg rounds")->capture_default_str();
  c->add_option("--timeout", a->timeout_s, "Give up after this many seconds")
      ->capture_default_str();
  c->add_flag("--json", a->json, "Print one JSON line");
  c->callback([a, guard] {
    guard("bench hierarchy", [&] {
      return run_hierarchy(*a);
    });
  });
}

}  // namespace cohort::bench
