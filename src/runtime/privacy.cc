#include "cohort/runtime/privacy.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include <algorithm>

#include "cohort/codec/codec.h"
#include "cohort/core/format.h"
#include "cohort/core/ops.h"
#include "cohort/core/rng.h"
#include "cohort/secagg/params.h"
#include "runtime/secagg_round.h"
#include "cohort/strategy/state_io.h"
#include "cohort/strategy/task_config.h"

namespace cohort::runtime {

namespace {

Status bad(const std::string& key, const std::string& what, double got) {
  std::ostringstream s;
  s << "privacy.secagg." << key << ": " << what << ", got " << got;
  return Status::invalid_argument(s.str());
}

}  // namespace

Status SecAggOptions::validate() const {
  if (!enabled) return Status();
  if (!(threshold > 0 && (threshold < 1 || (threshold >= 2 && threshold == std::floor(threshold))))) {
    return bad("threshold", "must be a fraction in (0, 1) or a whole count >= 2", threshold);
  }
  if (neighbours < 0 || neighbours % 2 != 0) {
    return bad("neighbours", "must be an even count >= 0 (0 = every client)", neighbours);
  }
  if (input_bits < 2 || input_bits > 24) return bad("input_bits", "must be in [2, 24]", input_bits);
  if (!(range >= 0 && std::isfinite(range))) {
    return bad("range", "must be a finite number >= 0 (0 = the DP clip norm, or 1)", range);
  }
  if (bits != 0 && (bits < input_bits || bits > 32)) {
    return bad("bits", "must be 0 (automatic) or in [input_bits, 32]", bits);
  }
  for (auto [key, p] : {std::pair{"dropout_before_masking", dropout_before_masking},
                        std::pair{"dropout_after_masking", dropout_after_masking}}) {
    if (!(p >= 0 && p < 1)) return bad(key, "must be a probability in [0, 1)", p);
  }
  if (!(stage_timeout_s > 0 && std::isfinite(stage_timeout_s))) {
    return bad("stage_timeout_s", "must be a finite number of seconds > 0", stage_timeout_s);
  }
  return Status();
}

Status PrivacyOptions::validate() const {
  if (dp.enabled()) COHORT_RETURN_IF_ERROR(dp.validate());
  return secagg.validate();
}

Result<int> secagg_input_bits(const CompressionOptions& compression) {
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const codec::Chain> chain,
                          codec::Chain::parse(compression.uplink));
  if (chain->none()) return 0;
  const std::string& spec = chain->spec();
  for (int k : {8, 4, 2}) {
    const std::string name = "int" + std::to_string(k);
    if (!chain->sparse() && chain->byte_codec() == nullptr && spec.rfind(name, 0) == 0) return k;
  }
  return Status::invalid_argument(
      "compression.uplink: '" + spec +
      "' cannot run under secure aggregation (privacy.secagg): the protocol sums fixed-point "
      "words of every coordinate, so only a uniform quantizer (int8, int4, int2: it becomes "
      "the protocol's input precision) or none can");
}

AdmissionOptions admission_under_privacy(AdmissionOptions admission,
                                         const PrivacyOptions& privacy) {
  if (privacy.secagg.enabled) {
    admission.norm_policy = "off";
    admission.warmup_bound = "none";
  }
  return admission;
}

void fold_uplink_into_secagg(CompressionOptions& compression, PrivacyOptions& privacy) {
  if (!privacy.secagg.enabled) return;
  Result<int> bits = secagg_input_bits(compression);
  if (!bits.ok() || *bits == 0) return;
  privacy.secagg.input_bits = *bits;
  compression.uplink = "none";
}

