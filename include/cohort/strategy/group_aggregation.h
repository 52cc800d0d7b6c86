// GroupAggregation: where a strategy's aggregation group -- a synchronous round, a FedBuff
// buffer -- meets the robust rules (robust/rule.h), client momentum, trust scores and the
// runtime's observers (the simulator's colluding attackers, contribution estimates). It sits
// in the update path of the strategies that aggregate in groups, so no strategy is forked for
// robustness: they fold updates through StrategyBase::group_add and close a group with
// StrategyBase::group_finish, and without a GroupAggregation installed those are today's
// streaming weighted sum (docs/robustness.md).
//
// With one installed, group_add keeps each update (decoded, or a client's momentum of its
// updates) and group_finish writes (sum of the group's weights) * rule(kept) where the
// weighted sum would have been, so the strategy's own normalisation and server optimizer
// apply unchanged: with rule "mean" the result equals the plain path's up to rounding.
//
// Thread safety: none; driven from the strategy's thread like the strategy.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/robust/rule.h"
#include "cohort/strategy/strategy.h"

namespace cohort {

class StateIO;

struct RobustOptions {
  // The rule and its parameters (robust.rule etc.; rule "mean" = no defence).
  robust::RuleOptions rule;
  // Server-side client momentum (Karimireddy et al. 2021): the rule sees, per client,
  // m_i <- beta m_i + (1 - beta) delta_i instead of delta_i; 0 = off. In [0, 1).
  double client_momentum = 0.0;
  // Trust: t_i <- (1 - rate) t_i + rate * influence_i after each group the client is in,
  // starting at 1. In (0, 1].
  double trust_rate = 0.25;
  // Clients whose trust is below this are not sampled / given tasks (0 = never excluded).
  double trust_threshold = 0.0;

  // InvalidArgument naming robust.<key>.
  Status validate() const;
};

// One kept update of a group.
struct GroupMember {
  ClientId client = 0;
  double weight = 0.0;
  ModelVersion base_version = 0;
  std::span<float> values;  // what the rule sees (the delta, or the client's momentum)
};

// What the runtime may plug in around the rule.
class GroupObserver {
 public:
  virtual ~GroupObserver() = default;
  // Whether the group must be kept even with rule "mean" (a colluding attack, contribution).
  virtual bool needs_group() const { return false; }
  // Before the rule; may rewrite members' values (the simulator's colluding attackers).
  virtual Status before_rule(ModelVersion version, std::span<GroupMember> members) {
    return Status();
  }
  // After the rule: `model` is the global model the group's updates apply to, `aggregate`
  // the rule's output, `outcome` its per-member influence.
  virtual void after_rule(ModelVersion version, const ArrayRecord& model,
                          std::span<const GroupMember> members, std::span<const float> aggregate,
                          const robust::Outcome& outcome) {}
};

// What privacy puts in the seam (runtime/privacy.h): differential privacy's clipping and
// noise, secure aggregation. It sees each update of the group and replaces the group's
// weighted mean by its own aggregate; robust rules other than mean, client momentum and
// observers that need individual updates cannot run with it (create() refuses them).
class GroupPrivacy {
 public:
  virtual ~GroupPrivacy() = default;
  virtual std::string describe() const = 0;
  // The strategy aggregates groups of `n` updates (the round's sample, FedBuff's buffer):
  // InvalidArgument when the stage cannot work with that.
  virtual Status set_group_size(int64_t n) = 0;
  // False when the stage never reads an update's values (secure aggregation whose members hold
  // their updates): add() then gets an empty `values` and nothing is decoded for it.
  virtual bool needs_values() const { return true; }
  // An update of the group with the strategy's weight `weight`: `values` is its decoded delta
  // (the stage may clip it in place and keep what it needs; `model` gives the layout). An
  // error rejects this update only.
  virtual Status add(ClientId client, double weight, const MetricRecord& metrics,
                     std::span<float> values, const ArrayRecord& model) = 0;
  // Ends the group: the aggregate the strategy applies as its mean update, into `mean`.
  // `expected` is the group's planned size today (the round's sample for the current
  // population, FedBuff's K). The group's updates are dropped either way; an error leaves the
  // global model unchanged.
  virtual Status finish(ModelVersion version, int64_t expected, std::span<float> mean,
                        StrategyHost* host, const std::string& strategy) = 0;
  // Drops the group (a new round).
  virtual void clear() = 0;
  // Checkpoints: the group in progress and the stage's state (clip bound, ...).
  virtual Status io_state(StateIO& io, const ArrayRecord& model) = 0;
};

class GroupAggregation {
 public:
  // Validates `options`, builds the rule. `observer` and `privacy` may be null and must
  // outlive this. `seed` drives the rule's randomness (bucketing, flag), one derived seed per
  // group. InvalidArgument when `privacy` is given with a rule other than mean, client
  // momentum or an observer that needs the group's individual updates.
  static Result<std::unique_ptr<GroupAggregation>> create(RobustOptions options,
                                                          GroupObserver* observer, uint64_t seed,
                                                          GroupPrivacy* privacy = nullptr);

