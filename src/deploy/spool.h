// How the server takes an update's delta off the wire without holding it decoded:
//   - DeltaDecoder turns the delta's bytes (raw float32, or a codec payload) into frames of
//     consecutive elements as they arrive, checking every value;
//   - Spool keeps the bytes as received (in memory up to a limit, beyond it in an unlinked
//     temporary file) until the strategy has folded them;
//   - SpooledDelta is the strategy-facing DeltaSource (strategy.h) over a spool: it replays
//     the frames into the strategy's running sum when the update is accepted.
// So a linear strategy's server holds one frame per upload in flight, not one model
// (docs/compression.md, "Decode and fold on the server"). Internal to cohort_deploy.
//
// Thread safety: one upload's objects belong to one thread at a time (the gRPC handler while
// the stream arrives, then the loop thread that folds it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/codec/codec.h"
#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/strategy/strategy.h"

namespace cohort::deploy {

class Spool {
 public:
  // `dir`: where a spill file goes (created unlinked, O_TMPFILE, gone with the process).
  // `expected`: the size the upload announced (0 = unknown): beyond `memory_limit` it goes to
  // the file from its first byte, else memory is reserved for it at once (no regrowth).
  Spool(std::string dir, int64_t memory_limit, int64_t expected = 0);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  // Appends; moves everything to the file the first time the total would pass the limit.
  // Internal error naming the directory when the file cannot be created or written.
  Status append(std::string_view bytes);
  int64_t size() const { return size_; }
  bool on_disk() const { return fd_ >= 0; }
  // Hands the bytes back in order, in pieces of at most `piece` bytes.
  Status read(const std::function<Status(std::string_view)>& fn, int64_t piece = 1 << 20) const;

 private:
  std::string dir_;
  int64_t memory_limit_;
  int64_t expected_;
  std::string mem_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// Decodes an update's delta part frame by frame: a codec payload of `chain`, or raw float32
// when `chain` is null (frames of codec::kDefaultFrameElems elements; every value checked
// finite, the error naming the array and element).
class DeltaDecoder {
 public:
  DeltaDecoder(std::shared_ptr<const codec::Chain> chain,
               std::shared_ptr<const ArrayLayout> layout, std::string what,
               codec::StreamDecoder::Options options = {});
  Status feed(std::string_view bytes, const codec::StreamDecoder::Sink& sink);
  // DataLoss when the delta ended early.
  Status finish() const;

 private:
  std::shared_ptr<const ArrayLayout> layout_;
  std::string what_;
  std::unique_ptr<codec::StreamDecoder> codec_;
  std::vector<float> frame_;  // raw: floats of the frame being filled
  std::string carry_;         // raw: bytes of an incomplete float
  int64_t next_element_ = 0;
};

// A frame's statistics for admission, accumulated as the frames pass.
struct FrameStats {
  double sum_squares = 0.0;
  float max_abs = 0.0f;
  void add(std::span<const float> v);
};

class SpooledDelta final : public DeltaSource {
 public:
  SpooledDelta(std::shared_ptr<const codec::Chain> chain, std::shared_ptr<const ArrayLayout> layout,
               std::unique_ptr<Spool> spool, const FrameStats& stats);
  int64_t numel() const override { return layout_->numel(); }
  double l2_norm() const override;
  float max_abs() const override;
  void scale(float s) override { scale_ *= s; }
  Status replay(const std::function<Status(int64_t, std::span<const float>)>& fn) const override;

 private:
  std::shared_ptr<const codec::Chain> chain_;
  std::shared_ptr<const ArrayLayout> layout_;
  std::unique_ptr<Spool> spool_;
  FrameStats stats_;
  float scale_ = 1.0f;
};

}  // namespace cohort::deploy