Status privatize_update(std::span<float> delta, const ConfigRecord& task_config,
                        const privacy::NoiseSeed& seed, uint64_t stream, MetricRecord* metrics) {
  COHORT_ASSIGN_OR_RETURN(std::optional<TaskDp> dp, task_dp(task_config));
  if (!dp) return Status();
  const double norm = privacy::clip_l2(delta, dp->clip_norm);
  if (!std::isfinite(norm)) {
    return Status::invalid_argument("client-side DP: the update is not finite (norm " +
                                    format_number(norm) + ")");
  }
  if (dp->noise_stddev > 0) privacy::add_gaussian_noise(delta, dp->noise_stddev, seed, stream);
  if (metrics != nullptr) (*metrics)[kDpUnclippedMetric] = norm <= dp->clip_norm ? 1.0 : 0.0;
  return Status();
}

PrivacyRuntime::PrivacyRuntime(PrivacyOptions options, StrategyHost& events,
                               privacy::NoiseSeed noise, size_t num_clients,
                               int64_t planned_groups)
    : options_(std::move(options)),
      events_(events),
      noise_(noise),
      num_clients_(num_clients),
      planned_groups_(planned_groups),
      clip_(options_.dp.clip_norm) {
  std::memcpy(&seed64_, noise_.data(), sizeof seed64_);
}

Status PrivacyRuntime::check_strategy(const std::string& strategy) const {
  if (strategy == "scaffold") {
    // Its control-variate updates (Delta c_i) travel beside the update and feed the c every
    // client downloads: they would bypass clipping, noise and masking.
    return Status::invalid_argument(
        "privacy: scaffold's control-variate updates would bypass differential privacy and "
        "secure aggregation; use a FedAvg-family strategy or FedBuff");
  }
  return Status();
}

std::string PrivacyRuntime::describe() const {
  std::string d;
  if (options_.dp.enabled()) {
    d = "differential privacy (" + options_.dp.side + "-side, noise multiplier " +
        format_number(z_ > 0 ? z_ : options_.dp.noise_multiplier) + ")";
  }
  if (options_.secagg.enabled) d += std::string(d.empty() ? "" : " and ") + "secure aggregation";
  return d;
}

Status PrivacyRuntime::set_group_size(int64_t n) {
  COHORT_RETURN_IF_ERROR(options_.validate());
  // n is 0 when no client has registered yet (a deployment): finish() gets the group's
  // expected size as the population grows.
  group_size_ = n;
  if (options_.secagg.enabled && n > 0) {
    if (n < 3) {
      return Status::invalid_argument(
          "privacy.secagg: the strategy aggregates groups of " + std::to_string(n) +
          " updates; secure aggregation needs at least 3 (a sum of two reveals each to the "
          "other)");
    }
    const int32_t need = secagg::FixedPoint::required_bits(options_.secagg.input_bits, n);
    if (options_.secagg.bits > 0 && options_.secagg.bits < need) {
      return Status::invalid_argument(
          "privacy.secagg.bits: must be >= " + std::to_string(need) + " to sum " +
          std::to_string(n) + " inputs of " + std::to_string(options_.secagg.input_bits) +
          " bits, got " + std::to_string(options_.secagg.bits));
    }
  }
  if (options_.secagg.enabled && options_.dp.enabled() && options_.dp.side != "client") {
    return Status::invalid_argument(
        "privacy.dp.side: server-side DP clips each update, which secure aggregation hides "
        "from the server; use side: client (clients clip and add their share of the noise)");
  }
  if (!options_.dp.enabled()) return Status();
  COHORT_ASSIGN_OR_RETURN(conversion_, privacy::parse_conversion(options_.dp.conversion));
  z_ = options_.dp.noise_multiplier;
  if (z_ <= 0) {
    // Derived from the budget: the smallest z that spends target_epsilon over the planned
    // groups at the sampling rate of today's population.
    if (planned_groups_ <= 0 || num_clients_ == 0 || n < 1) {
      return Status::invalid_argument(
          "privacy.dp.noise_multiplier: not set, and it can only be derived from "
          "target_epsilon when the run's number of commits (run.rounds) and its clients are "
          "known; set noise_multiplier");
    }
    const double q = std::min(1.0, static_cast<double>(n) / static_cast<double>(num_clients_));
    COHORT_ASSIGN_OR_RETURN(z_, privacy::noise_multiplier_for(*options_.dp.target_epsilon, q,
                                                              planned_groups_,
                                                              options_.dp.delta, conversion_));
  }
  if (n > 0) COHORT_RETURN_IF_ERROR(split_noise(n));  // fail at start, not at the first group
  return Status();
}

