#include "cohort/strategy/strategy_base.h"

#include "cohort/core/ops.h"

namespace cohort {

Status StrategyBase::start(StrategyHost* host, ArrayRecord initial) {
  if (host == nullptr) return Status::invalid_argument(name() + ": null host");
  if (initial.empty() || initial.numel() == 0) {
    return Status::invalid_argument(name() + ": initial model is empty");
  }
  COHORT_RETURN_IF_ERROR(initial.check_finite().with_context(name() + ": initial model"));
  host_ = host;
  model_ = std::make_shared<const ArrayRecord>(std::move(initial));
  version_ = 0;
  return on_start();
}

Status check_update(const Update& u, const ArrayRecord& model) {
  const std::string who = "update from client " + std::to_string(u.client);
  COHORT_RETURN_IF_ERROR(model.check_same_layout(u.delta, who));
  COHORT_RETURN_IF_ERROR(u.delta.check_finite().with_context(who));
  if (u.num_examples <= 0) {
    return Status::invalid_argument(who + ": num_examples must be > 0, got " +
                                    std::to_string(u.num_examples));
  }
  if (u.local_steps < 0) {
    return Status::invalid_argument(who + ": local_steps must be >= 0, got " +
                                    std::to_string(u.local_steps));
  }
  return Status();
}

Status StrategyBase::validate_update(const Update& u) const {
  COHORT_RETURN_IF_ERROR(check_update(u, *model_));
  if (u.base_version < 0 || u.base_version > version_) {
    const std::string who = "update from client " + std::to_string(u.client);
    return Status::failed_precondition(who + ": base version " + std::to_string(u.base_version) +
                                       " does not exist (current " + std::to_string(version_) +
                                       ")");
  }
  return Status();
}

bool StrategyBase::commit(ArrayRecord next) {
  Status sane = next.check_finite();
  if (!sane.ok()) {
    for (ArrayRecord* state : optimizer_state_) {
      if (!state->empty() && !state->check_finite().ok()) ops::fill(state->flat(), 0.0f);
    }
    host_->on_commit_refused(sane.with_context(
        name() + ": version " + std::to_string(version_ + 1) +
        " would not be finite, so it is not committed and version " + std::to_string(version_) +
        " stands"));
    return false;
  }
  model_ = std::make_shared<const ArrayRecord>(std::move(next));
  ++version_;
  host_->on_commit(version_);
  return true;
}

void StrategyBase::save_base_state(StrategyState* out) const {
  out->scalars["version"] = version_;
  out->arrays.insert_or_assign("model", model_->clone());
}

Status StrategyBase::restore_base_state(StrategyState& state) {
  if (!state.scalars.contains("version") || !state.scalars["version"].is_number_integer()) {
    return Status::data_loss(name() + ": checkpoint has no integer \"version\"");
  }
  auto it = state.arrays.find("model");
  if (it == state.arrays.end()) return Status::data_loss(name() + ": checkpoint has no \"model\"");
  COHORT_RETURN_IF_ERROR(model_->check_same_layout(it->second, "checkpointed model"));
  COHORT_RETURN_IF_ERROR(it->second.check_finite().with_context("checkpointed model"));
  const auto v = state.scalars["version"].get<int64_t>();
  if (v < 0)
    return Status::data_loss(name() + ": checkpoint version " + std::to_string(v) + " < 0");
  model_ = std::make_shared<const ArrayRecord>(std::move(it->second));
  version_ = v;
  return Status();
}

Status StrategyBase::take_state_array(StrategyState& state, const std::string& key,
                                      ArrayRecord* dst) const {
  auto it = state.arrays.find(key);
  if (it == state.arrays.end()) {
    return Status::data_loss(name() + ": checkpoint has no array \"" + key + "\"");
  }
  COHORT_RETURN_IF_ERROR(dst->check_same_layout(it->second, "checkpointed " + key));
  COHORT_RETURN_IF_ERROR(it->second.check_finite().with_context("checkpointed " + key));
  *dst = std::move(it->second);
  state.arrays.erase(it);
  return Status();
}

}  // namespace cohort
