// Simulated Byzantine clients: what an attacking client sends instead of its honest update
// (docs/robustness.md, "Attacks"). Pure math on one delta (per-update attacks, applied where
// the client produces its update: the simulator after training, `cohort join --attack` in a
// deployment) or on the honest updates of a group (colluding attacks, ALIE and IPM, which as in
// their papers see the honest updates of the round: the simulator applies them in the group
// aggregator just before the robust rule). Label flipping happens in the client's data.
//
// Thread safety: reentrant; the functions touch only their arguments.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort::attack {

enum class Kind { kNone, kSignFlip, kScaling, kGaussian, kLabelFlip, kAlie, kIpm, kFreeRider };

struct AttackOptions {
  // none | sign_flip | scaling | gaussian | label_flip | alie | ipm | free_rider
  std::string kind = "none";
  // Which clients attack: an explicit list of ids, or else a fraction of the population
  // chosen with the run's seed (round(fraction * clients) of them).
  std::vector<ClientId> clients;
  double fraction = 0.0;
  // Attackers behave honestly before this time (seconds on the runtime's clock).
  double start = 0.0;
  // sign_flip: send -scale * delta (default 1); scaling: send scale * delta (default 10).
  // 0 = the kind's default.
  double scale = 0.0;
  // gaussian: send N(0, sigma^2) per coordinate.
  double sigma = 1.0;
  // alie: shift of the honest mean in honest standard deviations; 0 = Baruch et al.'s z_max
  // for the group (n updates, `f` of them attackers).
  double z = 0.0;
  // ipm: send -epsilon * mean(honest).
  double epsilon = 0.1;
  // free_rider: "zero" (return the received model: delta 0) or "noise" (Gaussian noise with
  // the norm of the update it would have sent).
  std::string free_rider = "zero";
};

// Parses options.kind (InvalidArgument "attack.kind: unknown 'x' (known: ...)") and checks
// every parameter (InvalidArgument naming `attack.<key>`).
Result<Kind> parse_kind(const std::string& kind);
Status check_options(const AttackOptions& options);
std::string kind_name(Kind kind);

// The attacking clients among `ids` (ascending): options.clients (each must be in `ids`:
// InvalidArgument otherwise), else a seeded choice of round(fraction * ids.size()).
Result<std::vector<ClientId>> choose_attackers(const AttackOptions& options,
                                               const std::vector<ClientId>& ids, uint64_t seed);

// Whether `kind` is applied to each update on its own (sign flip, scaling, gaussian,
// free rider), needs the group's honest updates (alie, ipm), or happens in the data
// (label_flip).
bool is_local(Kind kind);
bool is_colluding(Kind kind);

// Applies a local attack to one client's delta in place; `seed` (derived from the run, the
// client and the task) drives any noise. InvalidArgument for a non-local kind.
Status apply_local(const AttackOptions& options, Kind kind, std::span<float> delta, uint64_t seed);

// ALIE (Baruch et al., NeurIPS 2019): out = mean(honest) + z * std(honest) per coordinate
// (unweighted; std is the population standard deviation), with z = options.z or, when 0,
// alie_z(n, attackers). IPM (Xie et al., UAI 2019): out = -epsilon * mean(honest).
// InvalidArgument when `honest` is empty or lengths differ.
Status alie(std::span<const std::span<const float>> honest, double z, std::span<float> out);
Status ipm(std::span<const std::span<const float>> honest, double epsilon, std::span<float> out);
// Baruch et al.'s z_max: s = floor(n / 2 + 1) - f, z = Phi^{-1}((n - s) / n). When the
// attackers alone are a majority (s <= 0) s is taken as 1 (the strongest shift that keeps the
// formula finite) rather than 0, which would turn the attack off exactly when it is strongest;
// 0 for n <= 0, f < 0 or s >= n.
double alie_z(int64_t n, int64_t f);

// Label flipping: label -> num_classes - 1 - label.
inline int64_t flip_label(int64_t label, int64_t num_classes) { return num_classes - 1 - label; }

}  // namespace cohort::attack
