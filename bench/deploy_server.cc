// The hidden `cohort bench deploy-server`: the server child of `cohort bench load` and
// `cohort bench large-model` (bench/deploy_load.cc). A deploy::Server hosting a real strategy
// on a model built directly as an ArrayRecord (no LibTorch model), so its peak RSS
// (/proc/self/status VmHWM, read just before it exits) is the server's alone.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "bench_util.h"
#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/deploy/server.h"
#include "cohort/strategy/registry.h"
#include "cohort/strategy/strategy.h"
#include "deploy_bench.h"

namespace cohort::bench {

namespace {

struct ServerChildArgs {
  std::string strategy = "fedbuff";
  int64_t params = 250000;
  int64_t clients = 500;
  int64_t buffer_size = 10;
  int64_t max_rounds = 1;
  int64_t max_concurrent_pushes = 0;
  int64_t chunk_bytes = 1 << 20;
  double max_wall_s = 120;
  std::string tokens;
  std::string out;
  std::string uplink = "none";    // compression.uplink
  std::string downlink = "none";  // compression.downlink
  std::string spool_dir;        // deploy.spool_dir ("" = the default)
};

// Forwards everything to the real strategy and times on_update / on_timer; a call after which
// the version moved is a commit, and its duration is the aggregation's.
class TimedStrategy final : public Strategy {
 public:
  explicit TimedStrategy(std::unique_ptr<Strategy> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  bool accepts_streamed_delta() const override { return inner_->accepts_streamed_delta(); }
  Status set_group_aggregation(std::shared_ptr<GroupAggregation> group,
                               size_t num_clients) override {
    return inner_->set_group_aggregation(std::move(group), num_clients);
  }
  Status start(StrategyHost* host, ArrayRecord initial) override {
    return inner_->start(host, std::move(initial));
  }
  void on_client_idle(ClientId id) override { inner_->on_client_idle(id); }
  Status on_update(Update update) override {
    Status s;
    timed([&] {
      s = inner_->on_update(std::move(update));
    });
    return s;
  }
  void on_task_lost(ClientId id, ModelVersion v) override { inner_->on_task_lost(id, v); }
  void on_timer(TimerId id) override {
    timed([&] {
      inner_->on_timer(id);
    });
  }
  Status check_population(size_t num_clients) const override {
    return inner_->check_population(num_clients);
  }
  std::shared_ptr<const ArrayRecord> global_model() const override {
    return inner_->global_model();
  }
  ModelVersion version() const override { return inner_->version(); }
  Status save_state(StrategyState* out) const override { return inner_->save_state(out); }
  Status restore_state(StrategyState state) override {
    return inner_->restore_state(std::move(state));
  }

  // Read after Server::wait() returned (the loop thread has exited).
  double update_seconds = 0;  // all on_update calls (folding updates in as they arrive)
  double commit_seconds = 0;  // calls that committed (aggregation + commit)
  double last_commit_seconds = 0;
  int64_t commits = 0;

 private:
  template <typename F>
  void timed(F&& f) {
    const ModelVersion before = inner_->version();
    const auto t0 = Clock::now();
    f();
    const double dt = seconds_since(t0);
    update_seconds += dt;
    if (inner_->version() != before) {
      commit_seconds += dt;
      last_commit_seconds = dt;
      ++commits;
    }
  }
  std::unique_ptr<Strategy> inner_;
};

Status run_server_child(const ServerChildArgs& a) {
  const int64_t rss_before_model = proc_status_bytes("VmRSS");
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const ArrayLayout> layout, dense_layout(a.params));
  ArrayRecord initial(layout);
  std::fill(initial.flat().begin(), initial.flat().end(), 0.0f);
  ConfigRecord params;
  if (a.strategy == "fedbuff") {
    params["buffer_size"] = a.buffer_size;
  } else {
    params["fraction"] = 1.0;
    params["min_clients"] = a.clients;
  }
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> inner, make_strategy(a.strategy, params));
  auto timed = std::make_unique<TimedStrategy>(std::move(inner));
  TimedStrategy* timing = timed.get();

  deploy::ServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.insecure = true;
  o.tokens_file = a.tokens;
  o.chunk_bytes = a.chunk_bytes;
  o.max_concurrent_pushes = a.max_concurrent_pushes;
  o.client_timeout_s = 60;
  // Short: after the run the server keeps answering DONE until every client in contact was
  // told, at most two heartbeat intervals + 1 s, and the harness's clients never pull again
  // (with 10 s every run ended with 20 s of nothing).
  o.heartbeat_interval_s = 1;
  o.max_rounds = a.max_rounds;
  o.max_wall_s = a.max_wall_s;
  o.done_grace_s = 1.0;
  o.out_dir = a.out;
  o.compression.uplink = a.uplink;
  o.compression.downlink = a.downlink;
  o.spool_dir = a.spool_dir;
  deploy::Server server(std::move(o), std::move(timed), std::move(initial));
  COHORT_ASSIGN_OR_RETURN(int port, server.start());
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  const int64_t rss_ready = proc_status_bytes("VmRSS");
  Status s = server.wait();
  Json r = {{"rss_before_model_bytes", rss_before_model},
            {"rss_ready_bytes", rss_ready},
            {"peak_rss_bytes", proc_status_bytes("VmHWM")},
            {"update_seconds", timing->update_seconds},
            {"commit_seconds", timing->commit_seconds},
            {"last_commit_seconds", timing->last_commit_seconds},
            {"commits", timing->commits},
            {"version", server.version()},
            {"status", s.ok() ? "ok" : s.to_string()}};
  std::printf("RESULT %s\n", r.dump().c_str());
  std::fflush(stdout);
  return s;
}

}  // namespace

void add_deploy_server_command(CLI::App* bench, const Guard& guard) {
  auto sa = std::make_shared<ServerChildArgs>();
  CLI::App* s = bench->add_subcommand("deploy-server", "Server child of bench load/large-model");
  s->group("");  // hidden
  s->add_option("--strategy", sa->strategy);
  s->add_option("--params", sa->params);
  s->add_option("--clients", sa->clients);
  s->add_option("--buffer-size", sa->buffer_size);
  s->add_option("--max-rounds", sa->max_rounds);
  s->add_option("--max-concurrent-pushes", sa->max_concurrent_pushes);
  s->add_option("--chunk-bytes", sa->chunk_bytes);
  s->add_option("--max-wall", sa->max_wall_s);
  s->add_option("--tokens", sa->tokens)->required();
  s->add_option("--out", sa->out);
  s->add_option("--uplink", sa->uplink);
  s->add_option("--downlink", sa->downlink);
  s->add_option("--spool-dir", sa->spool_dir);
  s->callback([sa, guard] {
    guard("bench deploy-server", [&] {
      return run_server_child(*sa);
    });
  });
}

}  // namespace cohort::bench
