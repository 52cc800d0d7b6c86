#include "sim/training_job.h"

#include <string>

#include "cohort/core/fragments.h"
#include "cohort/core/ops.h"
#include "cohort/core/rng.h"
#include "cohort/runtime/privacy.h"

namespace cohort::sim {

Result<Trained> run_training_job(TrainingJob& job, Trainer& trainer,
                                 const TrainingJobContext& ctx) {
  if (job.cancel->load()) return Status::cancelled("simulation stopped");
  if (job.abandoned->load()) return Status::cancelled("task lost");
  Trained t;
  trainer.set_optimizer_state(job.optimizer_state ? &*job.optimizer_state : nullptr);
  Result<TrainResult> trained =
      job.stream ? train_streaming(trainer,
                                   Task{.client = job.client,
                                        .model = job.model,
                                        .local_steps = job.steps,
                                        .config = job.config},
                                   *job.stream, *job.shard, ctx.training, job.seed, *job.kept)
                 : trainer.train(*job.model, *job.shard, job.steps, ctx.training, job.config,
                                 job.seed, job.grad_correction.get());
  trainer.set_optimizer_state(nullptr);
  job.grad_correction.reset();
  COHORT_ASSIGN_OR_RETURN(t.result, std::move(trained));
  t.optimizer_state = std::move(job.optimizer_state);
  t.kept_model = std::move(job.kept);
  t.delta_ready = job.stream.has_value();  // train_streaming returns the delta
  const codec::Chain* uplink = ctx.compression.uplink.get();
  if (!uplink && !job.attack_delta && !job.client_dp) return t;
  TrainResult& tr = t.result;
  COHORT_RETURN_IF_ERROR(job.model->check_same_layout(tr.params, "trainer output"));
  if (!job.stream) ops::sub(job.model->flat(), tr.params.flat(), tr.params.flat());
  t.delta_ready = true;
  if (job.attack_delta) {
    COHORT_RETURN_IF_ERROR(
        ctx.adversary.rewrite_delta(tr.params.flat(), Rng::mix_seed(job.seed, "attack")));
  }
  if (job.client_dp) {
    COHORT_RETURN_IF_ERROR(runtime::privatize_update(tr.params.flat(), job.config,
                                                     ctx.dp_client_seed,
                                                     Rng::mix_seed(job.seed, "dp"), &tr.metrics));
  }
  if (!uplink) return t;
  std::vector<float>* residual = uplink->error_feedback() ? &job.residual : nullptr;
  std::string payload;
  if (job.stream) {
    COHORT_ASSIGN_OR_RETURN(
        Fragments frags,
        Fragments::create(job.model->numel(), job.stream->fragments, job.stream->block));
    COHORT_ASSIGN_OR_RETURN(
        payload, runtime::encode_fragment_in_place(*uplink, tr.params, frags, job.stream->fragment,
                                                   job.uplink_seed, residual));
  } else {
    COHORT_ASSIGN_OR_RETURN(
        payload, runtime::encode_in_place(*uplink, tr.params, job.uplink_seed, residual));
  }
  t.payload_bytes = static_cast<int64_t>(payload.size());
  t.residual = std::move(job.residual);
  return t;
}

}  // namespace cohort::sim
