#include "cohort/trainer/streaming.h"

#include <algorithm>
#include <string>

#include "cohort/core/fragments.h"
#include "cohort/core/rng.h"

namespace cohort {

bool streaming_restarts(const TaskStreaming& s, const KeptModel& kept, const ArrayRecord& model) {
  return s.merge < 0 || kept.empty() || kept.round != s.round - 1 ||
         !model.check_same_layout(kept.local, "kept model").ok() ||
         !model.check_same_layout(kept.anchor, "kept anchor").ok();
}

Result<TrainResult> train_streaming(Trainer& trainer, const Task& task, const TaskStreaming& s,
                                    const Shard& shard, const TrainConfig& training,
                                    uint64_t seed, KeptModel& kept) {
  const std::string who = "streaming task for client " + std::to_string(task.client);
  if (task.model == nullptr) return Status::invalid_argument(who + ": no model");
  if (task.server_state != nullptr) {
    return Status::invalid_argument(who + ": carries a server_state; Streaming DiLoCo keeps "
                                          "no client-state rule besides its own model");
  }
  const ArrayRecord& global = *task.model;
  COHORT_ASSIGN_OR_RETURN(Fragments frags,
                          Fragments::create(global.numel(), s.fragments, s.block));
  const int64_t steps = std::max<int64_t>(task.local_steps, 0);
  int64_t first_steps = 0;
  const bool restart = streaming_restarts(s, kept, global);
  if (restart) {
    kept.local = global.clone();
    kept.anchor = global.clone();
  } else {
    first_steps = std::min(s.overlap, steps);
  }
  TrainResult out;
  double loss_sum = 0.0;
  auto run = [&](int64_t n, uint64_t phase_seed) -> Status {
    if (n <= 0) return Status();
    COHORT_ASSIGN_OR_RETURN(TrainResult r, trainer.train(kept.local, shard, n, training,
                                                         task.config, phase_seed, nullptr));
    COHORT_RETURN_IF_ERROR(global.check_same_layout(r.params, "trainer output"));
    kept.local = std::move(r.params);
    auto loss = r.metrics.find("train_loss");
    if (loss != r.metrics.end()) loss_sum += loss->second * static_cast<double>(r.steps);
    out.steps += r.steps;
    out.num_examples = std::max(out.num_examples, r.num_examples);
    for (auto& [k, v] : r.metrics) out.metrics[k] = v;
    return Status();
  };
  // 1. The steps that overlapped the previous round's communication.
  COHORT_RETURN_IF_ERROR(run(first_steps, Rng::mix_seed(seed, "overlap")).with_context(who));
  // 2. Merge the fragment the previous round synchronised.
  if (!restart) {
    const auto a = static_cast<float>(s.alpha);
    const std::span<const float> g = global.flat();
    std::span<float> local = kept.local.flat();
    std::span<float> anchor = kept.anchor.flat();
    frags.for_each_range(s.merge, [&](int64_t first, int64_t n) {
      for (int64_t i = first; i < first + n; ++i) {
        local[i] = (1.0f - a) * g[i] + a * local[i];
        anchor[i] = g[i];
      }
    });
  }
  // 3. The rest of the task.
  COHORT_RETURN_IF_ERROR(run(steps - first_steps, seed).with_context(who));
  kept.round = s.round;
  // 4. The outer gradient of this task's fragment.
  out.params = ArrayRecord(global.layout());
  std::span<float> delta = out.params.flat();
  const std::span<const float> local = kept.local.flat();
  const std::span<const float> anchor = kept.anchor.flat();
  frags.for_each_range(s.fragment, [&](int64_t first, int64_t n) {
    for (int64_t i = first; i < first + n; ++i) delta[i] = anchor[i] - local[i];
  });
  if (out.steps > 0 && out.metrics.count("train_loss") > 0) {
    out.metrics["train_loss"] = loss_sum / static_cast<double>(out.steps);
  }
  if (out.num_examples == 0) out.num_examples = shard.size();
  return out;
}

}  // namespace cohort
