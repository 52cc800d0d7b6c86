// Compression settings of a run (the YAML `compression:` section, docs/compression.md) and
// the steps both runtimes take with them, written once:
//   - uplink: a client encodes its update's delta with the uplink chain (error feedback through
//     a residual it keeps across its tasks), the server decodes it; the bytes counted (and in
//     the simulator, timed) are the payload's;
//   - downlink: the server encodes each model version once with the downlink chain; a client
//     trains from the decoded model and its delta is relative to it. With downlink_delta the
//     chain carries the model's change since the version the client holds (downlink.h).
// Randomness (stochastic rounding, random-k) is seeded by (run seed, direction, client, task)
// or (run seed, version): simulations stay reproducible and a deployment repeats a
// simulation's draws.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/codec/codec.h"
#include "cohort/core/array_record.h"
#include "cohort/core/fragments.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort::runtime {

struct CompressionOptions {
  std::string uplink = "none";
  std::string downlink = "none";
  // Send the change since the version a client holds instead of the model (downlink.h), and
  // how many versions' changes the server keeps.
  bool downlink_delta = false;
  int64_t downlink_history = 4;
  // InvalidArgument naming the key: a chain that does not parse, a sparsifier on a downlink
  // that sends the model (it would send part of it), downlink_delta without a downlink chain,
  // or a history below 1.
  Status validate() const;
};

// The parsed chains; null for "none".
struct Compression {
  std::shared_ptr<const codec::Chain> uplink;
  std::shared_ptr<const codec::Chain> downlink;
  bool downlink_delta = false;
  int64_t downlink_history = 4;
  static Result<Compression> create(const CompressionOptions& options);
  bool any() const { return uplink || downlink; }
};

// The seed of a task's uplink encoding, and of a model version's downlink encoding.
uint64_t uplink_seed(uint64_t run_seed, ClientId client, int64_t task);
uint64_t downlink_seed(uint64_t run_seed, ModelVersion version);

// Client side of the uplink: encodes `delta` (error feedback through `residual` when the chain
// has it; may be null) and replaces `delta` by exactly what the server will decode. Returns
// the payload.
Result<std::string> encode_in_place(const codec::Chain& chain, ArrayRecord& delta, uint64_t seed,
                                    std::vector<float>* residual);
// The same for an update that carries fragment `p` of `fragments` only (Streaming DiLoCo,
// trainer/streaming.h): the fragment's values are encoded as one segment, `delta` becomes zero
// outside the fragment and what the server decodes inside it; the residual (model-sized, empty
// = zeros) advances on the fragment only.
Result<std::string> encode_fragment_in_place(const codec::Chain& chain, ArrayRecord& delta,
                                             const Fragments& fragments, int64_t p,
                                             uint64_t seed, std::vector<float>* residual);

// A model as it goes down the downlink chain: the payload and, with `decode`, the record a
// client trains from (the server itself needs only the payload).
struct DownlinkModel {
  std::shared_ptr<const ArrayRecord> model;
  std::shared_ptr<const std::string> payload;
};
Result<DownlinkModel> encode_model(const codec::Chain& chain, const ArrayRecord& model,
                                   uint64_t seed, bool decode = true);

}  // namespace cohort::runtime
