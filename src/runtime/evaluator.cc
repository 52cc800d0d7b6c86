#include "cohort/runtime/evaluator.h"

#include <algorithm>
#include <cmath>
#include <future>

namespace cohort {

Shard validation_sample(const Shard& test, int64_t max_examples, Rng rng) {
  const int64_t n = test.size();
  const int64_t k = std::min(n, max_examples);
  Shard validation{test.data, {}};
  for (uint64_t p :
       rng.sample_without_replacement(static_cast<uint64_t>(n), static_cast<uint64_t>(k))) {
    validation.indices.push_back(test.indices[p]);
  }
  std::sort(validation.indices.begin(), validation.indices.end());
  return validation;
}

Evaluator::Evaluator(ThreadPool* pool, std::vector<Trainer*> trainers, Shard test,
                     std::vector<const Shard*> holdouts)
    : pool_(pool), trainers_(std::move(trainers)) {
  const auto& idx = test.indices;
  for (size_t lo = 0; lo < idx.size(); lo += kChunk) {
    Shard s;
    s.data = test.data;
    s.indices.assign(idx.begin() + static_cast<std::ptrdiff_t>(lo),
                     idx.begin() + static_cast<std::ptrdiff_t>(std::min(idx.size(), lo + kChunk)));
    chunks_.push_back(std::move(s));
  }
  for (const Shard* h : holdouts) {
    if (h != nullptr && h->size() > 0) holdouts_.push_back(h);
  }
}

Result<Evaluation> Evaluator::evaluate(const ArrayRecord& model) {
  std::vector<const Shard*> shards;
  for (const Shard& chunk : chunks_) shards.push_back(&chunk);
  const size_t n_central = shards.size();
  shards.insert(shards.end(), holdouts_.begin(), holdouts_.end());
  std::vector<std::future<Result<EvalResult>>> parts;
  parts.reserve(shards.size());
  for (const Shard* shard : shards) {
    parts.push_back(pool_->submit(
        // `model` outlives the jobs: every one is waited for below.
        [this, &model, shard](size_t worker) {
          return trainers_[worker]->evaluate(model, *shard);
        },
        1e300));
  }
  std::vector<EvalResult> results;
  Status first_error;
  for (auto& p : parts) {
    Result<EvalResult> r = p.get();
    if (!r.ok()) {
      if (first_error.ok()) first_error = r.error().with_context("evaluating the global model");
      results.emplace_back();
      continue;
    }
    results.push_back(*r);
  }
  COHORT_RETURN_IF_ERROR(first_error);
  double loss_sum = 0;
  int64_t correct = 0, total = 0;
  for (size_t i = 0; i < n_central; ++i) {
    const EvalResult& r = results[i];
    loss_sum += r.loss * static_cast<double>(r.num_examples);
    correct += std::llround(r.accuracy * static_cast<double>(r.num_examples));
    total += r.num_examples;
  }
  Evaluation e;
  e.central.num_examples = total;
  e.central.loss = total > 0 ? loss_sum / static_cast<double>(total) : 0.0;
  e.central.accuracy = total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
  // Several models (MultiTrainer): each model's figures over the chunks the same way, and the
  // means of those.
  const size_t n_parts = n_central > 0 && total > 0 ? results[0].parts.size() : 0;
  for (size_t k = 0; k < n_parts; ++k) {
    PartEval merged{.name = results[0].parts[k].name};
    int64_t part_correct = 0;
    for (size_t i = 0; i < n_central; ++i) {
      if (results[i].parts.size() != n_parts) return Status::internal("evaluation: models differ");
      const auto n = static_cast<double>(results[i].num_examples);
      merged.loss += results[i].parts[k].loss * n / static_cast<double>(total);
      part_correct += std::llround(results[i].parts[k].accuracy * n);
    }
    merged.accuracy = static_cast<double>(part_correct) / static_cast<double>(total);
    e.central.parts.push_back(merged);
  }
  if (n_parts > 0) {
    e.central.loss = 0;
    e.central.accuracy = 0;
    for (const PartEval& p : e.central.parts) {
      e.central.loss += p.loss / static_cast<double>(n_parts);
      e.central.accuracy += p.accuracy / static_cast<double>(n_parts);
    }
  }
  if (!holdouts_.empty()) {
    e.fed = federated_summary(std::span<const EvalResult>(results).subspan(n_central));
    e.fed_clients = static_cast<int64_t>(holdouts_.size());
  }
  return e;
}

}  // namespace cohort
