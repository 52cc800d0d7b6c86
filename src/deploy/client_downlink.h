// What `cohort join` keeps for delta downlink (compression.downlink_delta, runtime/downlink.h):
// the model as it last downloaded it (before training), with its version and hash, so that the
// next download is the changes since then. In memory only: a restarted client names nothing and
// downloads the whole model once. Internal to cohort_deploy.
//
// Thread safety: one client's object, used by its session thread.
#pragma once

#include <optional>
#include <string_view>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/v1/fleet.pb.h"

namespace cohort::deploy {

class HeldModel {
 public:
  // Names the held model in the request (nothing when none is held).
  void describe(v1::PullTaskRequest* req) const;
  // The model task `t` trains from, given what its MODEL download brought: the delta payloads
  // laid end to end (`payloads`) when `t` names model_delta_from, else the whole model
  // (`whole`). Keeps the result when `t` says model_delta. DataLoss naming what was wrong for
  // changes from a version this client does not hold, a damaged payload, or a result whose
  // hash is not t.model_hash(); what was held is then dropped (the next download is whole).
  Result<ArrayRecord> receive(const v1::PullTaskReply& t, std::string_view payloads,
                              ArrayRecord whole);
  bool holds() const { return model_.has_value(); }

 private:
  std::optional<ArrayRecord> model_;
  ModelVersion version_ = 0;
  uint64_t hash_ = 0;
};

}  // namespace cohort::deploy
