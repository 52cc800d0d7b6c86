#include "cohort/runner/serving.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "cohort/core/parallel.h"
#include "cohort/data/data_config.h"
#include "cohort/runner/runner.h"
#include "cohort/runtime/evaluator.h"
#include "cohort/runtime/model_file.h"
#include "cohort/torch/torch_trainer.h"

namespace cohort {

Result<ServingSetup> prepare_serving(const SimulationConfig& cfg, const DeployConfig& deploy,
                                     const std::string& out_dir) {
  if (!cfg.strategies.empty()) {
    return Status::invalid_argument(cfg.source.file +
                                    ": strategies: lists several strategies; a server runs one "
                                    "strategy: section");
  }
  if (cfg.attack.kind != "none") {
    return Status::invalid_argument(
        "attack: simulated attackers exist only in `cohort simulate` / `cohort compare`; in a "
        "deployment an attacking client is a `cohort join --attack KIND` process");
  }
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const Dataset> test,
                          load_split(cfg.data, "test", cfg.run.seed));
  // Evaluation runs like the simulator's (runtime/evaluator.h): the test set in chunks over a
  // pool of single-threaded trainers, run.threads of them (0 = all cores).
  libtorch::set_torch_threads(1);
  COHORT_ASSIGN_OR_RETURN(TrainerFactory factory, trainer_factory(cfg, *test));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, factory());
  ServingSetup s;
  COHORT_ASSIGN_OR_RETURN(
      s.initial, initial_model(*trainer, cfg.model.init, Rng::mix_seed(cfg.run.seed, "init")));

  deploy::ServerOptions& o = s.options;
  static_cast<DeployConfig&>(o) = deploy;
  o.max_rounds = cfg.run.rounds;
  o.out_dir = out_dir;
  o.seed = cfg.run.seed;
  o.training = cfg.training;
  o.eval_every = cfg.run.eval_every;
  o.target_accuracy = cfg.run.target_accuracy;
  o.model_targets = model_targets(cfg);
  o.admission = cfg.admission;
  o.compression = cfg.compression;
  o.robust = cfg.robust;
  o.contribution = cfg.contribution;
  o.privacy = cfg.privacy;
  o.start_fields = {{"config", to_json(cfg)}, {"deploy", to_json(deploy)}};
  if (deploy.server_eval) {
    struct EvalPool {
      std::vector<std::unique_ptr<Trainer>> trainers;
      std::unique_ptr<ThreadPool> pool;
      std::unique_ptr<Evaluator> evaluator;
    };
    auto ev = std::make_shared<EvalPool>();
    const size_t n = cfg.run.threads > 0 ? static_cast<size_t>(cfg.run.threads)
                                         : std::max(1u, std::thread::hardware_concurrency());
    ev->trainers.push_back(std::move(trainer));
    while (ev->trainers.size() < n) {
      COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> t, factory());
      ev->trainers.push_back(std::move(t));
    }
    ev->pool = std::make_unique<ThreadPool>(n);
    std::vector<Trainer*> workers;
    for (auto& t : ev->trainers) workers.push_back(t.get());
    ev->evaluator =
        std::make_unique<Evaluator>(ev->pool.get(), std::move(workers), Shard::all(test));
    o.evaluate = [ev](const ArrayRecord& m) -> Result<EvalResult> {
      try {
        COHORT_ASSIGN_OR_RETURN(Evaluation e, ev->evaluator->evaluate(m));
        return e.central;
      } catch (const std::exception& e) {
        return Status::internal(std::string("evaluation: ") + e.what());
      }
    };
  }
  return s;
}

}  // namespace cohort
