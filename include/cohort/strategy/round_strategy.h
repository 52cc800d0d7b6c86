// RoundStrategy: the round-shaped base of every synchronous strategy (FedAvg family,
// SCAFFOLD, FedNova), written in Flower's vocabulary and adapted to the event contract.
//
// Round lifecycle (see docs/design/architecture.md):
//   idle   --(>= min_clients idle)-->  configure_train() picks clients, tasks dispatched,
//                                      deadline timer set if round_deadline_s > 0
//   open   --(update of this round)--> accumulate() folds it in (streaming, no copy kept)
//   open   --(all replies in | task lost | deadline)--> aggregate_train() -> commit
//   closed --> next round starts as soon as enough clients are idle
// Updates of a closed round ("late") are rejected with FailedPrecondition and counted.
// A round in which no update arrived keeps the model (no commit) and is reported.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "cohort/strategy/lr_schedule.h"
#include "cohort/strategy/strategy_base.h"

namespace cohort {

struct RoundOptions {
  // Fraction of the idle clients sampled per round (Flower: fraction_train). Default 1.0.
  double fraction = 1.0;
  // A round starts only when this many clients are idle, and samples at least this many.
  int64_t min_clients = 1;
  // Close the round this many seconds (runtime clock) after it opened, with the updates that
  // arrived; 0 = wait for every sampled client. Default 0.
  double round_deadline_s = 0.0;
  // Scales the learning rate of each round's tasks (task config "lr_scale"); constant by
  // default (lr_schedule.h).
  LrSchedule lr_schedule;
};

// Totals of one round, handed to aggregate_train().
struct RoundReport {
  int64_t round = 0;
  int64_t sampled = 0;
  int64_t received = 0;
  int64_t lost = 0;       // tasks that never came back
  int64_t timed_out = 0;  // still outstanding at the deadline
  int64_t rejected = 0;   // replies that failed validation
  int64_t examples = 0;   // sum of num_examples over received updates
};

class RoundStrategy : public StrategyBase {
 public:
  explicit RoundStrategy(RoundOptions options);

  void on_client_idle(ClientId id) override;
  // While a round is open an idle client changes nothing until the round closes.
  bool wants_idle_clients() const override { return !open_; }
  Status on_update(Update update) override;
  void on_task_lost(ClientId id, ModelVersion version) override;
  void on_timer(TimerId id) override;
  // A round needs min_clients idle clients: fewer clients in all would stall the run.
  Status check_population(size_t num_clients) const override;

  int64_t current_round() const { return round_; }
  bool round_open() const { return open_; }
  const RoundOptions& round_options() const { return options_; }
  // The learning-rate factor of `round` (RoundOptions::lr_schedule; 1 without a schedule).
  double lr_factor(int64_t round) const { return options_.lr_schedule.factor(round); }
  // Updates rejected because their round had closed.
  int64_t late_updates() const { return late_; }

 protected:
  // Chooses the clients of `round` among `idle` (ascending ids) and what each trains.
  // Default: sample max(min_clients, ceil(fraction * |idle|)) clients uniformly without
  // replacement with the host's rng, each training default_local_steps() from the global
  // model. Returning no tasks skips the round until more clients are idle.
  virtual std::vector<Task> configure_train(int64_t round, const IdleClients& idle);
  // Whether the lr schedule scales the tasks' learning rate (task config "lr_scale", set on
  // every task configure_train returns); false for a strategy that applies lr_factor() to a
  // step of its own instead (DiLoCo's lr_schedule_target: outer).
  virtual bool lr_schedule_scales_tasks() const { return true; }
  // Clears the running aggregate at the start of a round.
  virtual void begin_round(int64_t round) = 0;
  // Folds one validated update into the running aggregate. An error rejects the update.
  virtual Status accumulate(const Update& update) = 0;
  // Produces the next global model from the running aggregate, or std::nullopt to keep the
  // current one. Called only when report.received > 0.
  virtual Result<std::optional<ArrayRecord>> aggregate_train(const RoundReport& report) = 0;

  // A round's group: the clients configure_train samples when every client is idle.
  std::optional<int64_t> group_size(size_t num_clients) const override;
  // Builds a task for `client` from the current global model.
  Task make_task(ClientId client) const;

  // Checkpoints: the base state plus the round (its counter, whether it is open, the clients
  // it waits for, its report so far, its deadline timer). Subclasses add their aggregate.
  Status io_round_state(StateIO& io);

  // Starts a round when none is open and enough clients are idle (configure_train decides
  // who trains). A subclass whose rounds wait for something besides idle clients (the relay's
  // jobs) calls it when that arrives.
  void maybe_start_round();

 private:
  void close_round();

  RoundOptions options_;
  int64_t round_ = 0;
  bool open_ = false;
  std::set<ClientId> pending_;
  RoundReport report_;
  TimerId deadline_timer_ = -1;
  int64_t late_ = 0;
};

}  // namespace cohort
