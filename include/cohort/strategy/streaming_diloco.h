// Streaming DiLoCo (Douillard et al., "Streaming DiLoCo with overlapping communication:
// Towards a Distributed Free Lunch", arXiv:2501.18512, 2025; docs/strategies.md,
// "streaming_diloco").
//
// DiLoCo with the model split into P fragments (core/fragments.h: blocks of the flat vector
// assigned to fragments in turn) that are synchronised one at a time on a staggered schedule:
// every round is H/P inner steps and synchronises fragment p = round mod P, so each fragment is
// synchronised every H steps, fragment p at an offset of p H/P steps, and what travels at once
// is a P-th of the model (peak bandwidth / P). The workers keep their own models between rounds
// (trainer/streaming.h): a round's task tells each worker which fragment to return and which
// fragment of the task's model (the one the previous round updated) to merge into its own,
// `overlap` (tau) inner steps into the task -- the previous round's communication overlapped
// those steps -- with mixing alpha: local <- (1 - alpha) global + alpha local.
//
// Server: the round's outer gradients (zero outside fragment p) are averaged as DiLoCo's and one
// outer SGD step (Nesterov momentum; the momentum kept per element, so per fragment) updates
// fragment p alone. Outer gradients go through the run's uplink codec like any update (4-bit:
// compression.uplink: int4); the change of the fragment goes down through `merge_codec`
// (4-bit: int4), so both directions can be 4-bit as in the paper. The simulator charges only
// the fragments' bytes both ways.
//
// Workers may join and leave between rounds: a worker that did not take part in the previous
// round (it joined, or its task was lost or refused) restarts from the global model; so does a
// worker that lost its kept model (a restarted process without its state directory), which it
// notices itself. Checkpoints keep the outer momentum and who took part in the last rounds.
//
// Thread safety: as every Strategy, driven from one thread.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "cohort/codec/codec.h"
#include "cohort/strategy/diloco.h"

namespace cohort {

struct StreamingDiLoCoOptions {
  DiLoCoOptions diloco;  // inner_steps is H, the period of each fragment (required, > 0)
  int64_t fragments = 4;          // P; H must be a multiple of P
  int64_t fragment_block = 4096;  // elements per block of the strided split
  int64_t overlap = 0;            // tau, in inner steps; < H / P
  double alpha = 0.0;             // mixing of the local fragment into the merged one
  // A codec chain for the change of the synchronised fragment as it goes down to the workers
  // ("none", "int8", "int4", ...). The server commits the decoded change (old fragment + what
  // the workers receive), so workers and server hold the same fragment exactly; the outer
  // momentum stays exact.
  std::string merge_codec = "none";
};

class StreamingDiLoCo : public DiLoCo {
 public:
  explicit StreamingDiLoCo(StreamingDiLoCoOptions options);
  // Parameters: DiLoCo's (outer_optimizer must be sgd; inner_steps > 0 and a multiple of
  // fragments), fragments (>= 1), fragment_block (>= 1), overlap ([0, H / P)), alpha ([0, 1]),
  // merge_codec (a chain without sparsification).
  static Result<std::unique_ptr<Strategy>> create(StrategyParams& params);
  std::string name() const override { return "streaming_diloco"; }

  const StreamingDiLoCoOptions& streaming_options() const { return streaming_; }
  // The fragment round `round` synchronises.
  int64_t fragment_of(int64_t round) const { return round % streaming_.fragments; }

 protected:
  std::vector<Task> configure_train(int64_t round, const IdleClients& idle) override;
  Status accumulate(const Update& update) override;
  Status apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) override;
  // DiLoCo's state and "stream_round", "stream_in_round", "stream_in_prev_round",
  // "stream_merge_bytes".
  Status io_state(StateIO& io) override;

 private:
  StreamingDiLoCoOptions streaming_;
  std::shared_ptr<const codec::Chain> merge_chain_;  // null: float32
  int64_t merge_bytes_ = 0;  // the payload of the last fragment change (0: float32)
  int64_t configured_round_ = 0;      // the round configured last
  std::set<ClientId> in_round_;       // workers whose update the round accepted
  std::set<ClientId> in_prev_round_;  // the same for the round before
};

}  // namespace cohort
