#include "cohort/strategy/state_io.h"

namespace cohort {

StateIO StateIO::saver(StrategyState* out, std::string owner) {
  return StateIO(out, std::move(owner), false);
}

StateIO StateIO::loader(StrategyState* in, std::string owner) {
  return StateIO(in, std::move(owner), true);
}

const Json* StateIO::find_scalar(const std::string& key) {
  if (!state_->scalars.is_object() || !state_->scalars.contains(key)) {
    fail(Status::data_loss(owner_ + ": checkpoint has no \"" + key + "\""));
    return nullptr;
  }
  return &state_->scalars[key];
}

void StateIO::array(const std::string& key, ArrayRecord& v) {
  if (!loading_) {
    save_array(key, v);
  } else {
    ArrayRecord r = take_array(key, v.empty() ? nullptr : &v);
    if (status_.ok()) v = std::move(r);
  }
}

void StateIO::shared_array(const std::string& key, std::shared_ptr<const ArrayRecord>& v) {
  if (!loading_) {
    if (v) {
      save_array(key, *v);
    } else {
      save_array(key, ArrayRecord());
    }
  } else {
    ArrayRecord r = take_array(key, v.get());
    if (status_.ok()) v = r.empty() ? nullptr : std::make_shared<const ArrayRecord>(std::move(r));
  }
}

// An empty array is a null scalar under its key; a present one lives in `arrays`.
void StateIO::save_array(const std::string& key, const ArrayRecord& v) {
  if (!status_.ok()) return;
  if (v.empty()) {
    state_->scalars[key] = nullptr;
  } else {
    state_->arrays.insert_or_assign(key, v.clone());
  }
}

ArrayRecord StateIO::take_array(const std::string& key, const ArrayRecord* like) {
  if (!status_.ok()) return {};
  auto it = state_->arrays.find(key);
  if (it == state_->arrays.end()) {
    if (state_->scalars.is_object() && state_->scalars.contains(key) &&
        state_->scalars[key].is_null()) {
      return {};
    }
    fail(Status::data_loss(owner_ + ": checkpoint has no array \"" + key + "\""));
    return {};
  }
  if (like != nullptr) {
    Status same = like->check_same_layout(it->second, "checkpointed " + key);
    if (!same.ok()) {
      fail(same.with_context(owner_));
      return {};
    }
  }
  Status finite = it->second.check_finite();
  if (!finite.ok()) {
    fail(Status::data_loss(owner_ + ": checkpointed " + key + ": " + finite.message()));
    return {};
  }
  ArrayRecord r = std::move(it->second);
  state_->arrays.erase(it);
  return r;
}

}  // namespace cohort
