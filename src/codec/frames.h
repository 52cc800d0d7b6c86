// The codec payload's frames (docs/wire_format.md, "Codec payload"), internal to cohort_codec:
// what payload.cc's whole-payload decoder and stream_decoder.cc's streaming one share.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "cohort/codec/codec.h"
#include "cohort/core/status.h"

namespace cohort::codec::frames {

constexpr int64_t kFrameHeaderBytes = 12;  // raw_len, stored_len, crc32

// What a decoder knows once the header is read.
struct Header {
  bool sparse = false;
  int64_t numel = 0;
  int64_t frame_elems = 0;
  int64_t kept = 0;
  int64_t num_frames = 0;
  std::vector<float> side;  // side_floats per segment
  int64_t bytes = 0;        // header size
};

// InvalidArgument unless `offsets` start at 0 and ascend.
Status check_offsets(std::span<const int64_t> offsets);

// The payload's header from its first `n` bytes at `p`; nullopt while more bytes are needed.
// Errors name what is wrong with it (magic, chain, layout, lengths).
Result<std::optional<Header>> parse_header(const Chain& chain, std::span<const int64_t> offsets,
                                           const uint8_t* p, int64_t n);

// Frame `f`'s stored and raw lengths against what its elements can need.
Status check_frame_lengths(const Chain& chain, std::span<const int64_t> offsets, int64_t f,
                           int64_t len, uint32_t raw_len, uint32_t stored_len);

// Decodes frame `f` into `out` (its elements), checking its CRC-32 and that it decodes to
// finite values when `verify_crc` (off only for bytes this process already checked).
Status decode_frame(const Chain& chain, std::span<const int64_t> offsets, const Header& h,
                    int64_t f, uint32_t raw_len, const uint8_t* stored, uint32_t stored_len,
                    uint32_t crc, std::span<float> out, int64_t* kept,
                    std::vector<uint8_t>* raw_buf, std::vector<float>* scratch,
                    bool verify_crc = true);

// A frame located in received bytes.
struct FrameRef {
  int64_t f;
  uint32_t raw_len, stored_len, crc;
  const uint8_t* stored;
};

// Decodes `frames` in parallel (payload.cc says how `direct` and `use` are fed).
Status decode_frames(const Chain& chain, std::span<const int64_t> offsets, const Header& h,
                     std::span<const FrameRef> frames, bool verify_crc, std::span<float> direct,
                     const std::function<Status(int64_t, std::span<const float>)>& use,
                     int64_t* kept_total);

}  // namespace cohort::codec::frames
