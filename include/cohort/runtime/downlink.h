// Delta downlink (compression.downlink_delta, docs/compression.md#delta-downlink): instead of
// the whole model, a client receives the changes since the version it already holds.
//
// The server keeps the model as clients hold it, M^, and advances it once per version a task
// is handed out at:
//     payload = encode(M_t - M^)        (downlink chain, seed of version t, no residual)
//     M^     += decode(payload)         (Chain::fold with weight 1)
// so what the chain drops at one version is part of the next delta (error feedback on the
// server side: M^ stays within one encoding's error of the model, whatever the number of
// versions). A client that holds M^ at version v applies the payloads after v in order with
// the same arithmetic and holds M^ at t bit for bit; a client holding nothing, a version older
// than the kept history, or a model whose hash does not match receives M^ whole as float32.
// Written once for both runtimes: the simulator plans bytes with it, the server sends what it
// plans, `cohort join` applies the payloads. Not thread-safe (callers hold their lock).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/codec/codec.h"
#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort::runtime {

class DownlinkDeltas {
 public:
  // `history`: how many deltas are kept (>= 1); `run_seed` seeds the encodings per version.
  DownlinkDeltas(std::shared_ptr<const codec::Chain> chain, int64_t history, uint64_t run_seed);

  // Brings M^ to `version` of the server's `model`. The first call takes a copy of `model`
  // (clients need it whole anyway); a version not newer than the held one changes nothing.
  // InvalidArgument when `model`'s layout differs from the held one's.
  Status advance(ModelVersion version, const ArrayRecord& model);

  bool empty() const { return held_ == nullptr; }
  // M^ and its version and hash (ArrayRecord::hash); only when !empty().
  ModelVersion version() const { return version_; }
  const std::shared_ptr<const ArrayRecord>& model() const { return held_; }
  uint64_t hash() const { return hash_; }

  // What a client holding `held` (version and hash; nullopt = nothing) receives to hold M^:
  // nothing (it already does), the payloads after its version in order, or M^ whole.
  struct Held {
    ModelVersion version = 0;
    uint64_t hash = 0;
  };
  struct Plan {
    bool full = true;
    std::vector<std::shared_ptr<const std::string>> payloads;
    int64_t bytes = 0;  // what travels: the payloads' sizes, or M^ as float32
  };
  Plan plan(const std::optional<Held>& held) const;

  // For a task of `version` whose model is `model`: advances M^ to it when newer, then plans
  // for `held`. A task older than M^ (handed out before a commit, fetched after) gets its own
  // model whole and exact, and its client then holds no version of M^.
  struct Start {
    std::shared_ptr<const ArrayRecord> model;  // what the client trains from
    Plan plan;
    std::optional<Held> holds;  // what the client holds afterwards
  };
  Result<Start> start(ModelVersion version, const std::shared_ptr<const ArrayRecord>& model,
                      const std::optional<Held>& held);

  // Client side: adds one payload's decoded values to `model` (the arithmetic of advance()).
  // Errors as codec::Chain::decode, `what` naming the payload.
  static Status apply(const codec::Chain& chain, std::string_view payload, ArrayRecord& model,
                      const std::string& what);

 private:
  struct Step {
    ModelVersion from = 0;
    uint64_t from_hash = 0;
    std::shared_ptr<const std::string> payload;
  };
  std::shared_ptr<const codec::Chain> chain_;
  int64_t history_;
  uint64_t run_seed_;
  std::shared_ptr<const ArrayRecord> held_;
  ModelVersion version_ = 0;
  uint64_t hash_ = 0;
  std::deque<Step> steps_;  // oldest first; the last one ends at version_
};

}  // namespace cohort::runtime