Status PrivacyRuntime::split_noise(int64_t group) {
  z_update_ = z_;
  if (!options_.dp.adaptive_clipping) return Status();
  count_stddev_ = options_.dp.clipped_count_stddev > 0 ? options_.dp.clipped_count_stddev
                                                       : 0.05 * static_cast<double>(group);
  COHORT_ASSIGN_OR_RETURN(z_update_, privacy::update_noise_multiplier(z_, count_stddev_));
  return Status();
}

Status PrivacyRuntime::add(ClientId client, double weight, const MetricRecord& metrics,
                           std::span<float> values, const ArrayRecord& model) {
  if (!ops::all_finite(values)) {
    return Status::invalid_argument("privacy: update of client " + std::to_string(client) +
                                    " is not finite");
  }
  bool unclipped = true;
  if (options_.secagg.enabled) {
    // The client's session holds its (client-clipped, noised) update; the server side of the
    // protocol never sees it.
    auto it = metrics.find(kDpUnclippedMetric);
    if (it != metrics.end()) unclipped = it->second >= 0.5;
    held_.push_back({client, weight, unclipped, {}});
    // With a transport the client holds its update (`values` is empty: needs_values()).
    if (transport_ == nullptr) held_.back().values.assign(values.begin(), values.end());
    ++count_;
    return Status();
  }
  if (!options_.dp.enabled()) return Status();
  // Clipped here on either side: a client that did not clip (or clipped to an older bound)
  // must not widen the sensitivity the accountant assumes.
  const double norm = privacy::clip_l2(values, clip_);
  unclipped = norm <= clip_;
  if (options_.dp.side == "client") {
    auto it = metrics.find(kDpUnclippedMetric);
    if (it != metrics.end()) unclipped = it->second >= 0.5;
  }
  if (sum_.empty()) {
    sum_ = ArrayRecord(model.layout());
    ops::fill(sum_.flat(), 0.0f);
  }
  ops::axpy(1.0f, values, sum_.flat());
  ++count_;
  if (unclipped) unclipped_ += 1;
  return Status();
}

Status PrivacyRuntime::step_accountant(double q) {
  COHORT_RETURN_IF_ERROR(accountant_.step(q, z_));
  COHORT_ASSIGN_OR_RETURN(privacy::EpsilonResult e,
                          accountant_.epsilon(options_.dp.delta, conversion_));
  epsilon_ = e.epsilon;
  order_ = e.order;
  if (options_.dp.target_epsilon) {
    COHORT_ASSIGN_OR_RETURN(privacy::EpsilonResult next,
                            accountant_.epsilon_after(q, z_, 1, options_.dp.delta, conversion_));
    exhausted_ = next.epsilon > *options_.dp.target_epsilon;
  }
  return Status();
}

