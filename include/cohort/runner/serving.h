// What a deployment server is built from: the run's config (strategy, training, model, data
// for the server's test split, run:) and the deployment's own settings (DeployConfig), as
// `cohort serve` and the Python module's cohort.serve() both need it. Written once here so the
// two serve the same run from the same files.
#pragma once

#include <memory>
#include <string>

#include "cohort/config/config.h"
#include "cohort/deploy/server.h"

namespace cohort {

struct ServingSetup {
  deploy::ServerOptions options;
  // The version-0 model: the same as `cohort simulate` with this seed.
  ArrayRecord initial;
};

// Builds the server's options (budget, evaluation on the test split over run.threads
// single-threaded trainers, admission, codecs, robust rules, privacy, the start event's config
// echo) and the initial model. InvalidArgument for what a deployment cannot do (a strategies:
// list, simulated attackers), errors of the data or the model naming them.
Result<ServingSetup> prepare_serving(const SimulationConfig& cfg, const DeployConfig& deploy,
                                     const std::string& out_dir);

}  // namespace cohort
