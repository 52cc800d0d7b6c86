// AsyncStrategy: the base of the asynchronous strategies (FedAsync, FedBuff, Async Local-SGD).
//
// Every idle client gets a task from the current global model as soon as it is idle (at most
// `max_concurrency` tasks outstanding when set; a freed slot goes to an idle client drawn at
// random with the host's rng). Each arriving update is validated, its staleness
// τ = version() - base_version computed, and handed to apply(), which may commit. Updates
// staler than `max_staleness` (when >= 0) are rejected with FailedPrecondition. A lost task just
// frees its slot. The base keeps, per outstanding task, the model it started from, so
// model-mixing rules (FedAsync's x_new = x_τ - Δ) can use x_τ.
#pragma once

#include <map>
#include <memory>

#include "cohort/strategy/registry.h"
#include "cohort/strategy/strategy_base.h"

namespace cohort {

struct AsyncOptions {
  // Tasks outstanding at once; 0 = every idle client trains. Default 0.
  int64_t max_concurrency = 0;
  // Reject updates with staleness above this; -1 = no limit. Default -1.
  int64_t max_staleness = -1;
  // Reads `max_concurrency` (>= 0) and `max_staleness` (>= -1).
  static AsyncOptions read(StrategyParams& p);
};

class AsyncStrategy : public StrategyBase {
 public:
  explicit AsyncStrategy(AsyncOptions options) : async_(options) {}

  void on_client_idle(ClientId id) override;
  // Not while every slot (max_concurrency) is taken.
  bool wants_idle_clients() const override {
    return async_.max_concurrency <= 0 || outstanding() < async_.max_concurrency;
  }
  Status on_update(Update update) override;
  void on_task_lost(ClientId id, ModelVersion version) override;

  int64_t outstanding() const { return static_cast<int64_t>(in_flight_.size()); }

 protected:
  // Folds one validated update (staleness τ >= 0) into the model; may call commit().
  virtual Status apply(const Update& update, int64_t staleness) = 0;
  // The task for an idle client. Default: the global model, default_local_steps().
  virtual Task make_task(ClientId id);
  // The model the update's task started from (x_τ). REQUIRES: inside apply().
  const ArrayRecord& base_model() const { return *current_base_; }

  // Checkpoints: the base state and which clients have a task in flight ("in_flight"; their
  // models are not saved: the runtime reports those tasks lost after a restore).
  Status io_async_state(StateIO& io);

  AsyncOptions async_;

 private:
  void dispatch_to(ClientId id);
  void fill_slots();

  std::map<ClientId, std::shared_ptr<const ArrayRecord>> in_flight_;
  std::shared_ptr<const ArrayRecord> current_base_;
};

}  // namespace cohort
