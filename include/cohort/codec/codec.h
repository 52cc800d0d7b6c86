// Communication compression: a chain of codecs turns a model-shaped float32 vector (an update's
// delta, or a model going down) into a self-describing payload and back.
//
// A chain has up to three parts, in this order (docs/compression.md):
//   1. a sparsifier (topk, randk): which elements travel, optionally with error feedback;
//   2. a value codec: how the travelling values are written (f32, fp16, bf16, int8/int4/int2
//      with per-block scales and stochastic rounding, terngrad, kmeans);
//   3. a lossless byte codec over each frame (zstd).
// Written as one string, "topk:0.01 -> int8 -> zstd", or a list of stages. `fedzip` stands for
// "topk:0.2 -> kmeans:3 -> zstd".
//
// The payload (docs/wire_format.md, "Codec payload") is a header naming the chain, the element
// count and a fingerprint of the layout, then frames of `frame_elems` consecutive elements,
// each with its own lengths and CRC-32, so a receiver decodes (and folds) frame by frame as the
// bytes arrive and refuses a corrupted frame before using any of it. Every random choice is
// drawn from a counter-based stream keyed by (seed, element index): the bytes depend on the
// inputs and the seed only, never on threads or framing.
//
// Thread safety: Chain and the codecs are immutable after construction; encode/decode may run
// concurrently. A StreamDecoder belongs to one stream.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"

namespace cohort::codec {

inline constexpr uint8_t kPayloadVersion = 1;
inline constexpr int64_t kDefaultFrameElems = 1 << 16;

// One value codec of a chain: a run of float32 values <-> bytes, a fixed number of bytes for a
// given count (so a receiver knows every frame's exact size). A run never crosses an array of
// the layout ("segment"); codecs with per-segment side information (terngrad's scaler, kmeans's
// centroids) compute it once over the segment's travelling values before any run is encoded.
class ValueCodec {
 public:
  virtual ~ValueCodec() = default;
  // Canonical text, e.g. "int8:256".
  virtual std::string spec() const = 0;
  virtual bool lossless() const { return false; }
  // Floats of side information per segment (0 = none).
  virtual int side_floats() const { return 0; }
  // Computes a segment's side information from all its travelling values.
  virtual void fit(std::span<const float> values, float* side) const {}
  // The side information of a segment as received: OK or why it is unusable.
  virtual Status check_side(const float* side) const { return Status(); }
  // Bytes for `n` values.
  virtual int64_t encoded_bytes(int64_t n) const = 0;
  // Writes values[0..n) to `out` (encoded_bytes(n) bytes). Value i is element first + i of
  // the vector, or element index[i] when `index` is not null (a sparse run): randomness is
  // keyed by (seed, element).
  virtual void encode(std::span<const float> values, int64_t first, const uint32_t* index,
                      uint32_t index_base, uint64_t seed, const float* side,
                      uint8_t* out) const = 0;
  // Reads encoded_bytes(out.size()) bytes. InvalidArgument naming the first bad code.
  virtual Status decode(const uint8_t* in, const float* side, std::span<float> out) const = 0;
  // Whether decode() fails rather than produce a value that is not finite (the quantizers:
  // their values are bounded by checked scales), so the payload need not check its output.
  virtual bool decodes_finite() const { return false; }
};

// The lossless byte codec applied to each frame.
class ByteCodec {
 public:
  virtual ~ByteCodec() = default;
  virtual std::string spec() const = 0;
  // Largest output for `n` input bytes.
  virtual int64_t bound(int64_t n) const = 0;
  // Appends the compressed form of `in` to `out`.
  virtual Status compress(std::string_view in, std::string* out) const = 0;
  // Decompresses `in`, which must hold exactly out.size() bytes when decompressed.
  virtual Status decompress(std::string_view in, std::span<uint8_t> out) const = 0;
};

// Which elements travel.
struct SparsifyOptions {
  enum class Kind { kTopK, kRandK };
  Kind kind = Kind::kTopK;
  double fraction = 0.0;  // of the elements; used when count == 0
  int64_t count = 0;      // elements, capped at the vector's size
  bool error_feedback = true;
  // The number of elements kept out of `numel` (at least 1 when numel > 0).
  int64_t k(int64_t numel) const;
  std::string spec() const;
};

// The first element of each array of `layout` plus its end: the segments codecs work in.
std::vector<int64_t> segment_offsets(const ArrayLayout& layout);

class Chain {
 public:
  // Parses "none", "int8", "topk:0.01 -> int8:256 -> zstd:3", "fedzip", ... InvalidArgument
  // naming the stage and what is wrong with it (unknown codec, bad argument, wrong order).
  static Result<std::shared_ptr<const Chain>> parse(std::string_view text);
  static Result<std::shared_ptr<const Chain>> parse(const std::vector<std::string>& stages);
  ~Chain();

