#include "cohort/runtime/robustness.h"

#include <cmath>

#include "cohort/core/ops.h"
#include "cohort/core/rng.h"
#include "cohort/runtime/runtime.h"

namespace cohort::runtime {

Status ContributionSettings::validate() const {
  COHORT_RETURN_IF_ERROR(robust::check_contribution_options(options));
  if (utility != "accuracy" && utility != "loss") {
    return Status::invalid_argument("contribution.utility: unknown '" + utility +
                                    "' (known: accuracy, loss)");
  }
  return Status();
}

RobustRuntime::RobustRuntime(std::optional<RobustOptions> robust, ContributionSettings contribution,
                             RuntimeHost& host, StrategyHost& events, uint64_t seed)
    : robust_(std::move(robust)),
      contribution_(std::move(contribution)),
      host_(host),
      events_(events),
      seed_(seed) {}

bool RobustRuntime::active() const {
  return robust_.has_value() || contribution_.enabled() || host_.rewrites_groups();
}

Status RobustRuntime::install(Strategy& strategy, size_t num_clients, GroupPrivacy* privacy) {
  COHORT_RETURN_IF_ERROR(contribution_.validate());
  COHORT_ASSIGN_OR_RETURN(
      std::unique_ptr<GroupAggregation> g,
      GroupAggregation::create(robust_.value_or(RobustOptions{}), this,
                               Rng::mix_seed(seed_, "robust"), privacy));
  group_ = std::move(g);
  Status s = strategy.set_group_aggregation(group_, num_clients);
  if (!s.ok()) {
    group_.reset();
    std::string why = robust_                   ? "robust"
                      : contribution_.enabled() ? "contribution"
                      : privacy != nullptr      ? "privacy"
                                                : "attack";
    return s.with_context(why);
  }
  return Status();
}

bool RobustRuntime::needs_group() const {
  return contribution_.enabled() || host_.rewrites_groups();
}

Status RobustRuntime::before_rule(ModelVersion version, std::span<GroupMember> members) {
  return host_.rewrite_group(version, members);
}

Result<double> RobustRuntime::utility(const ArrayRecord& model,
                                      std::span<const GroupMember> members,
                                      const std::vector<int>& subset) {
  ArrayRecord candidate = model.clone();
  double total = 0;
  for (int i : subset) total += members[static_cast<size_t>(i)].weight;
  for (int i : subset) {
    const GroupMember& m = members[static_cast<size_t>(i)];
    ops::axpy(static_cast<float>(-m.weight / total), m.values, candidate.flat());
  }
  auto shared = std::make_shared<const ArrayRecord>(std::move(candidate));
  COHORT_ASSIGN_OR_RETURN(std::optional<EvalResult> r, host_.evaluate_contribution(shared));
  if (!r) {
    return Status::failed_precondition(
        "contribution: the server has no validation data to evaluate on");
  }
  const double u = contribution_.utility == "loss" ? -r->loss : r->accuracy;
  if (!std::isfinite(u)) return 0.0;  // a diverged candidate is worth nothing
  return u;
}

void RobustRuntime::after_rule(ModelVersion version, const ArrayRecord& model,
                               std::span<const GroupMember> members,
                               std::span<const float> /*aggregate*/,
                               const robust::Outcome& /*outcome*/) {
  if (!contribution_.enabled() || members.empty()) return;
  const int n = static_cast<int>(members.size());
  robust::Utility u = [&](const std::vector<int>& subset) -> Result<double> {
    return utility(model, members, subset);
  };
  const uint64_t seed = Rng::mix_seed(seed_, "contribution", static_cast<uint64_t>(groups_++));
  Result<robust::ContributionResult> r =
      contribution_.options.method == "loo"
          ? robust::leave_one_out(n, u, contribution_.options)
          : robust::shapley(n, u, contribution_.options, seed);
  Json ev = {{"event", "contribution"},
             {"version", version + 1},
             {"method", contribution_.options.method}};
  if (!r.ok()) {
    ev["error"] = r.error().to_string();
    events_.emit(std::move(ev));
    return;
  }
  Json values = Json::object();
  for (int i = 0; i < n; ++i) {
    const ClientId c = members[static_cast<size_t>(i)].client;
    const double v = r->values[static_cast<size_t>(i)];
    values_[c] += v;
    values[std::to_string(c)] = v;
  }
  ev["values"] = std::move(values);
  ev["evaluations"] = r->evaluations;
  ev["exact"] = r->exact;
  events_.emit(std::move(ev));
}

void RobustRuntime::on_rejected(ClientId id) {
  if (group_ && robust_) group_->record(id, 0.0);
}

void RobustRuntime::fill(RunSummary& summary) const {
  if (!group_) return;
  if (robust_) {
    summary.robust_rule = group_->describe();
    summary.trust = group_->trust();
  }
  if (contribution_.enabled()) {
    summary.contribution_method = contribution_.options.method;
    summary.contribution = values_;
  }
}

Json RobustRuntime::state() const {
  Json values = Json::object();
  for (const auto& [c, v] : values_) values[std::to_string(c)] = v;
  return {{"contribution", std::move(values)}, {"groups", groups_}};
}

Status RobustRuntime::restore(const Json& state) {
  try {
    values_.clear();
    if (state.contains("contribution")) {
      for (const auto& [k, v] : state["contribution"].items()) {
        values_[static_cast<ClientId>(std::stoll(k))] = v.get<double>();
      }
    }
    groups_ = state.value("groups", int64_t{0});
  } catch (const std::exception& e) {
    return Status::data_loss(std::string("runtime.robust: ") + e.what());
  }
  return Status();
}

}  // namespace cohort::runtime
