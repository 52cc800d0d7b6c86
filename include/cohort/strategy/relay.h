// Relay: the strategy of a middle tier in a hierarchical deployment (`cohort serve --upstream`,
// docs/design/hierarchy.md). The tier is a client of the server above it and a server to its
// own clients. Each task it gets from above becomes one job here: the upstream's model is
// installed as this tier's global model, a round of its own clients trains from it (the
// task's settings forwarded), and the round's updates are folded into one partial aggregate
// -- the example-weighted mean of their deltas and the sum of their example counts -- that the
// tier pushes upstream as one update. The server above thus sees the tier as one client whose
// weight is its subtree's examples: a FedAvg above a relay computes exactly the flat FedAvg
// of the clients below (sum_a W_a mean_a / sum_a W_a = sum_i n_i delta_i / sum_i n_i).
//
// The round follows RoundStrategy (min_clients, fraction, round_deadline_s; robust rules
// apply to its group); a round in which no update arrived is retried with the clients then
// idle. The relay never changes the model itself: its versions are the upstream's models in
// the order the jobs came. Like every strategy it does no I/O: the host hands it jobs
// (begin) and learns the result through the callback, on its own event thread.
//
// Thread safety: as every strategy, driven from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cohort/strategy/round_strategy.h"

namespace cohort {

// One task from upstream.
struct RelayJob {
  std::shared_ptr<const ArrayRecord> model;  // the upstream's model (this tier's layout)
  int64_t local_steps = 0;                   // steps per client task; 0 = each client's default
  ConfigRecord config;                       // forwarded to every client's task
};

// What a job produced: the one update the tier sends upstream.
struct PartialAggregate {
  ArrayRecord mean_delta;    // sum_i n_i delta_i / sum_i n_i over the round's accepted updates
  int64_t num_examples = 0;  // sum_i n_i
  int64_t updates = 0;       // how many client updates it holds
  int64_t local_steps = 0;   // example-weighted mean of the clients' steps, rounded, >= 1
  MetricRecord metrics;      // example-weighted means of the clients' metrics
};

using RelayDone = std::function<void(Result<PartialAggregate>)>;

class Relay final : public RoundStrategy {
 public:
  explicit Relay(RoundOptions options);
  std::string name() const override { return "relay"; }
  bool accepts_streamed_delta() const override { return true; }

  // Starts `job` (FailedPrecondition while another one is in progress; InvalidArgument for a
  // model of another layout). The model becomes the next version as soon as no round of an
  // earlier job is open; `done` is called once, from a later strategy event, with the partial
  // aggregate -- unless cancel() comes first.
  Status begin(RelayJob job, RelayDone done);
  // Forgets the job in progress (the upstream gave up on it): `done` is never called; updates
  // of its round still arriving are folded and dropped.
  void cancel();
  bool busy() const { return job_.has_value(); }
  int64_t jobs_done() const { return jobs_done_; }

 protected:
  std::vector<Task> configure_train(int64_t round, const IdleClients& idle) override;
  void begin_round(int64_t round) override;
  Status accumulate(const Update& update) override;
  Result<std::optional<ArrayRecord>> aggregate_train(const RoundReport& report) override;

 private:
  struct Active {
    RelayJob job;
    RelayDone done;
    bool installed = false;  // its model is the current version
  };
  std::optional<Active> job_;
  bool round_for_job_ = false;  // the open round trains job_ (not a cancelled one)
  ArrayRecord sum_;
  double weight_ = 0.0;
  double steps_ = 0.0;
  std::map<std::string, std::pair<double, double>> metrics_;  // key -> (sum n m, sum n)
  int64_t jobs_done_ = 0;
};

}  // namespace cohort
