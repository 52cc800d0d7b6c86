// FedAST (Askin, Sharma, Joe-Wong, Joshi, "FedAST: Federated Asynchronous Simultaneous
// Training", UAI 2024, arXiv:2406.00302; docs/strategies.md, "fedast").
//
// Several models trained at once on one client population (a config's `models:`; the run's
// model holds them end to end, core/model_parts.h). Every idle client gets a task for one model
// (task key "model"; only that model travels): the model whose share of the tasks in flight is
// furthest below its target share s_m, ties to the model given fewer tasks so far, then to
// the lower index. Each model aggregates
// asynchronously through a buffer of its own, without staleness weighting (as the paper's code):
// when `buffer_size` updates of model m are in,
//     θ_m <- θ_m - η / |B| · Σ_{δ in B} δ            (η = server_lr; a commit)
// Adaptive allocation (`adaptive`, default on): each model keeps its last `window` updates and
// their normalised variance v_m = Σ_j ||δ_j - δ̄||² / (n ||δ̄||²); every `realloc_every`
// updates the shares become proportional to v_m (a model whose updates disagree more needs more
// clients), each at least `min_share` / M. A model that reached its target accuracy (the
// runtime's evaluation, `models[i].target_accuracy`) gets no more tasks; its share goes to the
// others (until every model has reached its target, after which all train again).
// Parameters: buffer_size (3), server_lr (1.0), adaptive (true), window (8), realloc_every
// (0 = ceil(3/4 R) x the models in training, R = max_concurrency or the number of clients),
// min_share (0.2), max_concurrency, max_staleness.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "cohort/core/model_parts.h"
#include "cohort/strategy/async_strategy.h"

namespace cohort {

struct FedAstOptions {
  AsyncOptions async;
  int64_t buffer_size = 3;
  double server_lr = 1.0;
  bool adaptive = true;
  int64_t window = 8;
  int64_t realloc_every = 0;
  double min_share = 0.2;
};

class FedAst : public AsyncStrategy {
 public:
  explicit FedAst(FedAstOptions options);
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "fedast"; }

  Status on_update(Update update) override;
  void on_task_lost(ClientId id, ModelVersion version) override;
  void on_evaluation(const EvalResult& result) override;

  // For tests and reports: the target shares, tasks in flight and steps of each model.
  const std::vector<double>& shares() const { return shares_; }
  const std::vector<int64_t>& active() const { return active_; }
  const std::vector<int64_t>& steps() const { return steps_; }

 protected:
  Status on_start() override;
  // Checkpoints: the async state, and per model its buffer, counters, share, variance window,
  // whether it reached its target, and which model each task in flight trains.
  Status io_state(StateIO& io) override;
  Task make_task(ClientId id) override;
  Status apply(const Update& update, int64_t staleness) override;

 private:
  // The model an idle client trains next.
  size_t pick_model() const;
  // Recomputes the shares from the variance windows (and the models still training).
  void reallocate();
  bool training(size_t m) const;
  void release(ClientId id);

  FedAstOptions options_;
  std::vector<ModelPart> parts_;  // one part spanning everything for a single model
  bool several_ = false;          // the model holds several (tasks name theirs)
  std::vector<double> shares_;
  std::vector<int64_t> active_;
  std::vector<int64_t> dispatched_;
  std::vector<int64_t> steps_;
  std::vector<bool> reached_;
  std::vector<std::vector<float>> buffer_;
  std::vector<int64_t> count_;
  std::vector<std::deque<std::vector<float>>> window_;
  std::map<ClientId, size_t> task_model_;
  size_t current_ = 0;  // the model of the update in apply()
  int64_t since_realloc_ = 0;
};

}  // namespace cohort
