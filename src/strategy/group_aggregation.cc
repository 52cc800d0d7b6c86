#include "cohort/strategy/group_aggregation.h"

#include <cmath>
#include <sstream>
#include <utility>

#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/rng.h"
#include "cohort/strategy/state_io.h"

namespace cohort {

namespace {

Status bad(const std::string& key, const std::string& what, double got) {
  std::ostringstream s;
  s << "robust." << key << ": " << what << ", got " << got;
  return Status::invalid_argument(s.str());
}

}  // namespace

Status RobustOptions::validate() const {
  if (!(client_momentum >= 0 && client_momentum < 1)) {
    return bad("client_momentum", "must be in [0, 1)", client_momentum);
  }
  if (!(trust_rate > 0 && trust_rate <= 1)) {
    return bad("trust_rate", "must be in (0, 1]", trust_rate);
  }
  if (!(trust_threshold >= 0 && trust_threshold <= 1)) {
    return bad("trust_threshold", "must be in [0, 1]", trust_threshold);
  }
  return Status();
}

GroupAggregation::GroupAggregation(RobustOptions options, std::unique_ptr<robust::Rule> rule,
                                   GroupObserver* observer, uint64_t seed,
                                   GroupPrivacy* privacy)
    : options_(std::move(options)),
      rule_(std::move(rule)),
      observer_(observer),
      privacy_(privacy),
      seed_(seed),
      keeps_(options_.rule.rule != "mean" || options_.rule.bucketing > 1 ||
             options_.client_momentum > 0 || (observer != nullptr && observer->needs_group())) {}

Result<std::unique_ptr<GroupAggregation>> GroupAggregation::create(RobustOptions options,
                                                                   GroupObserver* observer,
                                                                   uint64_t seed,
                                                                   GroupPrivacy* privacy) {
  COHORT_RETURN_IF_ERROR(options.validate());
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<robust::Rule> rule, robust::make_rule(options.rule));
  if (privacy != nullptr) {
    // A robust rule needs to see every update, and the sensitivity the privacy accounting
    // assumes is that of the clipped mean (docs/privacy.md, "What composes").
    const std::string with = " cannot run with " + privacy->describe();
    if (options.rule.rule != "mean" || options.rule.bucketing > 1) {
      return Status::invalid_argument("robust.rule: " + rule->describe() + with +
                                      " (it needs individual updates); use robust.rule mean");
    }
    if (options.client_momentum > 0) {
      return Status::invalid_argument("robust.client_momentum:" + with);
    }
    if (observer != nullptr && observer->needs_group()) {
      return Status::invalid_argument(
          "contribution estimates and colluding attacks need individual updates and" + with);
    }
  }
  return std::unique_ptr<GroupAggregation>(
      new GroupAggregation(std::move(options), std::move(rule), observer, seed, privacy));
}

std::string GroupAggregation::describe() const {
  std::string d = rule_->describe();
  if (options_.client_momentum > 0) {
    d += " on client momentum " + format_number(options_.client_momentum);
  }
  return d;
}

Status GroupAggregation::check_group_size(int64_t n) const {
  COHORT_RETURN_IF_ERROR(rule_->check(static_cast<size_t>(std::max<int64_t>(n, 0))));
  if (privacy_ != nullptr) return privacy_->set_group_size(n);
  return Status();
}

Status GroupAggregation::add(const Update& u, double w, std::span<float> sum,
                             const ArrayRecord& model) {
  if (privacy_ != nullptr) {
    // The accountant assumes one update per client and group (sensitivity: one clip norm), and
    // secure aggregation needs distinct members. Asynchronous strategies give a member no task
    // until the group closes (excluded()); an update that gets here anyway is refused alone.
    if (privacy_members_.count(u.client) != 0) {
      return Status::failed_precondition(
          "privacy: client " + std::to_string(u.client) +
          " already has an update in this group; a second would double its contribution");
    }
    if (!privacy_->needs_values()) {
      COHORT_RETURN_IF_ERROR(privacy_->add(u.client, w, u.metrics, {}, model));
    } else {
      ArrayRecord values(model.layout());
      ops::fill(values.flat(), 0.0f);
      COHORT_RETURN_IF_ERROR(fold_delta(u, 1.0f, values.flat()));
      COHORT_RETURN_IF_ERROR(privacy_->add(u.client, w, u.metrics, values.flat(), model));
    }
    privacy_weight_ += w;
    privacy_members_.insert(u.client);
    return Status();
  }
  if (!keeps_) return fold_delta(u, static_cast<float>(w), sum);
  Kept k;
  k.client = u.client;
  k.weight = w;
  k.base_version = u.base_version;
  k.values = ArrayRecord(model.layout());
  ops::fill(k.values.flat(), 0.0f);
  COHORT_RETURN_IF_ERROR(fold_delta(u, 1.0f, k.values.flat()));
  if (options_.client_momentum > 0) {
    auto it = momentum_.find(u.client);
    if (it == momentum_.end()) {
      ArrayRecord m(model.layout());
      ops::fill(m.flat(), 0.0f);
      it = momentum_.emplace(u.client, std::move(m)).first;
    }
    const auto beta = static_cast<float>(options_.client_momentum);
    // m <- beta m + (1 - beta) delta; the rule sees a copy of m.
    ops::axpby(1.0f - beta, k.values.flat(), beta, it->second.flat());
    ops::copy(it->second.flat(), k.values.flat());
  }
  kept_.push_back(std::move(k));
  return Status();
}

