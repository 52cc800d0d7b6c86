// RobustRuntime: the runtime's side of robust aggregation, written once for both hosts. It
// builds the GroupAggregation (strategy/group_aggregation.h) from the robust: section and
// puts it in the strategy's update path, and it observes every aggregation group:
//   - before the rule, the host may rewrite members (the simulator's colluding attackers,
//     RuntimeHost::rewrite_group);
//   - after it, contribution estimates (robust/contribution.h) of the group's clients on the
//     host's validation data (RuntimeHost::evaluate_contribution), added up per client;
//   - trust scores and contributions end up in the run summary (summary.json "trust",
//     "contribution") and in "robust" / "contribution" metric events.
// docs/robustness.md describes the whole feature.
//
// Thread safety: none; used from the runtime's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cohort/core/metrics.h"
#include "cohort/robust/contribution.h"
#include "cohort/runtime/summary.h"
#include "cohort/strategy/group_aggregation.h"

namespace cohort::runtime {

class RuntimeHost;

struct ContributionSettings {
  // method none | loo | shapley; evaluations per group; truncation (robust/contribution.h).
  robust::ContributionOptions options{.method = "none"};
  // U(S): "accuracy" (validation accuracy) or "loss" (minus validation loss) of the model the
  // subset's weighted mean update would give (server learning rate 1).
  std::string utility = "accuracy";

  bool enabled() const { return options.method != "none"; }
  // InvalidArgument naming contribution.<key>.
  Status validate() const;
};

class RobustRuntime final : public GroupObserver {
 public:
  // `events` receives the "contribution" events (the Runtime, which adds times).
  RobustRuntime(std::optional<RobustOptions> robust, ContributionSettings contribution,
                RuntimeHost& host, StrategyHost& events, uint64_t seed);

  // Whether anything needs installing: a robust: section, contribution estimates, or a host
  // that rewrites groups.
  bool active() const;
  // Builds the GroupAggregation (with `privacy` in it, if not null) and installs it in
  // `strategy` (after its start()).
  Status install(Strategy& strategy, size_t num_clients, GroupPrivacy* privacy = nullptr);

  bool needs_group() const override;
  Status before_rule(ModelVersion version, std::span<GroupMember> members) override;
  void after_rule(ModelVersion version, const ArrayRecord& model,
                  std::span<const GroupMember> members, std::span<const float> aggregate,
                  const robust::Outcome& outcome) override;

  // An update of client `id` was rejected before the strategy (admission, a malformed
  // upload): its trust moves toward 0 as for an update the rule discarded.
  void on_rejected(ClientId id);
  // Trust, contributions and the rule into `summary`.
  void fill(RunSummary& summary) const;
  // The contributions so far (checkpoints; trust is in the strategy's state).
  Json state() const;
  Status restore(const Json& state);

 private:
  Result<double> utility(const ArrayRecord& model, std::span<const GroupMember> members,
                         const std::vector<int>& subset);

  std::optional<RobustOptions> robust_;
  ContributionSettings contribution_;
  RuntimeHost& host_;
  StrategyHost& events_;
  uint64_t seed_;
  std::shared_ptr<GroupAggregation> group_;
  std::map<ClientId, double> values_;
  int64_t groups_ = 0;
};

}  // namespace cohort::runtime
