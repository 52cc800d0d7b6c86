// Secure aggregation of one aggregation group, as the runtime sets it up for either host
// (docs/privacy.md, "Secure aggregation"; the protocol itself is cohort/secagg/protocol.h):
//   - SecAggGroup: what every member must agree on before the round starts (the protocol's
//     parameters, the fixed-point code, the members and the factor each scales its update by);
//   - encode_secagg_input: how a member turns its update into the words it masks, written once
//     for the simulator's in-process members and a deployed client;
//   - SecAggTransport: who runs the round when the members are remote (cohort serve: the
//     clients hold their updates and the server only ever sees protocol messages). Without one
//     the runtime runs the round in process between one client session per member.
//
// Thread safety: plain values; a transport is called from the runtime's thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cohort/core/status.h"
#include "cohort/core/types.h"
#include "cohort/secagg/params.h"

namespace cohort::runtime {

struct SecAggGroup {
  // length = the model's parameters + 1: the update's words, then the member's "unclipped" bit
  // as a plain 0/1 word (adaptive clipping needs only their sum).
  secagg::Params params;
  secagg::FixedPoint fixed_point;
  struct Member {
    ClientId client = 0;
    // The member multiplies its update by this before encoding: w / w_max without DP (the
    // group's weighted mean, the weights being public), 1 with DP (clipped updates, a fixed
    // denominator).
    double scale = 1.0;
  };
  std::vector<Member> members;  // distinct clients, increasing
};

// A member's input words: `values` scaled in place by `scale`, then encoded with the round's
// fixed point for a sum of `members` inputs (stochastic rounding from `seed`), then the
// unclipped bit. InvalidArgument for a NaN value, a length other than params.length - 1, or a
// round the fixed point cannot sum.
Result<secagg::FixedPoint::Encoded> encode_secagg_input(const secagg::Params& params,
                                                        const secagg::FixedPoint& fixed_point,
                                                        int64_t members, std::span<float> values,
                                                        double scale, bool unclipped,
                                                        uint64_t seed);

// What a round returned.
struct SecAggRoundResult {
  std::vector<uint32_t> sum;          // over `included`, mod 2^bits
  std::vector<ClientId> included;     // U3: members whose input is in the sum
  std::vector<ClientId> dropped;      // members not in the sum
  std::vector<ClientId> silent;       // in the sum, but gone before unmasking
  uint64_t bytes_to_server = 0;       // every client -> server protocol message
  uint64_t bytes_from_server = 0;     // every server -> client protocol message
  uint64_t masked_input_bytes = 0;    // the MaskedInput messages alone
  int64_t rejections = 0;             // messages the server refused
  int64_t clipped = -1;               // values clipped to the range (-1: not known here)
};

class SecAggTransport {
 public:
  virtual ~SecAggTransport() = default;
  // Runs `group`'s round with its members, who hold their inputs. FailedPrecondition when too
  // few members remain at a stage (the message names the stage); Unavailable when the host is
  // shutting down. Every member learns the outcome.
  virtual Result<SecAggRoundResult> run(const SecAggGroup& group) = 0;
  // These clients' updates were held for a group that is dropped before its round ran (a new
  // round began): tell them their inputs will not be aggregated.
  virtual void release(std::span<const ClientId> clients) = 0;
};

}  // namespace cohort::runtime
