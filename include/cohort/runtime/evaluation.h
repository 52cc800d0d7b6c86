// What one evaluation of the global model found: the server-side test set and, when clients
// hold out data, the federated view over their held-out splits.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "cohort/core/metrics.h"
#include "cohort/trainer/trainer.h"

namespace cohort {

// Federated evaluation over clients' held-out splits.
struct FederatedEval {
  double accuracy = 0.0;          // example-weighted mean over clients
  double loss = 0.0;              // example-weighted mean over clients
  double worst10_accuracy = 0.0;  // mean accuracy of the worst 10% of clients (at least one)
};

// Summarises per-client results (clients with no examples are skipped). Ties in the worst-10%
// selection do not matter: only accuracies are averaged.
FederatedEval federated_summary(std::span<const EvalResult> per_client);

struct Evaluation {
  EvalResult central;                // the server's test set
  std::optional<FederatedEval> fed;  // set when some client holds out data
  int64_t fed_clients = 0;           // clients that held out data
  // The "eval" event's figures: accuracy, loss, the federated view ("fed_*") and, with
  // several models, "models": {name: {accuracy, loss, reached_target}}.
  void add_to(Json& event) const;
};

}  // namespace cohort
