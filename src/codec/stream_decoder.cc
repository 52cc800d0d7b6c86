// The streaming decoder of codec payloads (docs/wire_format.md, "Codec payload"): bytes in
// any pieces, frames decoded as they complete, over payload.cc's frame decoder (frames.h).
#include <algorithm>
#include <cstring>

#include "bits.h"
#include "cohort/codec/codec.h"
#include "frames.h"

namespace cohort::codec {

using namespace frames;  // NOLINT: the frame decoder this file drives
using detail::load_u32;

struct StreamDecoder::State {
  Options options;
  std::shared_ptr<const Chain> chain;
  std::vector<int64_t> offsets;
  std::string what;
  std::string buf;  // bytes received and not yet used, from `pos`
  size_t pos = 0;
  std::optional<Header> header;
  int64_t next_frame = 0;
  int64_t consumed = 0;
  int64_t emitted = 0;
  int64_t kept = 0;
  Status error;
  std::vector<float> frame;
  std::vector<uint8_t> raw_buf;
  std::vector<float> scratch;

  Status fail(const Status& s) {
    error = Status(s.code(), what + ": " + s.message());
    return error;
  }
};

StreamDecoder::StreamDecoder(std::shared_ptr<const Chain> chain, std::vector<int64_t> offsets,
                             std::string what, Options options)
    : st_(std::make_unique<State>()) {
  st_->options = options;
  st_->chain = std::move(chain);
  st_->offsets = std::move(offsets);
  st_->what = std::move(what);
  st_->error = check_offsets(st_->offsets);
}

StreamDecoder::~StreamDecoder() = default;

Status StreamDecoder::feed(std::string_view bytes, const Sink& sink) {
  State& s = *st_;
  if (!s.error.ok()) return s.error;
  if (s.pos > 0 && s.pos >= s.buf.size() / 2) {
    s.buf.erase(0, s.pos);
    s.pos = 0;
  }
  s.buf.append(bytes.data(), bytes.size());
  const Chain& chain = *s.chain;
  while (true) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.buf.data()) + s.pos;
    const int64_t avail = static_cast<int64_t>(s.buf.size() - s.pos);
    if (!s.header) {
      Result<std::optional<Header>> h = parse_header(chain, s.offsets, p, avail);
      if (!h.ok()) return s.fail(h.error());
      if (!*h) return Status();
      s.header = std::move(**h);
      s.pos += static_cast<size_t>(s.header->bytes);
      s.consumed += s.header->bytes;
      continue;
    }
    const Header& h = *s.header;
    if (s.next_frame == h.num_frames) {
      if (avail > 0) {
        return s.fail(Status::invalid_argument(std::to_string(avail) +
                                               " bytes after the last frame"));
      }
      return Status();
    }
    if (avail < kFrameHeaderBytes) return Status();
    if (s.options.parallel) {
      // Every complete frame in the buffer, decoded at once.
      std::vector<FrameRef> jobs;
      int64_t at = 0;
      while (s.next_frame + static_cast<int64_t>(jobs.size()) < h.num_frames &&
             avail - at >= kFrameHeaderBytes) {
        const int64_t f = s.next_frame + static_cast<int64_t>(jobs.size());
        const uint32_t raw_len = load_u32(p + at), stored_len = load_u32(p + at + 4);
        const int64_t len = std::min(h.frame_elems, h.numel - f * h.frame_elems);
        if (Status c = check_frame_lengths(chain, s.offsets, f, len, raw_len, stored_len); !c.ok()) {
          return s.fail(c);
        }
        if (avail - at - kFrameHeaderBytes < stored_len) break;
        jobs.push_back({f, raw_len, stored_len, load_u32(p + at + 8), p + at + kFrameHeaderBytes});
        at += kFrameHeaderBytes + stored_len;
      }
      if (jobs.empty()) return Status();
      if (Status d = decode_frames(chain, s.offsets, h, jobs, s.options.verify_crc, {}, sink,
                                   &s.kept);
          !d.ok()) {
        return s.fail(d);
      }
      for (const FrameRef& j : jobs) s.emitted += std::min(h.frame_elems, h.numel - j.f * h.frame_elems);
      s.next_frame += static_cast<int64_t>(jobs.size());
      s.pos += static_cast<size_t>(at);
      s.consumed += at;
      if (s.next_frame == h.num_frames && s.kept != h.kept) {
        return s.fail(Status::invalid_argument("frames carry " + std::to_string(s.kept) +
                                               " values, the header says " +
                                               std::to_string(h.kept)));
      }
      continue;
    }
    const uint32_t raw_len = load_u32(p), stored_len = load_u32(p + 4), crc = load_u32(p + 8);
    const int64_t f = s.next_frame;
    const int64_t a = f * h.frame_elems;
    const int64_t len = std::min(h.frame_elems, h.numel - a);
    if (Status c = check_frame_lengths(chain, s.offsets, f, len, raw_len, stored_len); !c.ok()) {
      return s.fail(c);
    }
    if (avail < kFrameHeaderBytes + stored_len) return Status();
    s.frame.resize(static_cast<size_t>(len));
    int64_t kept = 0;
    Status d = decode_frame(chain, s.offsets, h, f, raw_len, p + kFrameHeaderBytes, stored_len,
                            crc, s.frame, &kept, &s.raw_buf, &s.scratch, s.options.verify_crc);
    if (!d.ok()) return s.fail(d);
    s.kept += kept;
    if (f + 1 == h.num_frames && s.kept != h.kept) {
      return s.fail(Status::invalid_argument("frames carry " + std::to_string(s.kept) +
                                             " values, the header says " + std::to_string(h.kept)));
    }
    s.pos += static_cast<size_t>(kFrameHeaderBytes + stored_len);
    s.consumed += kFrameHeaderBytes + stored_len;
    ++s.next_frame;
    if (Status k = sink(a, s.frame); !k.ok()) return s.fail(k);
    s.emitted += len;
  }
}

Status StreamDecoder::finish() const {
  const State& s = *st_;
  if (!s.error.ok()) return s.error;
  if (!s.header) {
    return Status::data_loss(s.what + ": truncated: the payload ended inside its header");
  }
  if (s.next_frame != s.header->num_frames) {
    return Status::data_loss(s.what + ": truncated: " + std::to_string(s.next_frame) + " of " +
                             std::to_string(s.header->num_frames) + " frames received");
  }
  return Status();
}

int64_t StreamDecoder::bytes_consumed() const { return st_->consumed; }
int64_t StreamDecoder::elements_emitted() const { return st_->emitted; }

}  // namespace cohort::codec
