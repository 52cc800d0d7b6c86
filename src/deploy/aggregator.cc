// The aggregator: a Server hosting the Relay strategy below, a Client whose trainer hands each
// upstream task to that strategy and waits for the round's partial aggregate above.
#include "cohort/deploy/aggregator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/strategy/relay.h"
#include "cohort/strategy/task_config.h"

namespace cohort::deploy {

namespace {

// One job's result, handed from the server's loop thread to the upstream client's thread.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<PartialAggregate>> result;
  void set(Result<PartialAggregate> r) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (result) return;
      result = std::move(r);
    }
    cv.notify_all();
  }
};

// The upstream client's "trainer": the tier below. train() runs one job of the Relay on the
// tier's server and returns start - mean delta, so the client's delta (start - end) is the
// round's mean delta, with the round's examples as its weight.
class RelayTrainer final : public Trainer {
 public:
  RelayTrainer(Server* server, Relay* relay, ArrayRecord initial, const std::atomic<bool>* stop,
               std::atomic<int64_t>* jobs_done, const std::atomic<int64_t>* registered_upstream)
      : server_(server),
        relay_(relay),
        initial_(std::move(initial)),
        stop_(stop),
        jobs_done_(jobs_done),
        registered_upstream_(registered_upstream) {}

  Result<ArrayRecord> init_params(uint64_t) override { return initial_.clone(); }

  Result<TrainResult> train(const ArrayRecord& start, const Shard&, int64_t steps,
                            const TrainConfig&, const ConfigRecord& task_config, uint64_t,
                            const ArrayRecord* grad_correction) override {
    if (grad_correction != nullptr) {
      return Status::invalid_argument(
          "aggregator: a task with server state cannot pass through an aggregator");
    }
    // The server above bounds each update's examples by what this tier registered: a tier
    // that grew since registers again first (the task in hand is lost, once per growth).
    const int64_t now_holds = server_->registered().examples;
    if (now_holds > registered_upstream_->load()) {
      return Status::unavailable(strformat(
          "aggregator: its clients now hold %lld examples, %lld registered upstream: "
          "registering again",
          static_cast<long long>(now_holds), static_cast<long long>(registered_upstream_->load())));
    }
    RelayJob job;
    job.model = std::make_shared<const ArrayRecord>(start.clone());
    job.config = task_config;
    COHORT_ASSIGN_OR_RETURN(const bool default_steps, task_local_steps_default(task_config));
    set_task_local_steps_default(job.config, false);  // the tier's own tasks carry no such mark
    job.local_steps = default_steps ? 0 : steps;

    auto waiter = std::make_shared<Waiter>();
    Relay* relay = relay_;
    Status posted = server_->post([relay, job = std::move(job), waiter]() mutable {
      Status s = relay->begin(std::move(job), [waiter](Result<PartialAggregate> r) {
        waiter->set(std::move(r));
      });
      if (!s.ok()) waiter->set(s);
    });
    if (!posted.ok()) return Status::cancelled("aggregator: its server has stopped");
    std::unique_lock<std::mutex> lk(waiter->mu);
    while (!waiter->result) {
      // Asked without waiter->mu: the loop thread sets the result while it holds the server's
      // lock, which finished() takes (holding both in the other order could deadlock).
      lk.unlock();
      if (cancel_requested() || stop_->load() || server_->finished()) {
        (void)server_->post([relay] {
          relay->cancel();
        });
        return Status::cancelled("aggregator: the task was given up while the tier trained");
      }
      lk.lock();
      if (waiter->result) break;
      waiter->cv.wait_for(lk, std::chrono::milliseconds(50));
    }
    Result<PartialAggregate> r = std::move(*waiter->result);
    lk.unlock();
    if (!r.ok()) return Status::aborted("aggregator: " + r.error().to_string());
    PartialAggregate& p = *r;
    TrainResult out;
    out.params = start.clone();
    ops::sub(start.flat(), p.mean_delta.flat(), out.params.flat());
    out.num_examples = p.num_examples;
    // The task's step count (what the server above asked and bounds); the clients' own mean
    // goes along as a metric.
    out.steps = steps;
    out.metrics = std::move(p.metrics);
    out.metrics["relay_updates"] = static_cast<double>(p.updates);
    out.metrics["relay_local_steps"] = static_cast<double>(p.local_steps);
    jobs_done_->fetch_add(1);
    return out;
  }

  Result<EvalResult> evaluate(const ArrayRecord&, const Shard&) override {
    return Status::unimplemented("aggregator: the tier does not evaluate");
  }

