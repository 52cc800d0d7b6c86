#include "cohort/strategy/fedasync.h"

#include "cohort/core/ops.h"

namespace cohort {

FedAsync::FedAsync(FedAsyncOptions options) : AsyncStrategy(options.async), options_(options) {}

Result<std::unique_ptr<Strategy>> FedAsync::create(StrategyParams& p) {
  FedAsyncOptions o;
  o.async = AsyncOptions::read(p);
  o.alpha = p.number("alpha", o.alpha);
  p.check(o.alpha > 0 && o.alpha <= 1, "alpha", "must be in (0, 1]", o.alpha);
  o.mixing = p.string("mixing", o.mixing);
  if (o.mixing != "model" && o.mixing != "gradient") {
    p.fail_with("mixing", "unknown value '" + o.mixing + "' (known: model, gradient)");
  }
  o.weighting = p.string("weighting", o.weighting);
  if (o.weighting != "none" && o.weighting != "uniform" && o.weighting != "examples") {
    p.fail_with("weighting",
                "unknown value '" + o.weighting + "' (known: none, uniform, examples)");
  }
  o.staleness = StalenessFn::read(p, "polynomial");
  return std::unique_ptr<Strategy>(new FedAsync(o));
}

double FedAsync::client_weight(const Update& update) const {
  if (options_.weighting == "uniform") return 1.0 / static_cast<double>(host_->num_clients());
  if (options_.weighting == "examples") {
    double total = 0;
    for (ClientId id : host_->client_ids()) {
      total += static_cast<double>(host_->client_info(id).num_examples);
    }
    return total > 0 ? static_cast<double>(update.num_examples) / total : 0.0;
  }
  return 1.0;
}

Status FedAsync::apply(const Update& update, int64_t staleness) {
  const double alpha_t = options_.alpha * options_.staleness(staleness) * client_weight(update);
  ArrayRecord next = model_->clone();
  if (options_.mixing == "gradient") {
    COHORT_RETURN_IF_ERROR(fold_delta(update, static_cast<float>(-alpha_t), next.flat()));
  } else {
    // x <- (1 - α) x + α (x_τ - Δ): two fused passes over the model.
    ops::axpby(static_cast<float>(alpha_t), base_model().flat(), static_cast<float>(1 - alpha_t),
               next.flat());
    COHORT_RETURN_IF_ERROR(fold_delta(update, static_cast<float>(-alpha_t), next.flat()));
  }
  host_->emit({{"event", "update"},
               {"strategy", name()},
               {"client", update.client},
               {"staleness", staleness},
               {"alpha", alpha_t},
               {"version", version_ + 1}});
  commit(std::move(next));
  return Status();
}

}  // namespace cohort
