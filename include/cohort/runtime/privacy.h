// Privacy in the runtime, written once for both hosts (the YAML privacy: section,
// docs/privacy.md):
//   - differential privacy (privacy/dp.h): the server side clips every update of an
//     aggregation group and adds Gaussian noise to the group's sum; the client side has each
//     client clip (and, under secure aggregation, noise) its own delta before it leaves, from
//     the clip norm the task carries (task_config.h "dp_clip_norm", "dp_noise_stddev");
//   - the accountant (privacy/accountant.h): one Poisson-subsampled Gaussian step per group,
//     epsilon at the configured delta after every group ("privacy" events, every "eval" event,
//     summary.json), and the run stops before a group would spend more than target_epsilon;
//   - secure aggregation (privacy/secagg...): the group's sum is computed by the masking
//     protocol, so that the server only learns the sum.
// PrivacyRuntime is the GroupPrivacy the strategy's GroupAggregation calls
// (strategy/group_aggregation.h); it never forks a strategy.
//
// Thread safety: none; used from the runtime's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/privacy/accountant.h"
#include "cohort/privacy/dp.h"
#include "cohort/runtime/admission.h"
#include "cohort/runtime/compression.h"
#include "cohort/runtime/secagg.h"
#include "cohort/runtime/summary.h"
#include "cohort/strategy/group_aggregation.h"

namespace cohort::runtime {

struct SecAggOptions {
  bool enabled = false;
  // Clients whose shares must survive to recover the sum: a count (>= 2) or, below 1, a
  // fraction of the group (or of a client's neighbours under SecAgg+). Default 2/3.
  double threshold = 2.0 / 3.0;
  // SecAgg+: each client masks with and shares to this many neighbours (even; 0 = everyone).
  int neighbours = 0;
  // Fixed point: values are clipped to [-range, range] and quantized to input_bits bits;
  // words are `bits` wide (0 = input_bits + ceil(log2 group size), the least that cannot wrap).
  int input_bits = 16;
  double range = 0.0;  // 0 = the DP clip norm when DP is on, else 1
  int bits = 0;
  // Simulator only: probability that a client drops after sharing its keys (before its
  // masked input) and after its masked input (before unmasking).
  double dropout_before_masking = 0.0;
  double dropout_after_masking = 0.0;
  // cohort serve only: a member silent this long at a stage of a round is dropped from it.
  double stage_timeout_s = 30.0;

  // InvalidArgument naming privacy.secagg.<key>.
  Status validate() const;
};

struct PrivacyOptions {
  privacy::DpOptions dp;
  SecAggOptions secagg;
  bool enabled() const { return dp.enabled() || secagg.enabled; }
  Status validate() const;
};

// Client side, in both runtimes: applies the task's DP settings (task_dp) to `delta`, the
// client's pseudo-gradient: clips it to the task's clip norm and adds the task's noise drawn
// from (seed, stream). Records "dp_unclipped" (1 when the delta was within the bound, else 0)
// in `metrics` for adaptive clipping. No-op when the task carries no DP settings.
Status privatize_update(std::span<float> delta, const ConfigRecord& task_config,
                        const privacy::NoiseSeed& seed, uint64_t stream, MetricRecord* metrics);
// Secure aggregation and the uplink codec chain: the protocol's fixed point is a stochastic
// uniform quantizer with one scale for the whole group, so an uplink chain that is exactly
// intK (int8, int4, int2) becomes the protocol's input precision: returns K, and the chain is
// not run separately (the masked words are what travels). 0 for an uplink of none.
// InvalidArgument naming compression.uplink for any other chain under secure aggregation
// (sparsifiers pick different coordinates per client, which masks cannot cancel; entropy
// coding of masked words gains nothing; other value codecs have no integer output).
Result<int> secagg_input_bits(const CompressionOptions& compression);
// Applies secagg_input_bits to a run's options (call after validation).
void fold_uplink_into_secagg(CompressionOptions& compression, PrivacyOptions& privacy);

// Admission under secure aggregation: the server never sees an update, so no norm can be
// checked: the norm policy is off and there is no warm-up bound (each coordinate is bounded by
// the fixed point's range instead, and client-side DP bounds the norm before masking). Other
// settings are returned unchanged.
AdmissionOptions admission_under_privacy(AdmissionOptions admission,
                                         const PrivacyOptions& privacy);

// The metric a client reports for adaptive clipping.
inline constexpr char kDpUnclippedMetric[] = "dp_unclipped";

class PrivacyRuntime final : public GroupPrivacy {
 public:
  // `events` receives the "privacy" events. `noise` seeds the server's noise (the simulator:
  // derived from the run seed; a deployment: random). `num_clients` (the population so far)
  // and `planned_groups` (0 = unknown) let a noise multiplier be derived from target_epsilon.
  PrivacyRuntime(PrivacyOptions options, StrategyHost& events, privacy::NoiseSeed noise,
                 size_t num_clients, int64_t planned_groups);

