#include "cohort/runtime/downlink.h"

#include <algorithm>

#include "cohort/core/ops.h"
#include "cohort/runtime/compression.h"

namespace cohort::runtime {

DownlinkDeltas::DownlinkDeltas(std::shared_ptr<const codec::Chain> chain, int64_t history,
                               uint64_t run_seed)
    : chain_(std::move(chain)), history_(std::max<int64_t>(1, history)), run_seed_(run_seed) {}

Status DownlinkDeltas::advance(ModelVersion version, const ArrayRecord& model) {
  if (held_ == nullptr) {
    held_ = std::make_shared<const ArrayRecord>(model.clone());
    version_ = version;
    hash_ = held_->hash();
    return Status();
  }
  if (version <= version_) return Status();
  COHORT_RETURN_IF_ERROR(held_->check_same_layout(model, "model"));
  const std::vector<int64_t> offsets = codec::segment_offsets(*model.layout());
  ArrayRecord next = held_->clone();
  std::vector<float> delta(static_cast<size_t>(model.numel()));
  ops::sub(model.flat(), held_->flat(), delta);
  COHORT_ASSIGN_OR_RETURN(std::string payload,
                          chain_->encode(delta, offsets, downlink_seed(run_seed_, version)));
  COHORT_RETURN_IF_ERROR(apply(*chain_, payload, next, "downlink delta"));
  steps_.push_back(Step{version_, hash_, std::make_shared<const std::string>(std::move(payload))});
  while (static_cast<int64_t>(steps_.size()) > history_) steps_.pop_front();
  held_ = std::make_shared<const ArrayRecord>(std::move(next));
  version_ = version;
  hash_ = held_->hash();
  return Status();
}

DownlinkDeltas::Plan DownlinkDeltas::plan(const std::optional<Held>& held) const {
  Plan p;
  p.bytes = held_ ? held_->num_bytes() : 0;
  if (!held || held_ == nullptr) return p;
  if (held->version == version_ && held->hash == hash_) {
    p.full = false;
    p.bytes = 0;
    return p;
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].from != held->version || steps_[i].from_hash != held->hash) continue;
    p.full = false;
    p.bytes = 0;
    for (size_t j = i; j < steps_.size(); ++j) {
      p.payloads.push_back(steps_[j].payload);
      p.bytes += static_cast<int64_t>(steps_[j].payload->size());
    }
    return p;
  }
  return p;
}

Result<DownlinkDeltas::Start> DownlinkDeltas::start(
    ModelVersion version, const std::shared_ptr<const ArrayRecord>& model,
    const std::optional<Held>& held) {
  Start s;
  if (held_ != nullptr && version < version_) {
    s.model = model;
    s.plan.bytes = model->num_bytes();
    return s;
  }
  COHORT_RETURN_IF_ERROR(advance(version, *model));
  s.model = held_;
  s.plan = plan(held);
  s.holds = Held{version_, hash_};
  return s;
}

Status DownlinkDeltas::apply(const codec::Chain& chain, std::string_view payload,
                             ArrayRecord& model, const std::string& what) {
  const std::vector<int64_t> offsets = codec::segment_offsets(*model.layout());
  Status s = chain.fold(payload, offsets, 1.0f, model.flat());
  if (!s.ok()) return s.with_context(what);
  return Status();
}

}  // namespace cohort::runtime
