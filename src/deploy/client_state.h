// What `cohort join` keeps between its own tasks, and the file it keeps it in under
// --state-dir (a checkpoint file, runtime/checkpoint.h, of "client-state": the client id and
// the arrays below when they exist). Internal to cohort_deploy.
//
// Thread safety: plain values and functions.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/trainer/streaming.h"

namespace cohort::deploy {

struct ClientKeptState {
  ArrayRecord client_state;        // "client_state": SCAFFOLD's c_i
  std::vector<float> ef_residual;  // "ef_residual": what the uplink payloads have not carried
  ArrayRecord optimizer_state;     // "optimizer_state": e.g. DiLoCo's inner AdamW moments
  // "kept_local", "kept_anchor" and the runtime value "kept_round": Streaming DiLoCo's own
  // model (trainer/streaming.h).
  KeptModel kept_model;

  bool empty() const {
    return client_state.empty() && ef_residual.empty() && optimizer_state.empty() &&
           kept_model.empty();
  }
  // "error-feedback residual, c_i, optimizer state, kept model" (what is held).
  std::string describe() const;
};

// The state saved in `dir` for client `id`. NotFound when nothing was saved; DataLoss for an
// unreadable file; InvalidArgument for another client's state or a residual whose layout is
// not `layout`.
Result<ClientKeptState> load_client_state(const std::string& dir, ClientId id,
                                          const std::shared_ptr<const ArrayLayout>& layout);
// Writes `s` atomically (nothing when it is empty).
Status save_client_state(const std::string& dir, ClientId id,
                         const std::shared_ptr<const ArrayLayout>& layout,
                         const ClientKeptState& s);

}  // namespace cohort::deploy
