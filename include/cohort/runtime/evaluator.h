// Evaluator: how both runtimes evaluate the global model. The server's test set is cut into
// fixed chunks of 1,000 examples and evaluated, together with every client's held-out split
// (federated evaluation), on a thread pool with one Trainer per worker; the chunking, not the
// thread count, fixes the summation order, so results are identical for any number of threads.
// Evaluation jobs jump the pool's queue (they run before queued training jobs).
//
// Measured against a plain PyTorch evaluation loop in `cohort bench eval` (BENCHMARKS.md).
//
// Thread safety: evaluate() is called from one thread at a time; the pool and the trainers
// must not be used by anything else while it runs, except for other pool jobs.
#pragma once

#include <memory>
#include <vector>

#include "cohort/core/parallel.h"
#include "cohort/core/rng.h"
#include "cohort/runtime/evaluation.h"
#include "cohort/trainer/trainer.h"

namespace cohort {

// A seeded sample of `max_examples` examples of `test` (the whole of it when smaller), in index
// order: the server's validation split for contribution estimates.
Shard validation_sample(const Shard& test, int64_t max_examples, Rng rng);

class Evaluator {
 public:
  // `trainers[w]` is used by pool worker w (trainers.size() >= pool->size()). `holdouts` are
  // the clients' held-out shards (empty ones are skipped); with none, no federated evaluation.
  Evaluator(ThreadPool* pool, std::vector<Trainer*> trainers, Shard test,
            std::vector<const Shard*> holdouts = {});

  // Central test-set loss and accuracy (example-weighted over the chunks) and, with held-out
  // shards, the federated summary. The first failing chunk's error, with context.
  Result<Evaluation> evaluate(const ArrayRecord& model);

  static constexpr int64_t kChunk = 1000;

 private:
  ThreadPool* pool_;
  std::vector<Trainer*> trainers_;
  std::vector<Shard> chunks_;
  std::vector<const Shard*> holdouts_;
};

}  // namespace cohort
