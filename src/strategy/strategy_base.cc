#include "cohort/strategy/strategy_base.h"

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

Status StrategyBase::validate_update(const Update& u) const {
  const std::string who = "update from client " + std::to_string(u.client);
  COHORT_RETURN_IF_ERROR(model_->check_same_layout(u.delta, who));
  COHORT_RETURN_IF_ERROR(u.delta.check_finite().with_context(who));
  if (u.num_examples <= 0) {
    return Status::invalid_argument(who + ": num_examples must be > 0, got " +
                                    std::to_string(u.num_examples));
  }
  if (u.local_steps < 0) {
    return Status::invalid_argument(who + ": local_steps must be >= 0, got " +
                                    std::to_string(u.local_steps));
  }
  if (u.base_version < 0 || u.base_version > version_) {
    return Status::failed_precondition(who + ": base version " + std::to_string(u.base_version) +
                                       " does not exist (current " + std::to_string(version_) +
                                       ")");
  }
  return Status();
}

void StrategyBase::commit(ArrayRecord next) {
  model_ = std::make_shared<const ArrayRecord>(std::move(next));
  ++version_;
  host_->on_commit(version_);
}

}  // namespace cohort
