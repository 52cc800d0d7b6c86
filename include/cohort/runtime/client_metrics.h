// The metrics clients report with their updates (train_loss, ...) aggregated into the
// strategies' commit events, as Flower aggregates fit metrics into a round's results: each
// commit event ("round", "buffer_flush", "group", "update", "model_step") gets
// "client_metrics": {name: example-weighted mean} over the updates accepted since the previous
// such event, the update being handled included. Written once for both runtimes (Runtime
// calls it around Strategy::on_update and in its emit()).
//
// Thread safety: none; the runtime's loop owns it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "cohort/core/metrics.h"
#include "cohort/core/types.h"

namespace cohort::runtime {

class ClientMetricsMean {
 public:
  // The update about to be handed to the strategy, weighted by its example count.
  void begin(const MetricRecord& metrics, int64_t examples);
  // The strategy's verdict on it: an accepted update not yet reported counts towards the next
  // commit event; a rejected one is dropped.
  void end(bool accepted);
  // Adds "client_metrics" to a commit event (other events are left alone) when any update
  // reported a metric since the previous one, and starts over.
  void annotate(Json& event);

 private:
  void add(const MetricRecord& m, double w);
  std::map<std::string, std::pair<double, double>> sums_;  // name -> (sum of w x, sum of w)
  MetricRecord pending_metrics_;
  double pending_weight_ = 0.0;
  bool pending_ = false;
};

}  // namespace cohort::runtime