Status PrivacyRuntime::finish(ModelVersion version, int64_t expected, std::span<float> mean,
                              StrategyHost* host, const std::string& strategy) {
  if (count_ == 0) return Status::failed_precondition("privacy: the group holds no update");
  // The fixed denominator C: the group's planned size (at least the updates it holds).
  const int64_t group = expected > 0 ? expected : std::max<int64_t>(count_, 1);
  const size_t population = std::max<size_t>(host->num_clients(), 1);
  const double q = std::min(1.0, static_cast<double>(group) / static_cast<double>(population));
  if (options_.dp.enabled() && options_.dp.target_epsilon) {
    COHORT_ASSIGN_OR_RETURN(privacy::EpsilonResult next,
                            accountant_.epsilon_after(q, z_, 1, options_.dp.delta, conversion_));
    if (next.epsilon > *options_.dp.target_epsilon) {
      exhausted_ = true;
      clear();
      return Status::failed_precondition("privacy: " + exhausted_reason());
    }
  }
  if (options_.dp.enabled()) {
    Status split = split_noise(group);
    if (!split.ok()) {
      clear();
      return split;
    }
  }
  if (options_.secagg.enabled) {
    double unclipped = 0;
    Status s = finish_secagg(version, group, mean, strategy, &unclipped);
    if (!s.ok()) {
      ++secagg_failed_;
      ++groups_;  // the next group draws fresh keys, graph and dropouts
      clear();
      // A protocol that fails group after group (a threshold the dropouts never leave) would
      // retry forever: the run fails instead.
      if (++secagg_failed_in_a_row_ >= kMaxSecAggFailuresInARow) {
        fatal_ = Status::failed_precondition(
            "privacy.secagg: " + std::to_string(secagg_failed_in_a_row_) +
            " groups in a row failed secure aggregation; the last: " + s.message() +
            " (lower privacy.secagg.threshold or expect fewer dropouts)");
      }
      return s;
    }
    secagg_failed_in_a_row_ = 0;
    ++secagg_groups_;
    unclipped_ = unclipped;
  } else {
    // Fixed denominator: the expected group size, so one client moves the mean by <= S / C.
    privacy::add_gaussian_noise(sum_.flat(), z_update_ * clip_, noise_,
                                static_cast<uint64_t>(groups_));
    ops::copy(sum_.flat(), mean);
    ops::scale(mean, static_cast<float>(1.0 / static_cast<double>(group)));
  }
  Status s = options_.dp.enabled() ? finish_dp(version, group, q, mean, strategy) : Status();
  ++groups_;
  clear();
  return s;
}

Status PrivacyRuntime::finish_dp(ModelVersion version, int64_t group, double q,
                                 std::span<float> mean, const std::string& strategy) {
  const double clip_used = clip_;
  const double unclipped_fraction = unclipped_ / static_cast<double>(count_);
  if (options_.dp.adaptive_clipping) {
    const double noise =
        count_stddev_ * privacy::gaussian(noise_, static_cast<uint64_t>(groups_), 0);
    clip_ = privacy::next_clip_norm(clip_, unclipped_, static_cast<double>(count_), noise,
                                    static_cast<double>(group),
                                    options_.dp.target_quantile, options_.dp.clip_learning_rate);
  }
  COHORT_RETURN_IF_ERROR(step_accountant(q));
  Json ev = {{"event", "privacy"},
             {"strategy", strategy},
             {"version", version + 1},
             {"updates", count_},
             {"sampling_rate", q},
             {"noise_multiplier", z_},
             {"clip_norm", clip_used},
             {"unclipped_fraction", unclipped_fraction},
             {"epsilon", epsilon_},
             {"delta", options_.dp.delta},
             {"order", order_}};
  if (options_.dp.adaptive_clipping) ev["next_clip_norm"] = clip_;
  events_.emit(std::move(ev));
  return Status();
}

int32_t PrivacyRuntime::secagg_threshold(int64_t n) const {
  secagg::Params p;
  p.neighbours = options_.secagg.neighbours < n - 1 ? options_.secagg.neighbours : 0;
  const int64_t k = p.neighbour_count(n);
  const double t = options_.secagg.threshold;
  const int64_t count = t < 1 ? static_cast<int64_t>(std::ceil(t * static_cast<double>(k)))
                              : static_cast<int64_t>(t);
  return static_cast<int32_t>(std::clamp<int64_t>(count, 2, std::max<int64_t>(k, 2)));
}

int64_t PrivacyRuntime::min_included(int64_t group) const {
  const double t = options_.secagg.threshold;
  const int64_t count = t < 1 ? static_cast<int64_t>(std::ceil(t * static_cast<double>(group)))
                              : static_cast<int64_t>(t);
  return std::clamp<int64_t>(count, 2, std::max<int64_t>(group, 2));
}