Status GroupAggregation::finish(StrategyHost* host, const std::string& strategy,
                                ModelVersion version, const ArrayRecord& model,
                                std::span<float> sum, int64_t expected) {
  if (privacy_ != nullptr) {
    // The strategy divides the sum by the group's weight: hand it weight x the private mean.
    const double total = privacy_weight_;
    privacy_weight_ = 0;
    privacy_members_.clear();
    COHORT_RETURN_IF_ERROR(privacy_->finish(version, expected, sum, host, strategy));
    ops::scale(sum, static_cast<float>(total));
    ++groups_;
    return Status();
  }
  if (!keeps_) return Status();
  if (kept_.empty()) return Status::failed_precondition("robust: the group holds no update");
  std::vector<GroupMember> members;
  members.reserve(kept_.size());
  for (Kept& k : kept_) {
    members.push_back({k.client, k.weight, k.base_version, k.values.flat()});
  }
  if (observer_ != nullptr) {
    Status s = observer_->before_rule(version, members);
    if (!s.ok()) {
      clear();
      return s;
    }
  }
  robust::Inputs in;
  double total = 0;
  for (const GroupMember& m : members) {
    in.vectors.emplace_back(m.values.data(), m.values.size());
    in.weights.push_back(m.weight);
    total += m.weight;
  }
  if (!previous_.empty()) in.previous = std::as_const(previous_).flat();
  in.seed = Rng::mix_seed(seed_, "robust_group", static_cast<uint64_t>(groups_));
  std::vector<float> aggregate(sum.size());
  robust::Outcome outcome;
  Status s = rule_->aggregate(in, aggregate, &outcome);
  if (!s.ok()) {
    clear();
    return s.with_context("robust rule " + rule_->describe() + " on " +
                          std::to_string(members.size()) + " updates");
  }
  ops::copy(aggregate, sum);
  ops::scale(sum, static_cast<float>(total));

  Json influence = Json::object();
  Json trust = Json::object();
  for (size_t i = 0; i < members.size(); ++i) {
    const double x = i < outcome.influence.size() ? outcome.influence[i] : 1.0;
    record(members[i].client, x);
    const std::string id = std::to_string(members[i].client);
    influence[id] = x;
    trust[id] = trust_[members[i].client];
  }
  Json ev = {{"event", "robust"},
             {"strategy", strategy},
             {"version", version + 1},
             {"rule", describe()},
             {"updates", static_cast<int64_t>(members.size())},
             {"influence", std::move(influence)},
             {"trust", std::move(trust)}};
  for (const auto& [name, value] : outcome.stats) ev[name] = value;
  host->emit(std::move(ev));
  if (observer_ != nullptr) observer_->after_rule(version, model, members, aggregate, outcome);
  if (previous_.empty()) previous_ = ArrayRecord(model.layout());
  ops::copy(aggregate, previous_.flat());
  ++groups_;
  clear();
  return Status();
}

void GroupAggregation::clear() {
  kept_.clear();
  if (privacy_ != nullptr) {
    privacy_->clear();
    privacy_weight_ = 0;
    privacy_members_.clear();
  }
}

void GroupAggregation::record(ClientId id, double influence) {
  auto [it, fresh] = trust_.emplace(id, 1.0);
  it->second = (1 - options_.trust_rate) * it->second + options_.trust_rate * influence;
}

bool GroupAggregation::excluded(ClientId id) const {
  if (privacy_members_.count(id) != 0) return true;
  if (options_.trust_threshold <= 0) return false;
  auto it = trust_.find(id);
  return it != trust_.end() && it->second < options_.trust_threshold;
}

Status GroupAggregation::io_state(StateIO& io, const ArrayRecord& model) {
  std::vector<ClientId> clients;
  std::vector<double> weights;
  std::vector<ModelVersion> bases;
  for (const Kept& k : kept_) {
    clients.push_back(k.client);
    weights.push_back(k.weight);
    bases.push_back(k.base_version);
  }
  io.value("robust.kept_clients", clients);
  io.value("robust.kept_weights", weights);
  io.value("robust.kept_bases", bases);
  if (io.loading()) {
    if (clients.size() != weights.size() || clients.size() != bases.size()) {
      io.fail(Status::data_loss("robust: checkpoint's kept group is inconsistent"));
      return io.status();
    }
    kept_.clear();
    for (size_t i = 0; i < clients.size(); ++i) {
      Kept k;
      k.client = clients[i];
      k.weight = weights[i];
      k.base_version = bases[i];
      k.values = ArrayRecord(model.layout());
      kept_.push_back(std::move(k));
    }
  }
  for (size_t i = 0; i < kept_.size(); ++i) {
    io.array("robust.kept." + std::to_string(i), kept_[i].values);
  }

  std::vector<ClientId> with_momentum;
  for (const auto& [c, m] : momentum_) with_momentum.push_back(c);
  io.value("robust.momentum_clients", with_momentum);
  if (io.loading()) {
    momentum_.clear();
    for (ClientId c : with_momentum) momentum_.emplace(c, ArrayRecord(model.layout()));
  }
  for (auto& [c, m] : momentum_) io.array("robust.momentum." + std::to_string(c), m);

  bool has_previous = !previous_.empty();
  io.value("robust.has_previous", has_previous);
  if (io.loading() && has_previous && previous_.empty()) previous_ = ArrayRecord(model.layout());
  if (has_previous) io.array("robust.previous", previous_);
  io.value("robust.trust", trust_);
  io.value("robust.groups", groups_);
  if (privacy_ != nullptr) {
    io.value("privacy.group_weight", privacy_weight_);
    io.optional_value("privacy.group_clients", privacy_members_);
    COHORT_RETURN_IF_ERROR(privacy_->io_state(io, model));
  }
  return io.status();
}

}  // namespace cohort
