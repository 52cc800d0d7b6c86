// MultiTrainer: several models trained in one run on the same clients' data (`models:` in a
// config; FedAST, docs/strategies.md). The run's model is the models' arrays end to end, each
// named "<model>/<array>" (core/model_parts.h). A task trains the model its config names
// (task key "model", strategy/task_config.h) and leaves the others as they were, or, without
// the key, every model in turn; evaluate() reports each model (EvalResult::parts) and their
// means. Each model has a trainer of its own, from its own factory.
//
// Thread safety: as any Trainer (one thread at a time).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cohort/core/model_parts.h"
#include "cohort/trainer/trainer.h"

namespace cohort {

class MultiTrainer final : public Trainer {
 public:
  // InvalidArgument: fewer than one model, or a name that is empty, holds a '/' or repeats.
  static Result<std::unique_ptr<MultiTrainer>> create(
      std::vector<std::pair<std::string, TrainerFactory>> models);
  // A factory of MultiTrainers over these models' factories (checked once, here).
  static Result<TrainerFactory> factory(std::vector<std::pair<std::string, TrainerFactory>> models);

  Result<ArrayRecord> init_params(uint64_t seed) override;
  Result<TrainResult> train(const ArrayRecord& start, const Shard& shard, int64_t steps,
                            const TrainConfig& config, const ConfigRecord& task_config,
                            uint64_t seed, const ArrayRecord* grad_correction) override;
  Result<EvalResult> evaluate(const ArrayRecord& params, const Shard& shard) override;

 private:
  struct Model {
    std::string name;
    std::unique_ptr<Trainer> trainer;
  };
  explicit MultiTrainer(std::vector<Model> models) : models_(std::move(models)) {}
  // The parts of `layout`, checked against the models (cached for the last layout seen).
  Result<std::vector<ModelPart>> parts_of(const std::shared_ptr<const ArrayLayout>& layout);
  // Model `k` of `full` (after parts_of) as a record of its own.
  Result<ArrayRecord> slice(const ArrayRecord& full, size_t k);

  std::vector<Model> models_;
  std::shared_ptr<const ArrayLayout> cached_layout_;
  std::vector<ModelPart> cached_parts_;
  std::vector<std::shared_ptr<const ArrayLayout>> cached_sub_layouts_;
};

}  // namespace cohort