double PrivacyRuntime::secagg_range() const {
  if (options_.secagg.range > 0) return options_.secagg.range;
  if (!options_.dp.enabled()) return 1.0;
  // A clipped update's coordinates lie within the clip norm; the distributed noise adds a
  // Gaussian of the task's stddev, kept within 4 standard deviations (the rest is clipped and
  // counted in the "secagg" event).
  const int64_t t = min_included(std::max<int64_t>(group_size_, 3));
  return clip_ + 4.0 * z_update_ * clip_ / std::sqrt(static_cast<double>(t));
}

Result<SecAggRoundResult> PrivacyRuntime::run_in_process(const SecAggGroup& g) {
  // Each member's session encodes the update it holds, as a deployed client does.
  std::vector<SecAggMember> members;
  members.reserve(held_.size());
  int64_t clipped = 0;
  for (Held& h : held_) {
    auto m = std::find_if(g.members.begin(), g.members.end(),
                          [&](const SecAggGroup::Member& x) { return x.client == h.client; });
    COHORT_ASSIGN_OR_RETURN(
        secagg::FixedPoint::Encoded e,
        encode_secagg_input(g.params, g.fixed_point, static_cast<int64_t>(g.members.size()),
                            h.values, m->scale, h.unclipped,
                            Rng::mix_seed(seed64_, "secagg_encode", h.client, g.params.round)));
    clipped += e.clipped;
    members.push_back({h.client, std::move(e.words)});
  }
  SecAggRoundOptions ro;
  ro.params = g.params;
  ro.dropout_before_masking = options_.secagg.dropout_before_masking;
  ro.dropout_after_masking = options_.secagg.dropout_after_masking;
  ro.seed = seed64_;
  COHORT_ASSIGN_OR_RETURN(SecAggRoundResult r, run_secagg_round(ro, members));
  r.clipped = clipped;
  return r;
}

