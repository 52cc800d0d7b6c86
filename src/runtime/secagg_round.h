// Internal to cohort_runtime: one secure-aggregation round run in process between a
// ClientSession per group member and one ServerSession (secagg/protocol.h), as the simulator
// runs it: real keys, shares, ciphertexts and masks, every message's bytes counted, and
// dropouts drawn per client between the stages. The server side only ever sees the sessions'
// messages; the members' vectors stay with their client sessions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/runtime/secagg.h"
#include "cohort/secagg/params.h"

namespace cohort::runtime {

struct SecAggMember {
  ClientId client = 0;
  std::vector<uint32_t> words;  // the client's encoded input, params.length words
};

struct SecAggRoundOptions {
  secagg::Params params;
  // Probability that a member drops after ShareKeys (no masked input) / after its masked
  // input (no unmask response), drawn from `seed`.
  double dropout_before_masking = 0.0;
  double dropout_after_masking = 0.0;
  uint64_t seed = 0;
};

// Runs the round over `members` (distinct clients, at least 2). FailedPrecondition with the
// protocol's message when too few members are left at a stage.
Result<SecAggRoundResult> run_secagg_round(const SecAggRoundOptions& options,
                                           std::span<const SecAggMember> members);

}  // namespace cohort::runtime