  bool active() const { return options_.enabled(); }
  // Secure aggregation with remote members (cohort serve): the updates add() sees are
  // placeholders (the clients hold theirs) and each group's round runs through `transport`.
  // Null (the default): rounds run in process over the values add() kept. Must outlive this.
  void set_transport(SecAggTransport* transport) { transport_ = transport; }
  // InvalidArgument for a strategy whose traffic would bypass the stage (SCAFFOLD).
  Status check_strategy(const std::string& strategy) const;

  // GroupPrivacy. set_group_size validates the options against the group and fixes the
  // noise multiplier.
  std::string describe() const override;
  bool needs_values() const override { return !(options_.secagg.enabled && transport_ != nullptr); }
  Status set_group_size(int64_t n) override;
  Status add(ClientId client, double weight, const MetricRecord& metrics,
             std::span<float> values, const ArrayRecord& model) override;
  Status finish(ModelVersion version, int64_t expected, std::span<float> mean,
                StrategyHost* host, const std::string& strategy) override;
  void clear() override;
  Status io_state(StateIO& io, const ArrayRecord& model) override;

  // Under secure aggregation, the MaskedInput message size for `numel` parameters (plus the
  // unclipped-count word) at the group size set_group_size saw; nullopt otherwise.
  std::optional<int64_t> masked_input_bytes(int64_t numel) const;
  // Client side: the DP settings a task carries (clip norm, distributed noise), if any.
  void annotate(Task& task) const;
  // The spent budget so far (0 before the first group), and whether the next group would
  // exceed target_epsilon (the runtime then stops the run).
  double epsilon() const { return epsilon_; }
  bool exhausted() const { return exhausted_; }
  // Set when the run cannot go on (secure aggregation failed kMaxSecAggFailuresInARow groups
  // in a row); the runtime fails the run with it.
  const std::optional<Status>& fatal() const { return fatal_; }
  static constexpr int64_t kMaxSecAggFailuresInARow = 10;
  std::string exhausted_reason() const;
  double delta() const { return options_.dp.delta; }
  bool dp() const { return options_.dp.enabled(); }
  // Epsilon, delta and the final clip norm into `summary`.
  void fill(RunSummary& summary) const;
  // The accountant and the clip bound (checkpoints).
  Json state() const;
  Status restore(const Json& state);

 private:
  Status step_accountant(double q);
  // The updates' and the unclipped count's shares of the noise for a group of `group`.
  Status split_noise(int64_t group);
  // Shamir threshold for a group of n (privacy.secagg.threshold as a count or a fraction of
  // each client's neighbours).
  int32_t secagg_threshold(int64_t n) const;
  // The fewest inputs a released sum of a planned group of `group` may hold (the threshold as
  // a count, or that fraction of the group): the distributed noise is calibrated to it.
  int64_t min_included(int64_t group) const;
  // The group's sum through the secure aggregation protocol, into `mean`.
  Status finish_secagg(ModelVersion version, int64_t group, std::span<float> mean,
                       const std::string& strategy, double* unclipped);
  double secagg_range() const;
  // The round between one client session per member over the values held_ kept.
  Result<SecAggRoundResult> run_in_process(const SecAggGroup& group);
  Status finish_dp(ModelVersion version, int64_t group, double q, std::span<float> mean,
                   const std::string& strategy);

  PrivacyOptions options_;
  StrategyHost& events_;
  privacy::NoiseSeed noise_;
  size_t num_clients_;
  int64_t planned_groups_;
  int64_t group_size_ = 0;
  double z_ = 0.0;         // noise multiplier the accountant composes
  double z_update_ = 0.0;  // its share on the updates (adaptive clipping takes the rest)
  double count_stddev_ = 0.0;
  double clip_ = 0.0;
  privacy::Conversion conversion_ = privacy::Conversion::kImproved;
  privacy::RdpAccountant accountant_;
  double epsilon_ = 0.0;
  double order_ = 0.0;
  bool exhausted_ = false;
  int64_t groups_ = 0;
  // The group in progress: the running sum of clipped updates (DP without secure
  // aggregation), or what each client session holds (secure aggregation).
  ArrayRecord sum_;
  int64_t count_ = 0;
  double unclipped_ = 0.0;
  struct Held {
    ClientId client = 0;
    double weight = 0.0;
    bool unclipped = false;
    std::vector<float> values;
  };
  std::vector<Held> held_;
  SecAggTransport* transport_ = nullptr;
  uint64_t seed64_ = 0;
  int64_t secagg_groups_ = 0;
  int64_t secagg_failed_ = 0;
  int64_t secagg_failed_in_a_row_ = 0;
  std::optional<Status> fatal_;
};

}  // namespace cohort::runtime
