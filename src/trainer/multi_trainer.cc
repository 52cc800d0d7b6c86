#include "cohort/trainer/multi_trainer.h"

#include <algorithm>
#include <set>

#include "cohort/core/rng.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

Result<std::unique_ptr<MultiTrainer>> MultiTrainer::create(
    std::vector<std::pair<std::string, TrainerFactory>> models) {
  if (models.empty()) return Status::invalid_argument("models: at least one model is needed");
  std::set<std::string> names;
  std::vector<Model> built;
  for (auto& [name, make] : models) {
    if (name.empty() || name.find('/') != std::string::npos) {
      return Status::invalid_argument("models: '" + name +
                                      "' cannot name a model (non-empty, no '/')");
    }
    if (!names.insert(name).second) {
      return Status::invalid_argument("models: '" + name + "' names two models");
    }
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> t, make());
    built.push_back(Model{name, std::move(t)});
  }
  return std::unique_ptr<MultiTrainer>(new MultiTrainer(std::move(built)));
}

Result<TrainerFactory> MultiTrainer::factory(
    std::vector<std::pair<std::string, TrainerFactory>> models) {
  COHORT_RETURN_IF_ERROR(create(models).status());
  return TrainerFactory([models]() -> Result<std::unique_ptr<Trainer>> {
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<MultiTrainer> t, create(models));
    return std::unique_ptr<Trainer>(std::move(t));
  });
}

Result<ArrayRecord> MultiTrainer::init_params(uint64_t seed) {
  std::vector<ArrayRecord> inits;
  std::vector<ArraySpec> specs;
  for (size_t k = 0; k < models_.size(); ++k) {
    // The first model keeps the run's seed: a run of one model in `models:` starts where the
    // same model under `model:` would.
    const uint64_t s = k == 0 ? seed : Rng::mix_seed(seed, "model", static_cast<uint64_t>(k));
    COHORT_ASSIGN_OR_RETURN(ArrayRecord r, models_[k].trainer->init_params(s));
    for (ArraySpec spec : r.layout()->specs()) {
      spec.name = models_[k].name + "/" + spec.name;
      specs.push_back(std::move(spec));
    }
    inits.push_back(std::move(r));
  }
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const ArrayLayout> layout,
                          ArrayLayout::create(std::move(specs)));
  ArrayRecord all(layout);
  int64_t at = 0;
  for (const ArrayRecord& r : inits) {
    std::copy(r.flat().begin(), r.flat().end(), all.flat().begin() + at);
    at += r.numel();
  }
  return all;
}

Result<std::vector<ModelPart>> MultiTrainer::parts_of(
    const std::shared_ptr<const ArrayLayout>& layout) {
  if (layout == cached_layout_) return cached_parts_;
  COHORT_ASSIGN_OR_RETURN(std::vector<ModelPart> parts, model_parts(*layout));
  if (parts.size() != models_.size()) {
    return Status::invalid_argument("the model holds " + std::to_string(parts.size()) +
                                    " models, the trainer " + std::to_string(models_.size()));
  }
  std::vector<std::shared_ptr<const ArrayLayout>> subs;
  for (size_t k = 0; k < parts.size(); ++k) {
    if (parts[k].name != models_[k].name) {
      return Status::invalid_argument("model " + std::to_string(k) + " is '" + parts[k].name +
                                      "', the trainer's is '" + models_[k].name + "'");
    }
    COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const ArrayLayout> sub, part_layout(*layout, parts[k]));
    subs.push_back(std::move(sub));
  }
  cached_layout_ = layout;
  cached_parts_ = parts;
  cached_sub_layouts_ = std::move(subs);
  return parts;
}

Result<ArrayRecord> MultiTrainer::slice(const ArrayRecord& full, size_t k) {
  const ModelPart& part = cached_parts_.at(k);
  ArrayRecord r(cached_sub_layouts_.at(k));
  std::copy(full.flat().begin() + part.begin, full.flat().begin() + part.end, r.flat().begin());
  return r;
}

Result<TrainResult> MultiTrainer::train(const ArrayRecord& start, const Shard& shard,
                                        int64_t steps, const TrainConfig& config,
                                        const ConfigRecord& task_config, uint64_t seed,
                                        const ArrayRecord* grad_correction) {
  if (optimizer_state() != nullptr) {
    return Status::invalid_argument(
        "models: several models cannot keep an optimizer state between tasks (DiLoCo's inner "
        "optimizer); train one model");
  }
  COHORT_RETURN_IF_ERROR(parts_of(start.layout()).status());
  COHORT_ASSIGN_OR_RETURN(std::optional<int64_t> which, task_model(task_config));
  if (which && *which >= static_cast<int64_t>(models_.size())) {
    return Status::invalid_argument("task config model: " + std::to_string(*which) +
                                    " is not one of the " + std::to_string(models_.size()) +
                                    " models");
  }
  TrainResult out;
  out.params = start.clone();
  double loss = 0.0;
  int trained = 0;
  for (size_t k = 0; k < models_.size(); ++k) {
    if (which && static_cast<size_t>(*which) != k) continue;
    const ModelPart& part = cached_parts_[k];
    COHORT_ASSIGN_OR_RETURN(ArrayRecord sub, slice(start, k));
    std::optional<ArrayRecord> corr;
    if (grad_correction != nullptr) {
      COHORT_ASSIGN_OR_RETURN(corr.emplace(), slice(*grad_correction, k));
    }
    COHORT_ASSIGN_OR_RETURN(
        TrainResult r, models_[k].trainer->train(sub, shard, steps, config, task_config, seed,
                                                 corr ? &*corr : nullptr));
    std::copy(r.params.flat().begin(), r.params.flat().end(), out.params.flat().begin() + part.begin);
    out.num_examples = r.num_examples;
    out.steps = r.steps;
    for (const auto& [key, value] : r.metrics) out.metrics[models_[k].name + "/" + key] = value;
    if (auto it = r.metrics.find("train_loss"); it != r.metrics.end()) loss += it->second;
    ++trained;
  }
  out.metrics["train_loss"] = loss / std::max(1, trained);
  return out;
}

Result<EvalResult> MultiTrainer::evaluate(const ArrayRecord& params, const Shard& shard) {
  COHORT_RETURN_IF_ERROR(parts_of(params.layout()).status());
  EvalResult all;
  for (size_t k = 0; k < models_.size(); ++k) {
    COHORT_ASSIGN_OR_RETURN(ArrayRecord sub, slice(params, k));
    COHORT_ASSIGN_OR_RETURN(EvalResult r, models_[k].trainer->evaluate(sub, shard));
    all.parts.push_back(PartEval{.name = models_[k].name, .loss = r.loss, .accuracy = r.accuracy});
    all.loss += r.loss / static_cast<double>(models_.size());
    all.accuracy += r.accuracy / static_cast<double>(models_.size());
    all.num_examples = r.num_examples;
  }
  return all;
}

}  // namespace cohort