Status PrivacyRuntime::finish_secagg(ModelVersion version, int64_t group, std::span<float> mean,
                                     const std::string& strategy, double* unclipped) {
  const auto n = static_cast<int64_t>(held_.size());
  const int64_t m = static_cast<int64_t>(mean.size());
  const std::string round = "secure aggregation of group " + std::to_string(groups_);
  if (n < 3) {
    return Status::failed_precondition(round + ": needs at least 3 updates (a sum of two "
                                       "reveals each to the other), got " + std::to_string(n));
  }
  // Without DP the group's weighted mean: each client scales its update by w / w_max (the
  // weights, num_examples, reach the server in the clear anyway).
  double w_max = 0;
  for (const Held& h : held_) w_max = std::max(w_max, h.weight);
  if (!(w_max > 0)) w_max = 1;
  const bool dp = options_.dp.enabled();
  secagg::FixedPoint fp{secagg_range(), options_.secagg.input_bits};
  secagg::Params params;
  params.round = static_cast<uint64_t>(groups_);
  // SecAgg+ neighbourhoods only when smaller than the group; else everyone's a neighbour.
  params.neighbours = options_.secagg.neighbours < n - 1 ? options_.secagg.neighbours : 0;
  params.threshold = secagg_threshold(n);
  params.bits = options_.secagg.bits > 0 ? options_.secagg.bits
                                         : secagg::FixedPoint::required_bits(fp.input_bits, n);
  params.length = m + 1;  // the update, then the unclipped bit (a plain integer)
  const privacy::NoiseSeed graph = privacy::derive_seed(seed64_ + params.round, "secagg_graph");
  std::copy(graph.begin(), graph.end(), params.graph_seed.begin());
  COHORT_RETURN_IF_ERROR(fp.validate(params.bits, n).with_context(round));

  SecAggGroup g;
  g.params = params;
  g.fixed_point = fp;
  for (const Held& h : held_) g.members.push_back({h.client, dp ? 1.0 : h.weight / w_max});
  std::sort(g.members.begin(), g.members.end(),
            [](const SecAggGroup::Member& a, const SecAggGroup::Member& b) {
              return a.client < b.client;
            });
  Result<SecAggRoundResult> r =
      transport_ != nullptr ? transport_->run(g) : run_in_process(g);
  if (!r.ok()) return r.error().with_context(round);
  const auto included = static_cast<int64_t>(r->included.size());
  // The clients' distributed noise adds up to sigma^2 only over at least min_included of the
  // planned group: a smaller sum is not released.
  if (dp) {
    const int64_t need = min_included(std::max<int64_t>(group_size_ > 0 ? group_size_ : n, 3));
    if (included < need) {
      return Status::failed_precondition(
          round + ": only " + std::to_string(included) + " inputs in the sum, fewer than the " +
          std::to_string(need) + " whose distributed noise makes up the DP noise; not released");
    }
  }
  const uint32_t bit_sum = r->sum.back();
  r->sum.pop_back();
  COHORT_ASSIGN_OR_RETURN(std::vector<float> sum, fp.decode(r->sum, params.bits, included));
  if (dp) {
    // The clients added the noise; the fixed denominator as without secure aggregation.
    ops::copy(sum, mean);
    ops::scale(mean, static_cast<float>(1.0 / static_cast<double>(group)));
  } else {
    double w = 0;
    for (const Held& h : held_) {
      if (std::binary_search(r->included.begin(), r->included.end(), h.client)) w += h.weight;
    }
    ops::copy(sum, mean);
    ops::scale(mean, static_cast<float>(w_max / w));
  }
  *unclipped = static_cast<double>(bit_sum);
  // What a client sends as plaintext: input_bits per coordinate.
  const double plain = static_cast<double>(m) * fp.input_bits / 8.0;
  Json ev = {{"event", "secagg"},
             {"strategy", strategy},
             {"version", version + 1},
             {"members", n},
             {"included", included},
             {"dropped", r->dropped},
             {"dropped_after_masking", r->silent},
             {"threshold", params.threshold},
             {"neighbours", params.neighbour_count(n)},
             {"bits", params.bits},
             {"range", fp.range},
              {"bytes_to_server", r->bytes_to_server},
             {"bytes_from_server", r->bytes_from_server},
             {"bytes_per_client", static_cast<double>(r->bytes_to_server + r->bytes_from_server) /
                                      static_cast<double>(n)},
             {"expansion", static_cast<double>(r->bytes_to_server + r->bytes_from_server) /
                               static_cast<double>(n) / plain},
             {"rejected", r->rejections}};
  events_.emit(std::move(ev));
  return Status();
}

void PrivacyRuntime::clear() {
  if (transport_ != nullptr && !held_.empty()) {
    // Members whose round ran already know its outcome; the others learn theirs is dropped.
    std::vector<ClientId> clients;
    for (const Held& h : held_) clients.push_back(h.client);
    transport_->release(clients);
  }
  if (!sum_.empty()) ops::fill(sum_.flat(), 0.0f);
  count_ = 0;
  unclipped_ = 0;
  held_.clear();
}

Status PrivacyRuntime::io_state(StateIO& io, const ArrayRecord& model) {
  io.value("privacy.count", count_);
  io.value("privacy.unclipped", unclipped_);
  bool has_sum = !sum_.empty();
  io.value("privacy.has_sum", has_sum);
  if (has_sum) {
    if (sum_.empty()) sum_ = ArrayRecord(model.layout());
    io.array("privacy.sum", sum_);
  }
  // Secure aggregation's group in progress: the updates its client sessions hold.
  std::vector<ClientId> clients;
  std::vector<double> weights;
  std::vector<int64_t> bits;
  for (const Held& h : held_) {
    clients.push_back(h.client);
    weights.push_back(h.weight);
    bits.push_back(h.unclipped ? 1 : 0);
  }
  io.value("privacy.held_clients", clients);
  io.value("privacy.held_weights", weights);
  io.value("privacy.held_unclipped", bits);
  if (io.loading()) {
    if (clients.size() != weights.size() || clients.size() != bits.size()) {
      io.fail(Status::data_loss("privacy: checkpoint's held group is inconsistent"));
      return io.status();
    }
    held_.clear();
    for (size_t i = 0; i < clients.size(); ++i) {
      held_.push_back({clients[i], weights[i], bits[i] != 0, {}});
    }
  }
  // With a transport the clients hold their updates: only who they are is the server's.
  for (size_t i = 0; transport_ == nullptr && i < held_.size(); ++i) {
    ArrayRecord r(model.layout());
    if (!io.loading()) std::copy(held_[i].values.begin(), held_[i].values.end(), r.data());
    io.array("privacy.held." + std::to_string(i), r);
    if (io.loading()) held_[i].values.assign(r.flat().begin(), r.flat().end());
  }
  return io.status();
}

