// Aggregator: the middle tier of a hierarchical deployment (`cohort serve --upstream`;
// docs/design/hierarchy.md), after LIFL's hierarchical aggregation.
//
//   top server  <--(one client: a Client, token, TLS)--  Aggregator  <--(Fleet: tokens, TLS)--
//                                                                      its own clients
//
// Downstream it is a Server (the same Fleet service, limits, admission, codecs and robust
// rules as `cohort serve`) hosting the Relay strategy (strategy/relay.h); upstream it is a
// Client whose "trainer" is the tier below: every task from above becomes a round of the
// tier's clients, and their example-weighted mean delta goes up as ONE update whose weight
// (num_examples) is the round's examples. The top server sees each aggregator as one weighted
// client, receives one upload per aggregator and task instead of one per client, and
// FedAvg above aggregators equals flat FedAvg. Async strategies above (FedAsync, FedBuff)
// receive each aggregator's round as one buffered update.
//
// What does not pass through (the upstream's tasks are refused with an error naming it):
// server state (SCAFFOLD), secure aggregation, client-side DP, Streaming DiLoCo. The tier
// keeps no checkpoints: a restarted aggregator registers again and the server above reissues
// or loses its task. A killed aggregator loses its subtree's contribution to the tasks it
// held; the rest of the tree goes on.
//
// Thread safety: start() then run() from one thread; stop() from any thread.
#pragma once

#include <atomic>
#include <memory>

#include "cohort/core/status.h"
#include "cohort/deploy/client.h"
#include "cohort/deploy/server.h"
#include "cohort/strategy/round_strategy.h"

namespace cohort::deploy {

struct AggregatorOptions {
  // The tier's own server (its clients' tokens, TLS, limits, admission, codecs, robust rules).
  // Its budget is the upstream run's: run.rounds does not apply; max_wall_s still does.
  ServerOptions server;
  // How the tier reaches the server above: address, its token, TLS, backoff. `relay` is set
  // by the aggregator; `training`, `fault` and `attack` do not apply.
  ClientOptions upstream;
  // The round every upstream task becomes: how many of the tier's clients must poll before it
  // starts (min_clients), what fraction of those polling it samples, and a deadline after which
  // it forwards what arrived (0 = wait for every sampled client; a lost client is not waited
  // for).
  RoundOptions round;
};

class Aggregator {
 public:
  // `initial`: a model of the run's layout (the server above checks it at registration).
  Aggregator(AggregatorOptions options, ArrayRecord initial);
  ~Aggregator();
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // Starts the tier's server and prepares the upstream client; returns the port the tier
  // listens on. InvalidArgument for what a tier cannot do (checkpoints, differential privacy,
  // contribution estimates) or bad round options; the errors of Server::start and
  // Client::create otherwise.
  Result<int> start();
  // Serves the upstream's tasks until its run ends (OK; the tier's clients are then told the
  // run is over), or fails with the upstream client's error (token rejected, layout differs,
  // unreachable for max_disconnected_s, a task that cannot pass through) or the tier's
  // server's. Cancelled after stop().
  Status run();
  // Ends run() soon (thread-safe).
  void stop();
  // Upstream tasks answered with a partial aggregate so far (thread-safe).
  int64_t jobs_done() const { return jobs_done_.load(); }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<int64_t> jobs_done_{0};
};

}  // namespace cohort::deploy