 private:
  Server* server_;
  Relay* relay_;
  ArrayRecord initial_;
  const std::atomic<bool>* stop_;
  std::atomic<int64_t>* jobs_done_;
  const std::atomic<int64_t>* registered_upstream_;
};

}  // namespace

struct Aggregator::Impl {
  AggregatorOptions opts;
  ArrayRecord initial;
  Relay* relay = nullptr;  // owned by the server
  std::unique_ptr<Server> server;
  std::unique_ptr<Client> client;
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> registered_upstream{0};  // examples the tier last registered above
};

Aggregator::Aggregator(AggregatorOptions options, ArrayRecord initial)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  impl_->initial = std::move(initial);
}

Aggregator::~Aggregator() {
  stop();
  if (impl_->server) impl_->server->shutdown();
}

Result<int> Aggregator::start() {
  if (impl_->server) return Status::failed_precondition("Aggregator::start: already started");
  AggregatorOptions& o = impl_->opts;
  ServerOptions& so = o.server;
  auto refuse = [](const std::string& what) {
    return Status::invalid_argument("cohort serve --upstream: " + what +
                                    " (docs/design/hierarchy.md)");
  };
  if (!so.checkpoint_dir.empty()) {
    return refuse(
        "an aggregator keeps no checkpoints (deploy.checkpoint_dir): its work in "
        "progress is one upstream task, which the server above reissues or loses");
  }
  if (so.privacy.enabled()) {
    return refuse(
        "privacy: differential privacy and secure aggregation run on the top server, "
        "not on an aggregator");
  }
  if (so.contribution.enabled()) {
    return refuse("contribution: estimates run on the top server, not on an aggregator");
  }
  if (o.round.min_clients < 1) return refuse("--relay-min-clients: must be >= 1");
  if (!(o.round.fraction > 0 && o.round.fraction <= 1)) {
    return refuse("--relay-fraction: must be in (0, 1]");
  }
  if (!(o.round.round_deadline_s >= 0)) return refuse("--relay-deadline-s: must be >= 0");
  so.max_rounds = 0;  // the upstream run decides when it ends
  if (so.max_wall_s <= 0) so.max_wall_s = 1e12;
  so.evaluate = nullptr;
  so.eval_every = 0;

  auto relay = std::make_unique<Relay>(o.round);
  impl_->relay = relay.get();
  impl_->server = std::make_unique<Server>(so, std::move(relay), impl_->initial.clone());
  COHORT_ASSIGN_OR_RETURN(int port, impl_->server->start());

  ClientOptions co = o.upstream;
  co.relay = true;
  co.fault = InjectedFault::kNone;
  co.attack = attack::AttackOptions{};
  co.stop_flag = &impl_->stopping;
  Server* server = impl_->server.get();
  std::atomic<int64_t>* registered = &impl_->registered_upstream;
  co.examples_to_register = [server, registered] {
    const int64_t n = std::max<int64_t>(1, server->registered().examples);
    registered->store(n);
    return n;
  };
  auto trainer = std::make_unique<RelayTrainer>(server, impl_->relay, impl_->initial.clone(),
                                                &impl_->stopping, &jobs_done_, registered);
  Result<std::unique_ptr<Client>> client =
      Client::create(std::move(co), std::move(trainer), Shard::blank());  // no data of its own
  if (!client.ok()) {
    impl_->server->shutdown();
    return client.error().with_context("upstream");
  }
  impl_->client = std::move(*client);
  return port;
}

Status Aggregator::run() {
  if (!impl_->client) return Status::failed_precondition("Aggregator::run: not started");
  // Register above once a round's worth of clients registered here, so the tier registers the
  // examples they hold.
  while (impl_->server->registered().clients < impl_->opts.round.min_clients) {
    if (impl_->stopping.load() || impl_->server->finished()) {
      impl_->server->shutdown();
      return Status::cancelled("aggregator: stopped before its clients registered");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Result<ClientStats> up = impl_->client->run();
  // The upstream run is over (or the tier stops): its clients are told DONE.
  impl_->server->request_stop(up.ok() ? "upstream run over" : "upstream failed");
  Status served = impl_->server->wait();
  if (!up.ok()) return up.error().with_context("upstream " + impl_->opts.upstream.server);
  return served;
}

void Aggregator::stop() {
  impl_->stopping.store(true);
  if (impl_->client) impl_->client->stop();
  if (impl_->server) impl_->server->request_stop("stopped");
}

}  // namespace cohort::deploy
