#include "sim/adversary.h"

#include <algorithm>

namespace cohort::sim {

Result<Adversary> Adversary::create(const attack::AttackOptions& options,
                                    const std::vector<const Shard*>& shards, uint64_t seed) {
  COHORT_RETURN_IF_ERROR(attack::check_options(options));
  Adversary a;
  a.options_ = options;
  COHORT_ASSIGN_OR_RETURN(a.kind_, attack::parse_kind(options.kind));
  // Without an attack nothing per client is kept (a million clients cost no table).
  if (a.kind_ == attack::Kind::kNone) return a;
  std::vector<ClientId> ids(shards.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<ClientId>(i);
  COHORT_ASSIGN_OR_RETURN(a.attackers_, attack::choose_attackers(options, ids, seed));
  a.is_attacker_.assign(shards.size(), 0);
  for (ClientId c : a.attackers_) a.is_attacker_[static_cast<size_t>(c)] = 1;
  if (a.kind_ == attack::Kind::kLabelFlip && !a.attackers_.empty()) {
    // One dataset with every attacker's examples, labels flipped; each attacker's shard points
    // into it. Features are copied once, for the attackers' examples only.
    auto flipped = std::make_shared<Dataset>();
    const Dataset* source = nullptr;
    for (ClientId c : a.attackers_) {
      const Shard& s = *shards[static_cast<size_t>(c)];
      if (!s.data) continue;
      if (source == nullptr) source = s.data.get();
      if (s.data.get() != source) {
        return Status::invalid_argument("attack: label_flip needs every client on one dataset");
      }
    }
    if (source != nullptr) {
      flipped->name = source->name + " (labels flipped)";
      flipped->sample_shape = source->sample_shape;
      flipped->num_classes = source->num_classes;
    }
    std::vector<std::vector<int64_t>> indices(a.attackers_.size());
    const int64_t numel = source != nullptr ? source->sample_numel() : 0;
    for (size_t k = 0; k < a.attackers_.size(); ++k) {
      const Shard& s = *shards[static_cast<size_t>(a.attackers_[k])];
      for (int64_t i : s.indices) {
        indices[k].push_back(flipped->size());
        const float* x = source->example(i);
        flipped->features.insert(flipped->features.end(), x, x + numel);
        flipped->labels.push_back(static_cast<int32_t>(
            attack::flip_label(source->labels[static_cast<size_t>(i)], source->num_classes)));
      }
    }
    std::shared_ptr<const Dataset> shared = std::move(flipped);
    a.flipped_.resize(shards.size());
    for (size_t k = 0; k < a.attackers_.size(); ++k) {
      a.flipped_[static_cast<size_t>(a.attackers_[k])] =
          std::make_unique<Shard>(Shard{shared, std::move(indices[k])});
    }
  }
  return a;
}

bool Adversary::attacking(ClientId c, double t) const {
  return c >= 0 && static_cast<size_t>(c) < is_attacker_.size() &&
         is_attacker_[static_cast<size_t>(c)] != 0 && t >= options_.start;
}

const Shard& Adversary::shard(ClientId c, double t, const Shard& own) const {
  if (kind_ != attack::Kind::kLabelFlip || !attacking(c, t)) return own;
  const auto& f = flipped_[static_cast<size_t>(c)];
  return f ? *f : own;
}

Status Adversary::rewrite_delta(std::span<float> delta, uint64_t seed) const {
  return attack::apply_local(options_, kind_, delta, seed);
}

Status Adversary::rewrite_group(double t, std::span<GroupMember> members) const {
  if (!rewrites_groups()) return Status();
  std::vector<std::span<const float>> honest;
  std::vector<size_t> bad;
  for (size_t i = 0; i < members.size(); ++i) {
    if (attacking(members[i].client, t)) {
      bad.push_back(i);
    } else {
      honest.emplace_back(members[i].values.data(), members[i].values.size());
    }
  }
  // Nothing to rewrite, or nothing to learn from: the attackers' own updates stand.
  if (bad.empty() || honest.empty()) return Status();
  std::vector<float> forged(members[bad[0]].values.size());
  if (kind_ == attack::Kind::kAlie) {
    const double z = options_.z > 0 ? options_.z
                                    : attack::alie_z(static_cast<int64_t>(members.size()),
                                                     static_cast<int64_t>(bad.size()));
    COHORT_RETURN_IF_ERROR(attack::alie(honest, z, forged));
  } else {
    COHORT_RETURN_IF_ERROR(attack::ipm(honest, options_.epsilon, forged));
  }
  for (size_t i : bad) std::copy(forged.begin(), forged.end(), members[i].values.begin());
  return Status();
}

}  // namespace cohort::sim
