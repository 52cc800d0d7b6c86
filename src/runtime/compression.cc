#include "cohort/runtime/compression.h"

#include <algorithm>

#include "cohort/core/rng.h"

namespace cohort::runtime {

Status CompressionOptions::validate() const {
  return Compression::create(*this).status();
}

Result<Compression> Compression::create(const CompressionOptions& o) {
  Compression c;
  Result<std::shared_ptr<const codec::Chain>> up = codec::Chain::parse(o.uplink);
  if (!up.ok()) return up.error().with_context("compression.uplink");
  Result<std::shared_ptr<const codec::Chain>> down = codec::Chain::parse(o.downlink);
  if (!down.ok()) return down.error().with_context("compression.downlink");
  if ((*down)->sparse() && !o.downlink_delta) {
    return Status::invalid_argument(
        "compression.downlink: '" + (*down)->spec() +
        "' sparsifies, which would send only part of the model; sparsify the uplink, or send "
        "the model's changes (compression.downlink_delta: true)");
  }
  if (o.downlink_delta && (*down)->none()) {
    return Status::invalid_argument(
        "compression.downlink_delta: needs a downlink chain (compression.downlink is none)");
  }
  if (o.downlink_history < 1) {
    return Status::invalid_argument("compression.downlink_history: must be >= 1, got " +
                                    std::to_string(o.downlink_history));
  }
  c.downlink_delta = o.downlink_delta;
  c.downlink_history = o.downlink_history;
  if (!(*up)->none()) c.uplink = *up;
  if (!(*down)->none()) c.downlink = *down;
  return c;
}

uint64_t uplink_seed(uint64_t run_seed, ClientId client, int64_t task) {
  return Rng::mix_seed(run_seed, "uplink", static_cast<uint64_t>(client),
                       static_cast<uint64_t>(task));
}

uint64_t downlink_seed(uint64_t run_seed, ModelVersion version) {
  return Rng::mix_seed(run_seed, "downlink", static_cast<uint64_t>(version));
}

Result<std::string> encode_in_place(const codec::Chain& chain, ArrayRecord& delta, uint64_t seed,
                                    std::vector<float>* residual) {
  const std::vector<int64_t> offsets = codec::segment_offsets(*delta.layout());
  return chain.encode(delta.flat(), offsets, seed, residual, delta.flat());
}

Result<std::string> encode_fragment_in_place(const codec::Chain& chain, ArrayRecord& delta,
                                             const Fragments& fragments, int64_t p,
                                             uint64_t seed, std::vector<float>* residual) {
  const int64_t n = fragments.size(p);
  std::vector<float> part(static_cast<size_t>(n));
  fragments.gather(p, delta.flat(), part);
  std::vector<float> part_residual;
  const bool ef = residual != nullptr && chain.error_feedback();
  if (ef && !residual->empty()) {
    part_residual.resize(part.size());
    fragments.gather(p, *residual, part_residual);
  }
  const std::vector<int64_t> offsets = {0, n};
  COHORT_ASSIGN_OR_RETURN(std::string payload,
                          chain.encode(part, offsets, seed, ef ? &part_residual : nullptr, part));
  std::fill(delta.flat().begin(), delta.flat().end(), 0.0f);
  fragments.scatter(p, part, delta.flat());
  if (ef) {
    residual->resize(static_cast<size_t>(delta.numel()), 0.0f);
    if (!part_residual.empty()) fragments.scatter(p, part_residual, *residual);
  }
  return payload;
}

Result<DownlinkModel> encode_model(const codec::Chain& chain, const ArrayRecord& model,
                                   uint64_t seed, bool decode) {
  const std::vector<int64_t> offsets = codec::segment_offsets(*model.layout());
  if (!decode) {
    COHORT_ASSIGN_OR_RETURN(std::string payload, chain.encode(model.flat(), offsets, seed));
    return DownlinkModel{nullptr, std::make_shared<const std::string>(std::move(payload))};
  }
  ArrayRecord decoded(model.layout());
  COHORT_ASSIGN_OR_RETURN(std::string payload,
                          chain.encode(model.flat(), offsets, seed, nullptr, decoded.flat()));
  return DownlinkModel{std::make_shared<const ArrayRecord>(std::move(decoded)),
                       std::make_shared<const std::string>(std::move(payload))};
}

}  // namespace cohort::runtime
