// Adversary: the simulator's Byzantine clients (attack: section; include/cohort/attack/attack.h
// has the math). It decides which clients attack (a list, or a seeded fraction), from when
// (attack.start on the virtual clock, judged at dispatch for what a client sends, at
// aggregation for colluding rewrites), and applies the attack where it happens:
//   - label_flip: the client trains on a copy of its examples with flipped labels (built once,
//     attackers' examples only);
//   - sign_flip, scaling, gaussian, free_rider: on the client's delta after training, before
//     compression (the bytes it sends are the attack's);
//   - alie, ipm: in the aggregation group, from the honest updates of that group (colluding,
//     omniscient attackers as in their papers; RuntimeHost::rewrite_group).
// Internal to cohort_sim.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cohort/attack/attack.h"
#include "cohort/data/dataset.h"
#include "cohort/strategy/group_aggregation.h"

namespace cohort::sim {

class Adversary {
 public:
  // Validates `options` and chooses the attackers among clients 0..shards.size()-1
  // (`shards[i]` is client i's training shard) with `seed`.
  static Result<Adversary> create(const attack::AttackOptions& options,
                                  const std::vector<const Shard*>& shards, uint64_t seed);

  const std::vector<ClientId>& attackers() const { return attackers_; }
  bool attacking(ClientId c, double t) const;
  // The shard client `c` trains on for a task dispatched at `t`.
  const Shard& shard(ClientId c, double t, const Shard& own) const;
  // Whether the client's delta is rewritten after training, and the rewrite.
  bool rewrites_delta(ClientId c, double t) const {
    return attacking(c, t) && attack::is_local(kind_);
  }
  Status rewrite_delta(std::span<float> delta, uint64_t seed) const;
  // Colluding attacks: whether groups are rewritten, and the rewrite at time `t`.
  bool rewrites_groups() const { return !attackers_.empty() && attack::is_colluding(kind_); }
  Status rewrite_group(double t, std::span<GroupMember> members) const;

 private:
  attack::AttackOptions options_;
  attack::Kind kind_ = attack::Kind::kNone;
  std::vector<ClientId> attackers_;
  std::vector<char> is_attacker_;
  // label_flip: per attacker, its examples with flipped labels (one dataset shared by all).
  std::vector<std::unique_ptr<Shard>> flipped_;
};

}  // namespace cohort::sim
