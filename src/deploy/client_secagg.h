// Secure aggregation over gRPC, a client's side (docs/privacy.md; the server's side is
// secagg_coordinator.h). After pushing its update's header alone (UpdateHeader.secagg) the
// client keeps the update and calls SecAgg until the server says DONE or DROPPED: it waits for
// its group, makes its keys (ClientSession, secagg/protocol.h) when the round's SETUP comes,
// encodes its update with the round's fixed point (runtime/secagg.h) and answers each server
// message with the next protocol message. Only masked words and key material leave it.
// Internal to cohort_deploy.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/secagg/protocol.h"
#include "cohort/v1/fleet.grpc.pb.h"

namespace cohort::deploy {

struct SecAggParticipant {
  ClientId id = 0;                // the client id the server knows this token as
  int64_t task_id = 0;
  std::vector<float> update;      // the (clipped, noised) delta: scaled and encoded in place
  bool unclipped = true;          // adaptive clipping's bit
  // Test hook: may rewrite the protocol message of `stage` before it is sent.
  std::function<void(secagg::Stage stage, std::string& message)> tamper;
  // Test hook: stop answering (as a client that died) once `stage` is reached (-1: never).
  int vanish_at_stage = -1;
};

struct SecAggOutcome {
  bool included = false;  // the update is in a released sum
  std::string reason;     // why not
};

// Runs the client's part until the update's fate is known. `prepare` sets a call's token and
// deadline; `stop` is polled between calls. A refusal by the server (INVALID_ARGUMENT,
// FAILED_PRECONDITION) or a protocol error on this side ends it with included = false and the
// reason; a transport failure (UNAVAILABLE, ...) is returned as the error.
Result<SecAggOutcome> take_part_in_secagg(v1::Fleet::StubInterface& stub,
                                          const std::function<void(grpc::ClientContext*)>& prepare,
                                          SecAggParticipant participant,
                                          const std::function<bool()>& stop);

}  // namespace cohort::deploy

namespace cohort::deploy {

// Pushes `header` alone (secagg set) and, once the server holds the update for its group,
// takes part as above. A refused push ends with included = false and the server's reason.
Result<SecAggOutcome> push_withheld(v1::Fleet::StubInterface& stub,
                                    const std::function<void(grpc::ClientContext*)>& prepare,
                                    v1::UpdateHeader header, SecAggParticipant participant,
                                    const std::function<bool()>& stop);

}  // namespace cohort::deploy