  // Canonical text with every default spelled out ("none" for the empty chain).
  const std::string& spec() const { return spec_; }
  bool none() const { return !sparsify_ && !value_named_ && !bytes_; }
  bool lossless() const;
  bool sparse() const { return sparsify_.has_value(); }
  bool error_feedback() const { return sparsify_ && sparsify_->error_feedback; }
  const std::optional<SparsifyOptions>& sparsify() const { return sparsify_; }
  int64_t frame_elems() const { return frame_elems_; }

  // Encodes `values` (segments as segment_offsets()) into a payload. `seed` drives stochastic
  // rounding and random-k. With error feedback and a non-null `residual` (empty = zeros; resized
  // to the vector's size), the residual is added to the values before compression and afterwards
  // holds exactly what the payload did not carry: input + old residual - decoded payload.
  // InvalidArgument for a non-finite input value (naming the element) or mismatched offsets.
  // With a non-empty `decoded` (offsets.back() elements; it may be `values` itself), the
  // payload is also decoded into it, as a receiver would: the residual's decode is reused.
  Result<std::string> encode(std::span<const float> values, std::span<const int64_t> offsets,
                             uint64_t seed, std::vector<float>* residual = nullptr,
                             std::span<float> decoded = {}) const;

  // Decodes a whole payload into `out` (overwritten; out.size() == offsets.back()), frames in
  // parallel. Errors name what was wrong: InvalidArgument for a payload of another chain,
  // layout or version, DataLoss for a truncated or corrupted one, ResourceExhausted for a
  // frame larger than its element count allows.
  Status decode(std::string_view payload, std::span<const int64_t> offsets,
                std::span<float> out) const;

  // Decodes a whole payload and adds weight x it into `sum` (sum.size() == offsets.back()),
  // frames in parallel, each through a frame-sized buffer: decode-and-fold without a
  // model-sized temporary. Errors as decode(); on error `sum` may hold part of the payload.
  Status fold(std::string_view payload, std::span<const int64_t> offsets, float weight,
              std::span<float> sum) const;

  // An upper bound of the payload size for a vector with these segments, for budgets.
  int64_t max_payload_bytes(std::span<const int64_t> offsets) const;

  const ValueCodec& value_codec() const { return *value_; }
  const ByteCodec* byte_codec() const { return bytes_.get(); }

 private:
  Chain() = default;
  Status decode_or_fold(std::string_view payload, std::span<const int64_t> offsets,
                        std::span<float> out, float weight, bool fold) const;
  std::string spec_;
  std::optional<SparsifyOptions> sparsify_;
  std::unique_ptr<ValueCodec> value_;  // always set (f32 when the chain names none)
  bool value_named_ = false;
  std::unique_ptr<ByteCodec> bytes_;
  int64_t frame_elems_ = kDefaultFrameElems;
};

// Decodes a payload as its bytes arrive: every complete frame is checked (lengths, CRC-32,
// codes, finiteness) and handed to `sink(first_element, values)`, dense over the frame's
// elements (zeros where a sparse frame carries nothing), before the next is read. Memory is
// one frame, whatever the model's size. Messages start with `what`.
class StreamDecoder {
 public:
  using Sink = std::function<Status(int64_t first, std::span<const float> values)>;
  struct Options {
    // Check each frame's CRC-32 and that it decodes to finite values. Off only to re-read
    // bytes this process already checked (the server's spool).
    bool verify_crc = true;
    // Decode the complete frames of each feed() in parallel on the kernel pool; the sink is
    // then called concurrently for disjoint frames (in no particular order) and must allow it.
    bool parallel = false;
  };
  StreamDecoder(std::shared_ptr<const Chain> chain, std::vector<int64_t> offsets,
                std::string what, Options options);
  StreamDecoder(std::shared_ptr<const Chain> chain, std::vector<int64_t> offsets,
                std::string what)
      : StreamDecoder(std::move(chain), std::move(offsets), std::move(what), Options{}) {}
  ~StreamDecoder();
  // Errors as Chain::decode; after an error the decoder refuses further input.
  Status feed(std::string_view bytes, const Sink& sink);
  // DataLoss unless the whole payload (header and every frame) was received.
  Status finish() const;
  int64_t bytes_consumed() const;
  int64_t elements_emitted() const;

 private:
  struct State;
  std::unique_ptr<State> st_;
};

}  // namespace cohort::codec
