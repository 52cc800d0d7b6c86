// Update admission: what every arriving update must pass before a strategy sees it, in both
// runtimes. The deployment runs it on the gRPC handler thread that assembled the update (in
// parallel, outside the server's lock); the simulator on its loop thread. Later stages (codec
// decoding, robust and privacy wrappers) see only admitted updates.
//
// Structural checks (admit_update), each an error naming the client and what was wrong:
//   FailedPrecondition  the update's base_version is not the version its task started from
//   InvalidArgument     a state_delta without a task server_state, or the other way round,
//                       or one whose layout differs from the server state's, or NaN / Inf in it
//   InvalidArgument     check_update (strategy.h): the delta's layout and finiteness (naming
//                       the array), num_examples <= 0, local_steps < 0
// Bounds (Admission::admit, configured by AdmissionOptions, the YAML `admission:` section):
//   - claimed examples: at most max_examples_factor x the examples the client registered (in
//     the simulator its shard); a client that registered none may claim at most that factor x
//     the median of the others' registered counts; never more than max_examples (if set);
//   - client-supplied sizes: local_steps at most max_steps_factor x the task's, at most
//     max_metrics metrics with keys of at most max_metric_key_bytes and finite values;
//   - the update's L2 norm: at most norm_factor x the median norm of the last norm_window
//     accepted updates once norm_warmup were accepted; before, with warmup_bound "model", at
//     most norm_factor x the L2 norm of the model the task started from (if not zero); always
//     at most max_norm (if set); every element at most max_abs_weight in magnitude. Beyond
//     it the policy decides: reject the update, clip it to the bound, or down-weight it (its
//     examples scaled by bound / norm). Counted per client (ClientStats).
// A whole-model check follows in StrategyBase::commit: a commit that would make the global
// model non-finite is refused, the update that caused it is rejected, the model stands.
//
// Thread safety: admit_update is a pure function. Admission's methods may be called from any
// thread (an internal mutex guards the norm window).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/strategy/strategy.h"

namespace cohort {

// `task` is the task the update answers (its model has the global model's layout).
Status admit_update(const Update& update, const Task& task);

struct AdmissionOptions {
  double max_examples_factor = 1.0;
  int64_t max_examples = 0;  // 0 = no absolute cap
  std::string norm_policy = "reject";  // off | reject | clip | downweight
  double norm_factor = 10.0;
  int64_t norm_window = 50;
  int64_t norm_warmup = 5;
  // Before the window is warm: "model" bounds the norm by norm_factor x the norm of the
  // task's model (an honest update moves a model by a fraction of its size; an all-zero model
  // has no bound), "none" leaves only max_norm.
  std::string warmup_bound = "model";
  double max_norm = 0.0;  // 0 = no absolute bound
  double max_steps_factor = 1.0;
  int64_t max_metrics = 32;
  int64_t max_metric_key_bytes = 64;
  // Sanity of a model about to be committed (besides being finite): no weight beyond
  // max_abs_weight in absolute value (0 = no bound), and an L2 norm at most max_model_growth x
  // max(the current model's, 1) (0 = no bound). A commit beyond either is refused like a
  // non-finite one.
  double max_abs_weight = 1e6;
  double max_model_growth = 0.0;
  // InvalidArgument naming the key ("admission.norm_factor: must be >= 1, got 0.5").
  Status validate() const;
};

// What the client is known to hold, for the examples bound.
struct AdmissionContext {
  int64_t registered_examples = 0;  // what the client registered (0 = unknown)
  // The median of every client's registered count (0 = none); filled only when
  // registered_examples is 0, the one case that uses it.
  int64_t typical_examples = 0;
};

// What admission did to an accepted update.
struct AdmissionOutcome {
  double norm = 0.0;          // the update's L2 norm after clipping
  bool clipped = false;       // norm_policy clip scaled it down
  bool downweighted = false;  // norm_policy downweight scaled its examples down
};

class Admission {
 public:
  explicit Admission(AdmissionOptions options = {});
  // The structural checks, then the bounds above. May modify `update` (clip, down-weight).
  // A non-OK Status rejects the update (InvalidArgument naming the bound, the value and the
  // client), the norm window unchanged.
  Status admit(Update& update, const Task& task, const AdmissionContext& ctx,
               AdmissionOutcome* outcome) const;
  // The strategy accepted an update of this norm: it joins the window.
  void record_accepted(double norm);
  // The norm window and the count of accepted updates, for checkpoints.
  struct Window {
    std::vector<double> recent_norms;
    int64_t accepted = 0;
  };
  Window window() const;
  void restore_window(Window w);
  // The current norm bound (infinity when none applies) for an update of a task whose model
  // has L2 norm `model_norm` (used until the window is warm; 0 = no model-relative bound).
  double norm_bound(double model_norm = 0) const;
  // Whether norm_warmup updates were accepted (the bound follows recent updates).
  bool warm() const;
  const AdmissionOptions& options() const { return options_; }

 private:
  double norm_bound_locked(double model_norm) const;
  // The L2 norm of `model`, computed once per model version (every task of a round shares
  // its model, and a 100 MB model's norm is ~20 ms on the loop).
  double norm_of_model(const std::shared_ptr<const ArrayRecord>& model) const;

  AdmissionOptions options_;
  mutable std::mutex mu_;
  mutable std::mutex norm_mu_;  // held while a model's norm is computed (norm_of_model)
  mutable std::weak_ptr<const ArrayRecord> normed_model_;  // whose norm normed_value_ is
  mutable double normed_value_ = 0;
  std::deque<double> recent_norms_;
  mutable std::vector<double> median_scratch_;  // norm_bound_locked's copy of the window
  int64_t accepted_ = 0;
};

}  // namespace cohort
