// StateIO: one description of a strategy's state, walked in both directions. A strategy lists
// its state once, in StrategyBase::io_state(StateIO&), and the same code saves it into a
// StrategyState (a checkpoint) and restores it from one:
//
//   Status FedBuff::io_state(StateIO& io) {
//     COHORT_RETURN_IF_ERROR(io_async_state(io));
//     io.array("buffer", buffer_);
//     io.value("buffer_count", count_);
//     return io.status();
//   }
//
// Saving copies; restoring moves the arrays out of the StrategyState and checks each against
// the array it replaces (same layout, finite values). The first problem (a missing key, a
// value of the wrong type, another layout) sticks: later calls do nothing and status() names
// it, as DataLoss or InvalidArgument with the strategy's name and the key.
//
// Thread safety: none; one StateIO per save or restore.
#pragma once

#include <memory>
#include <string>

#include "cohort/core/array_record.h"
#include "cohort/core/metrics.h"
#include "cohort/core/status.h"
#include "cohort/strategy/strategy.h"

namespace cohort {

class StateIO {
 public:
  // Saves into `out` (existing entries with the same keys are replaced).
  static StateIO saver(StrategyState* out, std::string owner);
  // Restores from `in`, whose arrays are moved out as they are read.
  static StateIO loader(StrategyState* in, std::string owner);

  bool loading() const { return loading_; }
  // The first problem, or OK.
  const Status& status() const { return status_; }
  // Records a problem found by the caller (restoring only makes sense as a whole).
  void fail(Status s) {
    if (status_.ok()) status_ = std::move(s);
  }

  // A value JSON can hold: numbers, bool, strings, and vectors, sets and maps of them.
  template <class T>
  void value(const std::string& key, T& v) {
    if (!status_.ok()) return;
    if (!loading_) {
      state_->scalars[key] = v;
      return;
    }
    const Json* j = find_scalar(key);
    if (j == nullptr) return;
    try {
      v = j->get<T>();
    } catch (const std::exception& e) {
      fail(Status::data_loss(owner_ + ": checkpoint entry \"" + key + "\": " + e.what()));
    }
  }

  // value() for an entry added after checkpoints were first written: restoring from one that
  // lacks it leaves `v` as it is.
  template <class T>
  void optional_value(const std::string& key, T& v) {
    if (loading_ && (!state_->scalars.is_object() || !state_->scalars.contains(key))) return;
    value(key, v);
  }

  // An array. Restoring: when `v` holds an array it must have the same layout; values must be
  // finite. An empty `v` is saved as such and restored as such.
  void array(const std::string& key, ArrayRecord& v);
  // An array shared with tasks (copy-on-write: a new record replaces it, never a write).
  void shared_array(const std::string& key, std::shared_ptr<const ArrayRecord>& v);

 private:
  StateIO(StrategyState* state, std::string owner, bool loading)
      : state_(state), owner_(std::move(owner)), loading_(loading) {}
  const Json* find_scalar(const std::string& key);
  void save_array(const std::string& key, const ArrayRecord& v);
  // The stored array `key` (empty if saved empty), checked against `like`'s layout when given.
  ArrayRecord take_array(const std::string& key, const ArrayRecord* like);

  StrategyState* state_;
  std::string owner_;
  bool loading_;
  Status status_;
};

}  // namespace cohort