  const RobustOptions& options() const { return options_; }
  std::string describe() const;
  // Whether groups are kept (a rule other than mean, momentum, or an observer needing them).
  bool keeps() const { return keeps_; }
  // Checks the rule can take groups of `n` (Krum's n > 2f + 2, ...): InvalidArgument.
  Status check_group_size(int64_t n) const;

  // Keeps `u` with weight `w` (keeps()), or folds w * delta into `sum` (otherwise).
  Status add(const Update& u, double w, std::span<float> sum, const ArrayRecord& model);
  // Ends the group: sum = (sum of weights) * rule(kept) (keeps()), emits the "robust" event
  // and updates trust. Clears the group either way. `version` is the version the group's
  // commit will follow (the current one); `expected` the group's planned size (privacy's
  // fixed denominator).
  Status finish(StrategyHost* host, const std::string& strategy, ModelVersion version,
                const ArrayRecord& model, std::span<float> sum, int64_t expected = 0);
  // Drops the kept updates (a new round).
  void clear();
  size_t size() const { return kept_.size(); }

  // Trust scores (clients seen so far) and whether a client is excluded: by the threshold, or,
  // with a privacy stage, because its update is in the open group (no client may contribute
  // twice to one group: its sensitivity would double, and secure aggregation needs distinct
  // members; asynchronous strategies give it no task until the group closes).
  const std::map<ClientId, double>& trust() const { return trust_; }
  // Moves client `id`'s trust toward `influence` as a group would (the runtime records an
  // update that admission rejected as influence 0).
  void record(ClientId id, double influence);
  bool excluded(ClientId id) const;
  // Whether the trust threshold may exclude clients (then any client may be excluded; the
  // privacy stage's exclusions are the open group's members only).
  bool may_exclude() const { return options_.trust_threshold > 0; }
  bool has_privacy() const { return privacy_ != nullptr; }

  // Checkpoints: the kept group, momenta, the previous aggregate, trust, the group counter.
  Status io_state(StateIO& io, const ArrayRecord& model);

 private:
  GroupAggregation(RobustOptions options, std::unique_ptr<robust::Rule> rule,
                   GroupObserver* observer, uint64_t seed, GroupPrivacy* privacy);

  struct Kept {
    ClientId client = 0;
    double weight = 0.0;
    ModelVersion base_version = 0;
    ArrayRecord values;
  };

  RobustOptions options_;
  std::unique_ptr<robust::Rule> rule_;
  GroupObserver* observer_;
  GroupPrivacy* privacy_;
  uint64_t seed_;
  bool keeps_;
  std::vector<Kept> kept_;
  std::map<ClientId, ArrayRecord> momentum_;
  ArrayRecord previous_;  // the last aggregate (empty before the first group)
  std::map<ClientId, double> trust_;
  int64_t groups_ = 0;
  double privacy_weight_ = 0.0;  // the group's total weight while privacy_ holds its updates
  std::set<ClientId> privacy_members_;  // the clients whose updates privacy_ holds
};

}  // namespace cohort
