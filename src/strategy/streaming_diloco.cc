#include "cohort/strategy/streaming_diloco.h"

#include "cohort/core/fragments.h"
#include "cohort/strategy/state_io.h"
#include "cohort/strategy/task_config.h"

namespace cohort {

StreamingDiLoCo::StreamingDiLoCo(StreamingDiLoCoOptions options)
    : DiLoCo(options.diloco), streaming_(std::move(options)) {}

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

std::vector<Task> StreamingDiLoCo::configure_train(int64_t round, std::span<const ClientId> idle) {
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
                                               .alpha = streaming_.alpha});
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
  return io.status();
}

Status StreamingDiLoCo::apply_pseudo_gradient(ArrayRecord& avg_delta, ArrayRecord& next) {
  COHORT_ASSIGN_OR_RETURN(
      Fragments frags,
      Fragments::create(next.numel(), streaming_.fragments, streaming_.fragment_block));
  const std::span<const float> g = avg_delta.flat();
  std::span<float> theta = next.flat();
  std::span<float> m = momentum().flat();
  // Only the round's fragment moves (the others' deltas are zero, but their momentum is not).
  frags.for_each_range(fragment_of(configured_round_), [&](int64_t first, int64_t n) {
    const auto f = static_cast<size_t>(first);
    const auto len = static_cast<size_t>(n);
    outer_sgd_step(g.subspan(f, len), theta.subspan(f, len), m.subspan(f, len));
  });
  return Status();
}

}  // namespace cohort
