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

Status fold_delta(const Update& u, float a, std::span<float> y) {
  if (!u.delta_source) {
    ops::axpy(a, u.delta.flat(), y);
    return Status();
  }
  if (u.delta_source->numel() != static_cast<int64_t>(y.size())) {
    return Status::invalid_argument("streamed delta of " + std::to_string(u.delta_source->numel()) +
                                    " elements folded into " + std::to_string(y.size()));
  }
  return u.delta_source->replay([&](int64_t first, std::span<const float> v) {
    ops::axpy(a, v, y.subspan(static_cast<size_t>(first), v.size()));
    return Status();
  });
}

double delta_norm(const Update& u) {
  return u.delta_source ? u.delta_source->l2_norm() : ops::l2_norm(u.delta.flat());
}

float delta_max_abs(const Update& u) {
  return u.delta_source ? u.delta_source->max_abs() : ops::max_abs(u.delta.flat());
}

void scale_delta(Update& u, float s) {
  if (u.delta_source) {
    u.delta_source->scale(s);
  } else {
    ops::scale(u.delta.flat(), s);
  }
}

Status materialize_delta(Update& u, std::shared_ptr<const ArrayLayout> layout) {
  if (!u.delta_source) return Status();
  ArrayRecord d(std::move(layout));
  ops::fill(d.flat(), 0.0f);
  COHORT_RETURN_IF_ERROR(fold_delta(u, 1.0f, d.flat()));
  u.delta = std::move(d);
  u.delta_source.reset();
  return Status();
}

Status check_update(const Update& u, const ArrayRecord& model) {
  // Spelled out only for an error: this runs for every update.
  const auto who = [&u] {
    return "update from client " + std::to_string(u.client);
  };
  if (u.delta_source && u.delta.empty()) {
    // Layout checked and every value checked finite when the stream arrived.
    if (u.delta_source->numel() != model.numel()) {
      return Status::invalid_argument(who() + ": streamed delta has " +
                                      std::to_string(u.delta_source->numel()) +
                                      " elements, the model " + std::to_string(model.numel()));
    }
  } else {
    // (checked again for the error, to name the update)
    if (!model.check_same_layout(u.delta, "").ok()) return model.check_same_layout(u.delta, who());
    if (Status s = u.delta.check_finite(); !s.ok()) return s.with_context(who());
  }
  if (u.num_examples <= 0) {
    return Status::invalid_argument(who() + ": num_examples must be > 0, got " +
                                    std::to_string(u.num_examples));
  }
  if (u.local_steps < 0) {
    return Status::invalid_argument(who() + ": local_steps must be >= 0, got " +
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
  Status sane = host_->check_commit(*model_, next);
  if (!sane.ok()) {
    // The optimizer state already took the update that led here in: it goes too.
    for (ArrayRecord* state : optimizer_state_) {
      if (!state->empty()) ops::fill(state->flat(), 0.0f);
    }
    host_->on_commit_refused(sane.with_context(
        name() + ": version " + std::to_string(version_ + 1) +
        " fails the sanity check, so it is not committed and version " + std::to_string(version_) +
        " stands"));
    return false;
  }
  model_ = std::make_shared<const ArrayRecord>(std::move(next));
  ++version_;
  host_->on_commit(version_);
  return true;
}

Status StrategyBase::save_state(StrategyState* out) const {
  StateIO io = StateIO::saver(out, name());
  // Saving only reads: io_state is one function for both directions.
  COHORT_RETURN_IF_ERROR(const_cast<StrategyBase*>(this)->io_state(io));
  if (group_) COHORT_RETURN_IF_ERROR(group_->io_state(io, *model_));
  return io.status();
}

Status StrategyBase::restore_state(StrategyState state) {
  StateIO io = StateIO::loader(&state, name());
  COHORT_RETURN_IF_ERROR(io_state(io));
  if (group_) COHORT_RETURN_IF_ERROR(group_->io_state(io, *model_));
  return io.status();
}

Status StrategyBase::set_group_aggregation(std::shared_ptr<GroupAggregation> group,
                                           size_t num_clients) {
  std::optional<int64_t> n = group_size(num_clients);
  if (!n) {
    return Status::unimplemented(
        name() +
        " applies each update on its own: robust aggregation, privacy, colluding "
        "attacks (alie, ipm) and contribution estimates need a group of updates (a "
        "synchronous strategy, or fedbuff's buffer)");
  }
  COHORT_RETURN_IF_ERROR(group->check_group_size(*n).with_context(
      name() + " aggregates groups of " + std::to_string(*n) + " updates"));
  if (group->has_privacy() && num_clients > 0 && *n > static_cast<int64_t>(num_clients)) {
    // Under privacy a group holds at most one update per client (GroupAggregation::excluded).
    return Status::invalid_argument(
        name() + " aggregates groups of " + std::to_string(*n) + " updates, but " +
        std::to_string(num_clients) + " clients can fill a group with at most " +
        std::to_string(num_clients) +
        " (no client may contribute twice to one group); lower the group size (fedbuff: "
        "buffer_size) or add clients");
  }
  group_ = std::move(group);
  return Status();
}

Status StrategyBase::group_add(const Update& u, double w, std::span<float> sum) {
  if (!group_) return fold_delta(u, static_cast<float>(w), sum);
  return group_->add(u, w, sum, *model_);
}

Status StrategyBase::group_finish(std::span<float> sum) {
  if (!group_) return Status();
  const std::optional<int64_t> expected = group_size(host_->num_clients());
  return group_->finish(host_, name(), version_, *model_, sum, expected.value_or(0));
}

void StrategyBase::group_clear() {
  if (group_) group_->clear();
}

bool StrategyBase::group_excluded(ClientId id) const { return group_ && group_->excluded(id); }

bool StrategyBase::group_may_exclude() const { return group_ && group_->may_exclude(); }

Status StrategyBase::io_state(StateIO& /*io*/) {
  return Status::unimplemented(name() + ": checkpoints are not supported by this strategy");
}

Status StrategyBase::io_base_state(StateIO& io) {
  ModelVersion version = version_;
  io.value("version", version);
  // A copy of the model pointer: restoring replaces it only once everything checked out.
  std::shared_ptr<const ArrayRecord> model = model_;
  io.shared_array("model", model);
  if (io.loading() && io.status().ok()) {
    if (version < 0) {
      io.fail(Status::data_loss(name() + ": checkpoint version " + std::to_string(version) +
                                " < 0"));
      return io.status();
    }
    if (!model) {
      io.fail(Status::data_loss(name() + ": checkpoint has an empty \"model\""));
      return io.status();
    }
    model_ = std::move(model);
    version_ = version;
  }
  return io.status();
}

}  // namespace cohort
