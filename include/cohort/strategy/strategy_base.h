// StrategyBase: the state every strategy has (host, global model, version) and the checks
// every update must pass, so each algorithm file holds only its algorithm.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cohort/strategy/group_aggregation.h"
#include "cohort/strategy/state_io.h"
#include "cohort/strategy/strategy.h"

namespace cohort {

class StrategyBase : public Strategy {
 public:
  Status start(StrategyHost* host, ArrayRecord initial) override;
  std::shared_ptr<const ArrayRecord> global_model() const override { return model_; }
  ModelVersion version() const override { return version_; }
  void on_timer(TimerId) override {}
  // Checkpoints: both walk io_state() (below) in one direction.
  Status save_state(StrategyState* out) const final;
  Status restore_state(StrategyState state) final;
  // Installs `group` when group_size() says this strategy aggregates in groups.
  Status set_group_aggregation(std::shared_ptr<GroupAggregation> group,
                               size_t num_clients) override;

 protected:
  // Called at the end of start(); strategies allocate their buffers here.
  virtual Status on_start() { return Status(); }

  // Checks every strategy applies before using an update: same tensor names and shapes as
  // the global model, finite values, at least one example and one step, and a base version
  // that exists. Returns InvalidArgument / FailedPrecondition naming the problem.
  Status validate_update(const Update& u) const;

  // Installs `next` as the global model, bumps the version and tells the host. A `next` that
  // fails the host's sanity check (StrategyHost::check_commit: not finite, or grown beyond
  // bounds) is refused instead: the model and version stay, the host is told
  // (StrategyHost::on_commit_refused) and the tracked optimizer state, which already holds
  // the update that led there, is reset to zero. Returns whether the model was committed.
  bool commit(ArrayRecord next);

  // Optimizer state (momentum, Adam moments) reset to zero when a refused commit left it
  // non-finite. Strategies register theirs in on_start().
  void track_optimizer_state(ArrayRecord* state) { optimizer_state_.push_back(state); }

  // Checkpoints: save_state and restore_state walk io_state (state_io.h) in either
  // direction. A strategy that supports checkpoints overrides io_state, starting with its base
  // class's part (io_base_state, RoundStrategy::io_round_state, ...), and lists every member
  // that changes while it runs. Default: Unimplemented.
  virtual Status io_state(StateIO& io);
  // The global model ("model") and version ("version"). Restoring checks the model's layout
  // against the running one.
  Status io_base_state(StateIO& io);

  // Aggregation groups (group_aggregation.h). A strategy that aggregates updates in groups
  // says how many one holds for `num_clients` clients (a round's sample, FedBuff's buffer), folds
  // each update with group_add(update, weight, sum) where it would fold weight * delta into its
  // running sum, and calls group_finish(sum) before using the sum. Without a GroupAggregation
  // installed these are exactly that fold and nothing. Default group_size: nullopt (each
  // update applies on its own; robust rules are refused).
  virtual std::optional<int64_t> group_size(size_t num_clients) const { return std::nullopt; }
  Status group_add(const Update& u, double w, std::span<float> sum);
  Status group_finish(std::span<float> sum);
  void group_clear();
  // Whether client `id` is excluded from tasks by its trust score (robust.trust_threshold).
  bool group_excluded(ClientId id) const;
  // Whether group_excluded can be true for any client (a trust threshold is set).
  bool group_may_exclude() const;

  StrategyHost* host_ = nullptr;
  std::shared_ptr<const ArrayRecord> model_;
  ModelVersion version_ = 0;

 private:
  std::vector<ArrayRecord*> optimizer_state_;
  std::shared_ptr<GroupAggregation> group_;
};

}  // namespace cohort
