#include "cohort/strategy/streaming_diloco.h"

#include <algorithm>
#include <vector>

#include "cohort/core/fragments.h"
#include "cohort/strategy/state_io.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

StreamingDiLoCo::StreamingDiLoCo(StreamingDiLoCoOptions options)
    : DiLoCo(options.diloco), streaming_(std::move(options)) {
  Result<std::shared_ptr<const codec::Chain>> chain = codec::Chain::parse(streaming_.merge_codec);
  if (chain.ok() && !(*chain)->none()) merge_chain_ = *chain;  // create() checked the spec
}

Result<std::unique_ptr<Strategy>> StreamingDiLoCo::create(StrategyParams& p) {
  StreamingDiLoCoOptions o;
  read_options(p, o.diloco);
  o.fragments = p.integer("fragments", o.fragments);
  p.check(o.fragments >= 1, "fragments", "must be >= 1", static_cast<double>(o.fragments));
  o.fragment_block = p.integer("fragment_block", o.fragment_block);
  p.check(o.fragment_block >= 1, "fragment_block", "must be >= 1",
          static_cast<double>(o.fragment_block));
  o.overlap = p.integer("overlap", o.overlap);
  o.alpha = p.number("alpha", o.alpha);
  p.check(o.alpha >= 0 && o.alpha <= 1, "alpha", "must be in [0, 1]", o.alpha);
  o.merge_codec = p.string("merge_codec", o.merge_codec);
  if (Result<std::shared_ptr<const codec::Chain>> c = codec::Chain::parse(o.merge_codec); !c.ok()) {
    p.fail_with("merge_codec", c.error().message());
  } else if ((*c)->sparse()) {
    p.fail_with("merge_codec", "'" + o.merge_codec + "' sparsifies, which would drop part of "
                               "the fragment; use a quantizer (int8, int4)");
  }
  if (o.diloco.outer_optimizer != "sgd") {
    p.fail_with("outer_optimizer", "streaming_diloco takes sgd (its fragments step at "
                                   "different times; AdamW's bias correction is per step)");
  }
  const int64_t h = o.diloco.inner_steps;
  p.check(h > 0, "inner_steps", "must be > 0 for streaming_diloco (H, each fragment's period)",
          static_cast<double>(h));
  if (h > 0 && o.fragments >= 1) {
    p.check(h % o.fragments == 0, "inner_steps",
            "must be a multiple of fragments (" + std::to_string(o.fragments) + ")",
            static_cast<double>(h));
    p.check(o.overlap >= 0 && o.overlap < h / o.fragments, "overlap",
            "must be in [0, inner_steps / fragments) = [0, " +
                std::to_string(h / o.fragments) + ")",
            static_cast<double>(o.overlap));
  }
  return std::unique_ptr<Strategy>(new StreamingDiLoCo(o));
}

std::vector<Task> StreamingDiLoCo::configure_train(int64_t round, const IdleClients& idle) {
  std::vector<Task> tasks = DiLoCo::configure_train(round, idle);
  // Who may merge: the workers the previous round accepted, when this round follows it.
  if (round == configured_round_ + 1) {
    in_prev_round_ = std::move(in_round_);
  } else {
    in_prev_round_.clear();
  }
  in_round_.clear();
  configured_round_ = round;
  const int64_t p = fragment_of(round);
  const int64_t previous = fragment_of(round + streaming_.fragments - 1);
  for (Task& t : tasks) {
    t.local_steps = streaming_.diloco.inner_steps / streaming_.fragments;
    const bool merges = in_prev_round_.count(t.client) > 0;
    set_task_streaming(t.config, TaskStreaming{.fragments = streaming_.fragments,
                                               .fragment = p,
                                               .block = streaming_.fragment_block,
                                               .round = round,
                                               .merge = merges ? previous : -1,
                                               .overlap = streaming_.overlap,
                                               .alpha = streaming_.alpha,
                                               .merge_bytes = merges ? merge_bytes_ : 0});
  }
  return tasks;
}

Status StreamingDiLoCo::accumulate(const Update& update) {
  COHORT_RETURN_IF_ERROR(DiLoCo::accumulate(update));
  in_round_.insert(update.client);
  return Status();
}

Status StreamingDiLoCo::io_state(StateIO& io) {
  COHORT_RETURN_IF_ERROR(DiLoCo::io_state(io));
  io.value("stream_round", configured_round_);
  io.value("stream_in_round", in_round_);
  io.value("stream_in_prev_round", in_prev_round_);
  io.value("stream_merge_bytes", merge_bytes_);
  return io.status();
}

Status StreamingDiLoCo::apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) {
  COHORT_ASSIGN_OR_RETURN(
      Fragments frags,
      Fragments::create(next.numel(), streaming_.fragments, streaming_.fragment_block));
  const std::span<const float> g = avg_delta.flat();
  std::span<float> theta = next.flat();
  std::span<float> m = momentum().flat();
  const int64_t p = fragment_of(configured_round_);
  std::vector<float> before;
  if (merge_chain_) {
    before.resize(static_cast<size_t>(frags.size(p)));
    frags.gather(p, theta, before);
  }
  // Only the round's fragment moves (the others' deltas are zero, but their momentum is not).
  frags.for_each_range(p, [&](int64_t first, int64_t n) {
    const auto f = static_cast<size_t>(first);
    const auto len = static_cast<size_t>(n);
    outer_sgd_step(g.subspan(f, len), theta.subspan(f, len), m.subspan(f, len));
  });
  if (!merge_chain_) return Status();
  // The change goes down encoded: commit old + decoded change, what every worker rebuilds.
  std::vector<float> change(before.size());
  frags.gather(p, theta, change);
  for (size_t i = 0; i < change.size(); ++i) change[i] -= before[i];
  const std::vector<int64_t> offsets = {0, static_cast<int64_t>(change.size())};
  const uint64_t seed = host_->rng().next_u64();  // the run's seeded stream
  COHORT_ASSIGN_OR_RETURN(std::string payload,
                          merge_chain_->encode(change, offsets, seed, nullptr, change));
  merge_bytes_ = std::max<int64_t>(1, static_cast<int64_t>(payload.size()));
  for (size_t i = 0; i < change.size(); ++i) before[i] += change[i];
  frags.scatter(p, before, theta);
  return Status();
}

}  // namespace cohort