std::optional<int64_t> PrivacyRuntime::masked_input_bytes(int64_t numel) const {
  if (!options_.secagg.enabled) return std::nullopt;
  const int64_t n = std::max<int64_t>(group_size_, 3);
  const int bits = options_.secagg.bits > 0
                       ? options_.secagg.bits
                       : secagg::FixedPoint::required_bits(options_.secagg.input_bits, n);
  // Header (version, kind, round), sender, bits, length; then the packed words.
  constexpr int64_t kHeader = 10 + 8 + 1 + 8;
  return kHeader + ((numel + 1) * bits + 7) / 8;
}

void PrivacyRuntime::annotate(Task& task) const {
  if (!options_.dp.enabled() || options_.dp.side != "client") return;
  double stddev = 0;
  if (options_.secagg.enabled) {
    // Distributed noise: no sum of fewer than t clients is ever released (finish_secagg
    // refuses it), so each adds variance sigma^2 / t and the sum carries at least sigma^2.
    const int64_t t = min_included(std::max<int64_t>(group_size_, 3));
    stddev = z_update_ * clip_ / std::sqrt(static_cast<double>(t));
  }
  set_task_dp(task.config, clip_, stddev);
}

std::string PrivacyRuntime::exhausted_reason() const {
  return "privacy budget: epsilon " + format_number(epsilon_) + " spent, the next commit would "
         "exceed target_epsilon " + format_number(options_.dp.target_epsilon.value_or(0.0)) +
         " at delta " + format_number(options_.dp.delta);
}

void PrivacyRuntime::fill(RunSummary& summary) const {
  summary.secagg_groups = secagg_groups_;
  summary.secagg_failed = secagg_failed_;
  if (!options_.dp.enabled()) return;
  summary.epsilon = epsilon_;
  summary.delta = options_.dp.delta;
  summary.noise_multiplier = z_;
  summary.clip_norm = clip_;
}

Json PrivacyRuntime::state() const {
  return {{"orders", accountant_.orders()}, {"rdp", accountant_.rdp()},
          {"steps", accountant_.steps()},   {"clip_norm", clip_},
          {"groups", groups_},              {"epsilon", epsilon_},
          {"order", order_},                {"exhausted", exhausted_},
          {"secagg_groups", secagg_groups_}, {"secagg_failed", secagg_failed_}};
}

Status PrivacyRuntime::restore(const Json& s) {
  const std::string where = "privacy state in the checkpoint";
  try {
    Status a = accountant_.restore(s.at("orders").get<std::vector<double>>(),
                                   s.at("rdp").get<std::vector<double>>(),
                                   s.at("steps").get<int64_t>());
    if (!a.ok()) return Status::data_loss(where + ": " + a.message());
    clip_ = s.at("clip_norm").get<double>();
    groups_ = s.at("groups").get<int64_t>();
    epsilon_ = s.at("epsilon").get<double>();
    order_ = s.at("order").get<double>();
    exhausted_ = s.at("exhausted").get<bool>();
    secagg_groups_ = s.value("secagg_groups", int64_t{0});
    secagg_failed_ = s.value("secagg_failed", int64_t{0});
  } catch (const std::exception& e) {
    return Status::data_loss(where + ": " + e.what());
  }
  if (!(clip_ > 0 && std::isfinite(clip_))) {
    return Status::data_loss(where + ": clip_norm must be > 0");
  }
  return Status();
}

}  // namespace cohort::runtime
