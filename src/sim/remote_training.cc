#include "cohort/sim/remote_training.h"

#include <utility>

#include "cohort/sim/simulator.h"
#include "sim/remote_job.h"

namespace cohort::sim {

namespace {

Status refuse(const std::string& key, const std::string& what, const std::string& where) {
  return Status::invalid_argument(key + ": " + what + " is not supported when training runs on " +
                                  where +
                                  " (docs/design/mpi.md); run without it or in one process");
}

}  // namespace

Status check_remote_options(const SimOptions& o, const std::string& where) {
  if (o.compression.uplink != "none") {
    return refuse("compression.uplink", "'" + o.compression.uplink + "'", where);
  }
  if (o.compression.downlink != "none") {
    return refuse("compression.downlink", "'" + o.compression.downlink + "'", where);
  }
  if (o.attack.kind != "none") return refuse("attack.kind", "'" + o.attack.kind + "'", where);
  return Status();
}

Result<RemoteResult> train_job(Trainer& trainer, const Shard& shard, const TrainConfig& training,
                               RemoteJob job) {
  RemoteResult r;
  trainer.set_optimizer_state(job.optimizer_state ? &*job.optimizer_state : nullptr);
  Result<TrainResult> trained = trainer.train(*job.model, shard, job.steps, training, job.config,
                                              job.seed, job.grad_correction.get());
  trainer.set_optimizer_state(nullptr);
  COHORT_ASSIGN_OR_RETURN(r.result, std::move(trained));
  r.optimizer_state = std::move(job.optimizer_state);
  return r;
}

Result<std::future<Result<Trained>>> submit_remote(RemoteTraining& remote, const Task& task,
                                                   RemoteTaskInputs in) {
  const std::string who = "task for client " + std::to_string(task.client);
  const std::string where = remote.name();
  if (in.streaming) {
    return refuse("strategy", "streaming_diloco's fragment tasks", where).with_context(who);
  }
  if (in.client_dp) {
    return refuse("privacy.dp", "client-side clipping and noise", where).with_context(who);
  }
  if (in.attack) return refuse("attack", "an attacker's rewritten delta", where).with_context(who);
  RemoteJob job;
  job.client = task.client;
  job.number = in.number;
  job.version = task.version;
  job.model = task.model;
  job.steps = task.local_steps;
  job.config = task.config;
  job.seed = in.seed;
  job.grad_correction = std::move(in.grad_correction);
  job.optimizer_state = std::move(in.optimizer_state);
  job.priority = in.priority;
  job.abandoned = std::move(in.abandoned);
  std::future<Result<RemoteResult>> result = remote.submit(std::move(job));
  // Deferred: converted on the loop thread when the simulator collects the result.
  return std::async(std::launch::deferred,
                    [result = std::move(result)]() mutable -> Result<Trained> {
                      Result<RemoteResult> r = result.get();
                      if (!r.ok()) return r.error();
                      Trained t;
                      t.result = std::move(r->result);
                      t.optimizer_state = std::move(r->optimizer_state);
                      return t;
                    });
}

}  // namespace cohort::sim
