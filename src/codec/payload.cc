// The payload format (docs/wire_format.md, "Codec payload"): encoding and whole-payload
// decoding (frames in parallel) over one frame decoder (frames.h), which the streaming decoder
// (stream_decoder.cc) shares.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bits.h"
#include "cohort/codec/codec.h"
#include "cohort/codec/sparsify.h"
#include "cohort/core/crc32.h"
#include "cohort/core/ops.h"
#include "cohort/core/parallel.h"
#include "frames.h"

namespace cohort::codec {
namespace frames {

using detail::load_u32;
using detail::store_u32;

constexpr char kMagic[4] = {'C', 'H', 'C', '1'};
constexpr uint8_t kFlagSparse = 1;

uint64_t fingerprint(std::span<const int64_t> offsets) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t o : offsets) {
    for (int b = 0; b < 8; ++b) {
      h ^= static_cast<uint64_t>(o >> (8 * b)) & 0xff;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

void put_u64(std::string* s, uint64_t v) { s->append(reinterpret_cast<const char*>(&v), 8); }
void put_u32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }


Status check_offsets(std::span<const int64_t> offsets) {
  if (offsets.empty() || offsets.front() != 0) {
    return Status::invalid_argument("codec: segment offsets must start at 0");
  }
  for (size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i] < offsets[i - 1]) {
      return Status::invalid_argument("codec: segment offsets must not decrease");
    }
  }
  if (offsets.back() >= (int64_t{1} << 32)) {
    return Status::invalid_argument("codec: vectors of 2^32 elements or more are not supported");
  }
  return Status();
}

// Parses the header from `p[0..n)`. nullopt: more bytes are needed.
Result<std::optional<Header>> parse_header(const Chain& chain, std::span<const int64_t> offsets,
                                           const uint8_t* p, int64_t n) {
  if (n < 8) return std::optional<Header>();
  if (std::memcmp(p, kMagic, 4) != 0) {
    return Status::invalid_argument("codec payload: bad magic (not a Cohort codec payload)");
  }
  if (p[4] != kPayloadVersion) {
    return Status::invalid_argument("codec payload: format version " + std::to_string(p[4]) +
                                    ", this build reads version " +
                                    std::to_string(kPayloadVersion));
  }
  const uint8_t flags = p[5];
  uint16_t spec_len;
  std::memcpy(&spec_len, p + 6, 2);
  const int64_t fixed = 8 + spec_len + 8 + 4 + 8 + 4 + 8 + 4;
  if (n < fixed) return std::optional<Header>();
  const std::string spec(reinterpret_cast<const char*>(p + 8), spec_len);
  if (spec != chain.spec()) {
    // The sender's bytes: shown printable and short (they end up in logs).
    std::string shown;
    for (char ch : spec.substr(0, 64)) shown += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
    if (spec.size() > 64) shown += "...";
    return Status::invalid_argument("codec payload: encoded with '" + shown +
                                    "' but the receiver expects '" + chain.spec() + "'");
  }
  const uint8_t* q = p + 8 + spec_len;
  Header h;
  uint64_t numel, fp, kept;
  uint32_t nseg, frame, side_count;
  std::memcpy(&numel, q, 8);
  std::memcpy(&nseg, q + 8, 4);
  std::memcpy(&fp, q + 12, 8);
  std::memcpy(&frame, q + 20, 4);
  std::memcpy(&kept, q + 24, 8);
  std::memcpy(&side_count, q + 32, 4);
  const int64_t expected_numel = offsets.back();
  const uint64_t expected_nseg = offsets.size() - 1;
  if (numel != static_cast<uint64_t>(expected_numel) || nseg != expected_nseg ||
      fp != fingerprint(offsets)) {
    return Status::invalid_argument(
        "codec payload: layout mismatch: " + std::to_string(numel) + " elements in " +
        std::to_string(nseg) + " arrays, the receiver's model has " +
        std::to_string(expected_numel) + " in " + std::to_string(expected_nseg) +
        (numel == static_cast<uint64_t>(expected_numel) && nseg == expected_nseg
             ? " (array sizes differ)"
             : ""));
  }
  if (frame != static_cast<uint32_t>(chain.frame_elems())) {
    return Status::invalid_argument("codec payload: frames of " + std::to_string(frame) +
                                    " elements, the chain uses " +
                                    std::to_string(chain.frame_elems()));
  }
  if (((flags & kFlagSparse) != 0) != chain.sparse() || (flags & ~kFlagSparse) != 0) {
    return Status::invalid_argument("codec payload: flags " + std::to_string(flags) +
                                    " do not match the chain");
  }
  const uint64_t expect_side =
      static_cast<uint64_t>(chain.value_codec().side_floats()) * expected_nseg;
  if (side_count != expect_side) {
    return Status::invalid_argument("codec payload: " + std::to_string(side_count) +
                                    " side values, expected " + std::to_string(expect_side));
  }
  if (chain.sparse() ? kept > numel : kept != numel) {
    return Status::invalid_argument("codec payload: " + std::to_string(kept) +
                                    " values kept of " + std::to_string(numel));
  }
  const int64_t total = fixed + 4 * static_cast<int64_t>(side_count) + 4;
  if (n < total) return std::optional<Header>();
  const uint32_t claimed = load_u32(p + total - 4);
  if (claimed != crc32_of(p, static_cast<size_t>(total - 4))) {
    return Status::data_loss("codec payload: header CRC-32 mismatch (corrupted header)");
  }
  h.sparse = chain.sparse();
  h.numel = static_cast<int64_t>(numel);
  h.frame_elems = frame;
  h.kept = static_cast<int64_t>(kept);
  h.num_frames = (h.numel + h.frame_elems - 1) / h.frame_elems;
  h.side.resize(side_count);
  if (side_count > 0) std::memcpy(h.side.data(), p + fixed, 4 * side_count);
  const int sf = chain.value_codec().side_floats();
  for (uint64_t s = 0; sf > 0 && s < expected_nseg; ++s) {
    Status st = chain.value_codec().check_side(h.side.data() + s * static_cast<uint64_t>(sf));
    if (!st.ok()) {
      return Status::invalid_argument("codec payload: array " + std::to_string(s) + ": " +
                                      st.message());
    }
  }
  h.bytes = total;
  return std::optional<Header>(std::move(h));
}

// Index of the segment holding element e (offsets ascending; empty segments skipped).
size_t segment_of(std::span<const int64_t> offsets, int64_t e) {
  auto it = std::upper_bound(offsets.begin(), offsets.end(), e);
  return static_cast<size_t>(it - offsets.begin()) - 1;
}

// The largest raw frame a frame of `len` elements can produce (before any byte codec).
int64_t max_raw_bytes(const Chain& chain, int64_t len, size_t nseg) {
  const int64_t pieces = std::min<int64_t>(len, static_cast<int64_t>(nseg)) + 1;
  const int64_t per_piece_slack = 8;
  return (chain.sparse() ? 4 + 2 * len : 0) + chain.value_codec().encoded_bytes(len) +
         pieces * per_piece_slack;
}

// Decodes frame `f` from its raw bytes into `out` (the frame's elements, dense; sparse frames
// zero the rest). `kept` receives the number of values it carried. `check_finite`: refuse a
// frame that decodes to a non-finite value (off only for bytes this process already decoded
// and checked: decoding is deterministic).
Status decode_raw_frame(const Chain& chain, std::span<const int64_t> offsets, const Header& h,
                        int64_t f, const uint8_t* raw, int64_t raw_len, std::span<float> out,
                        int64_t* kept, std::vector<float>* scratch, bool check_finite) {
  const int64_t a = f * h.frame_elems;
  const int64_t len = static_cast<int64_t>(out.size());
  const ValueCodec& vc = chain.value_codec();
  const int sf = vc.side_floats();
  auto side_of = [&](size_t seg) {
    return sf > 0 ? h.side.data() + seg * static_cast<size_t>(sf) : nullptr;
  };
  // The frame's values in runs that stay within one array (segment): [begin, end) in value
  // positions (dense: elements of the frame; sparse: kept values in order).
  struct Run {
    int64_t begin, end;
    size_t seg;
  };
  std::vector<Run> runs;
  std::vector<uint32_t> idx;  // sparse: offsets within the frame
  int64_t header_bytes = 0;
  int64_t values = len;
  if (!h.sparse) {
    for (int64_t e = a; e < a + len;) {
      const size_t seg = segment_of(offsets, e);
      const int64_t end = std::min(a + len, offsets[seg + 1]);
      runs.push_back({e - a, end - a, seg});
      e = end;
    }
  } else {
    if (raw_len < 4) return Status::data_loss("frame " + std::to_string(f) + ": too short");
    const uint32_t count = load_u32(raw);
    if (count > static_cast<uint64_t>(len)) {
      return Status::invalid_argument("frame " + std::to_string(f) + ": " + std::to_string(count) +
                                      " values kept of " + std::to_string(len) + " elements");
    }
    header_bytes = 4 + 2 * static_cast<int64_t>(count);
    if (raw_len < header_bytes) {
      return Status::data_loss("frame " + std::to_string(f) + ": too short for its indices");
    }
    idx.resize(count);
    for (uint32_t i = 0; i < count; ++i) {
      uint16_t o;
      std::memcpy(&o, raw + 4 + 2 * i, 2);
      if (o >= len || (i > 0 && o <= idx[i - 1])) {
        return Status::invalid_argument("frame " + std::to_string(f) + ": index " +
                                        std::to_string(i) + " (" + std::to_string(o) +
                                        ") is out of order or beyond the frame");
      }
      idx[i] = o;
    }
    for (uint32_t i = 0; i < count;) {
      const size_t seg = segment_of(offsets, a + idx[i]);
      uint32_t j = i;
      while (j < count && a + idx[j] < offsets[seg + 1]) ++j;
      runs.push_back({i, j, seg});
      i = j;
    }
    values = count;
  }
  int64_t expected = header_bytes;
  for (const Run& r : runs) expected += vc.encoded_bytes(r.end - r.begin);
  if (expected != raw_len) {
    return Status::data_loss("frame " + std::to_string(f) + ": " + std::to_string(raw_len) +
                             " bytes, " + std::to_string(values) + " values take " +
                             std::to_string(expected));
  }
  // Dense frames decode straight into `out`; sparse ones into `scratch`, then scatter.
  std::span<float> dst = out;
  if (h.sparse) {
    scratch->resize(static_cast<size_t>(values));
    dst = *scratch;
  }
  const uint8_t* p = raw + header_bytes;
  for (const Run& r : runs) {
    Status s = vc.decode(p, side_of(r.seg),
                         dst.subspan(static_cast<size_t>(r.begin), static_cast<size_t>(r.end - r.begin)));
    if (!s.ok()) return Status::invalid_argument("frame " + std::to_string(f) + ": " + s.message());
    p += vc.encoded_bytes(r.end - r.begin);
  }
  if (h.sparse) {
    std::fill(out.begin(), out.end(), 0.0f);
    for (size_t i = 0; i < idx.size(); ++i) out[idx[i]] = (*scratch)[i];
  }
  *kept = values;
  if (check_finite && !vc.decodes_finite() && !ops::all_finite(out)) {
    for (size_t i = 0; i < out.size(); ++i) {
      if (!std::isfinite(out[i])) {
        return Status::invalid_argument("frame " + std::to_string(f) + ": element " +
                                        std::to_string(a + static_cast<int64_t>(i)) +
                                        " decodes to a non-finite value");
      }
    }
  }
  return Status();
}

// Checks a frame's lengths and CRC and decodes it. `stored` points at the frame's body.
Status decode_frame(const Chain& chain, std::span<const int64_t> offsets, const Header& h,
                    int64_t f, uint32_t raw_len, const uint8_t* stored, uint32_t stored_len,
                    uint32_t crc, std::span<float> out, int64_t* kept,
                    std::vector<uint8_t>* raw_buf, std::vector<float>* scratch,
                    bool verify_crc) {
  if (verify_crc && crc32_of(stored, stored_len) != crc) {
    return Status::data_loss("frame " + std::to_string(f) + ": CRC-32 mismatch (corrupted)");
  }
  const uint8_t* raw = stored;
  if (const ByteCodec* bc = chain.byte_codec()) {
    raw_buf->resize(raw_len);
    Status s = bc->decompress(
        std::string_view(reinterpret_cast<const char*>(stored), stored_len), *raw_buf);
    if (!s.ok()) return Status::data_loss("frame " + std::to_string(f) + ": " + s.message());
    raw = raw_buf->data();
  }
  return decode_raw_frame(chain, offsets, h, f, raw, raw_len, out, kept, scratch, verify_crc);
}

// Validates a frame header's lengths before its body is read.
Status check_frame_lengths(const Chain& chain, std::span<const int64_t> offsets, int64_t f,
                           int64_t len, uint32_t raw_len, uint32_t stored_len) {
  const int64_t max_raw = max_raw_bytes(chain, len, offsets.size() - 1);
  if (raw_len > max_raw) {
    return Status::resource_exhausted("frame " + std::to_string(f) + ": " +
                                      std::to_string(raw_len) + " bytes, more than " +
                                      std::to_string(len) + " elements can take (" +
                                      std::to_string(max_raw) + ")");
  }
  const ByteCodec* bc = chain.byte_codec();
  if (bc ? stored_len > bc->bound(raw_len) : stored_len != raw_len) {
    return Status::resource_exhausted("frame " + std::to_string(f) + ": stored size " +
                                      std::to_string(stored_len) + " does not fit raw size " +
                                      std::to_string(raw_len));
  }
  return Status();
}

// Decodes `frames` in parallel on the kernel pool. Each frame is decoded into `direct` (its
// elements' range) when `direct` is not empty, else into a frame buffer handed to
// `use(first, values)`, which is then called concurrently for disjoint frames. Returns the
// first error in frame order; adds the values the frames carried to `kept_total`.
Status decode_frames(const Chain& chain, std::span<const int64_t> offsets, const Header& h,
                     std::span<const FrameRef> frames, bool verify_crc, std::span<float> direct,
                     const std::function<Status(int64_t, std::span<const float>)>& use,
                     int64_t* kept_total) {
  std::vector<Status> errors(frames.size());
  std::vector<int64_t> kept(frames.size());
  auto run = [&](int64_t lo, int64_t hi) {
    std::vector<uint8_t> raw_buf;
    std::vector<float> scratch, frame;
    for (int64_t j = lo; j < hi; ++j) {
      const FrameRef& r = frames[static_cast<size_t>(j)];
      const int64_t a = r.f * h.frame_elems;
      const auto len = static_cast<size_t>(std::min(h.frame_elems, h.numel - a));
      std::span<float> dst;
      if (!direct.empty()) {
        dst = direct.subspan(static_cast<size_t>(a), len);
      } else {
        frame.resize(len);
        dst = frame;
      }
      Status& e = errors[static_cast<size_t>(j)];
      e = decode_frame(chain, offsets, h, r.f, r.raw_len, r.stored, r.stored_len, r.crc, dst,
                       &kept[static_cast<size_t>(j)], &raw_buf, &scratch, verify_crc);
      if (e.ok() && use) e = use(a, dst);
    }
  };
  if (frames.size() > 1) {
    kernel_pool().parallel_for(0, static_cast<int64_t>(frames.size()), 1, run);
  } else {
    run(0, static_cast<int64_t>(frames.size()));
  }
  for (size_t j = 0; j < frames.size(); ++j) {
    COHORT_RETURN_IF_ERROR(errors[j]);
    *kept_total += kept[j];
  }
  return Status();
}

}  // namespace frames

using namespace frames;  // NOLINT: this file implements them

int64_t Chain::max_payload_bytes(std::span<const int64_t> offsets) const {
  const int64_t numel = offsets.back();
  const int64_t frames = (numel + frame_elems_ - 1) / frame_elems_;
  int64_t per_frame = max_raw_bytes(*this, frame_elems_, offsets.size() - 1);
  if (bytes_) per_frame = bytes_->bound(per_frame);
  return 64 + static_cast<int64_t>(spec_.size()) +
         4 * value_->side_floats() * static_cast<int64_t>(offsets.size()) +
         frames * (kFrameHeaderBytes + per_frame);
}

Result<std::string> Chain::encode(std::span<const float> values, std::span<const int64_t> offsets,
                                  uint64_t seed, std::vector<float>* residual,
                                  std::span<float> decoded) const {
  COHORT_RETURN_IF_ERROR(check_offsets(offsets));
  const int64_t numel = offsets.back();
  if (!decoded.empty() && static_cast<int64_t>(decoded.size()) != numel) {
    return Status::invalid_argument("codec: decoded output of " + std::to_string(decoded.size()) +
                                    " elements for a layout of " + std::to_string(numel));
  }
  if (static_cast<int64_t>(values.size()) != numel) {
    return Status::invalid_argument("codec: " + std::to_string(values.size()) +
                                    " values for a layout of " + std::to_string(numel));
  }
  // The vector that travels: values plus the error-feedback residual.
  std::vector<float> with_residual;
  std::span<const float> work = values;
  const bool ef = error_feedback() && residual != nullptr;
  if (ef) {
    with_residual.assign(values.begin(), values.end());
    if (!residual->empty()) {
      if (static_cast<int64_t>(residual->size()) != numel) {
        return Status::invalid_argument("codec: error-feedback residual has " +
                                        std::to_string(residual->size()) + " elements, the "
                                        "vector " + std::to_string(numel));
      }
      ops::axpy(1.0f, *residual, with_residual);
    }
    work = with_residual;
  }
  // Non-finite input is refused, naming the element. A sparsifier orders magnitudes and side
  // information (terngrad, kmeans) sorts and averages, so they need the check up front; other
  // chains check each frame as they encode it (in parallel, while the frame is in cache).
  auto check_finite = [&](int64_t lo, int64_t hi) -> Status {
    if (ops::all_finite(work.subspan(static_cast<size_t>(lo), static_cast<size_t>(hi - lo)))) {
      return Status();
    }
    for (int64_t i = lo; i < hi; ++i) {
      if (!std::isfinite(work[static_cast<size_t>(i)])) {
        return Status::invalid_argument("codec: cannot encode element " + std::to_string(i) +
                                        " (array " + std::to_string(segment_of(offsets, i)) +
                                        "): not a finite value");
      }
    }
    return Status();
  };
  const bool checked_up_front = sparsify_.has_value() || value_->side_floats() > 0;
  if (checked_up_front) COHORT_RETURN_IF_ERROR(check_finite(0, numel));
  const size_t nseg = offsets.size() - 1;
  // Which elements travel, and their values ("value space").
  std::vector<uint32_t> index;
  std::vector<float> kept_values;
  std::span<const float> v = work;
  if (sparsify_) {
    index = select(*sparsify_, work, seed);
    kept_values.resize(index.size());
    for (size_t i = 0; i < index.size(); ++i) kept_values[i] = work[index[i]];
    v = kept_values;
  }
  // Value-space start of each segment.
  auto value_pos = [&](int64_t element) -> int64_t {
    if (!sparsify_) return element;
    return std::lower_bound(index.begin(), index.end(), static_cast<uint32_t>(element)) -
           index.begin();
  };
  const int sf = value_->side_floats();
  std::vector<float> side(static_cast<size_t>(sf) * nseg);
  if (sf > 0) {
    for (size_t s = 0; s < nseg; ++s) {
      const int64_t lo = value_pos(offsets[s]), hi = value_pos(offsets[s + 1]);
      value_->fit(v.subspan(static_cast<size_t>(lo), static_cast<size_t>(hi - lo)),
                  side.data() + s * static_cast<size_t>(sf));
    }
  }
  // Header.
  std::string header(kMagic, 4);
  header.push_back(static_cast<char>(kPayloadVersion));
  header.push_back(static_cast<char>(sparsify_ ? kFlagSparse : 0));
  const uint16_t spec_len = static_cast<uint16_t>(spec_.size());
  header.append(reinterpret_cast<const char*>(&spec_len), 2);
  header += spec_;
  put_u64(&header, static_cast<uint64_t>(numel));
  put_u32(&header, static_cast<uint32_t>(nseg));
  put_u64(&header, fingerprint(offsets));
  put_u32(&header, static_cast<uint32_t>(frame_elems_));
  put_u64(&header, static_cast<uint64_t>(v.size()));
  put_u32(&header, static_cast<uint32_t>(side.size()));
  header.append(reinterpret_cast<const char*>(side.data()), 4 * side.size());
  put_u32(&header, crc32_of(reinterpret_cast<const uint8_t*>(header.data()), header.size()));

  // Frames, in parallel: each is independent once the selection and side info are known.
  const int64_t frames = (numel + frame_elems_ - 1) / frame_elems_;
  std::vector<std::string> out(static_cast<size_t>(frames));
  std::vector<Status> errors(static_cast<size_t>(frames));
  auto encode_frame = [&](int64_t f) {
    const int64_t a = f * frame_elems_;
    const int64_t b = std::min(numel, a + frame_elems_);
    if (!checked_up_front) {
      Status fin = check_finite(a, b);
      if (!fin.ok()) {
        errors[static_cast<size_t>(f)] = fin;
        return;
      }
    }
    // Without a byte codec the raw frame is built in place after its header.
    std::string own_raw;
    std::string& fr = out[static_cast<size_t>(f)];
    std::string& raw = bytes_ ? own_raw : fr;
    if (!bytes_) raw.assign(kFrameHeaderBytes, '\0');
    const size_t raw_start = raw.size();
    const int64_t pa = value_pos(a), pb = value_pos(b);
    if (sparsify_) {
      const uint32_t count = static_cast<uint32_t>(pb - pa);
      put_u32(&raw, count);
      for (int64_t i = pa; i < pb; ++i) {
        const uint16_t o = static_cast<uint16_t>(index[static_cast<size_t>(i)] - a);
        raw.append(reinterpret_cast<const char*>(&o), 2);
      }
    }
    // Runs of travelling values within one segment.
    std::vector<uint32_t> local;
    for (int64_t p = pa; p < pb;) {
      const int64_t element = sparsify_ ? index[static_cast<size_t>(p)] : p;
      const size_t seg = segment_of(offsets, element);
      const int64_t q = std::min(pb, value_pos(offsets[seg + 1]));
      const int64_t n = q - p;
      const size_t at = raw.size();
      raw.resize(at + static_cast<size_t>(value_->encoded_bytes(n)));
      const uint32_t* idx = nullptr;
      if (sparsify_) {
        local.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          local[static_cast<size_t>(i)] = index[static_cast<size_t>(p + i)] - static_cast<uint32_t>(a);
        }
        idx = local.data();
      }
      value_->encode(v.subspan(static_cast<size_t>(p), static_cast<size_t>(n)), element, idx,
                     static_cast<uint32_t>(a), seed,
                     sf > 0 ? side.data() + seg * static_cast<size_t>(sf) : nullptr,
                     reinterpret_cast<uint8_t*>(raw.data() + at));
      p = q;
    }
    const auto raw_len = static_cast<uint32_t>(raw.size() - raw_start);
    if (bytes_) {
      fr.resize(kFrameHeaderBytes);
      Status s = bytes_->compress(raw, &fr);
      if (!s.ok()) {
        errors[static_cast<size_t>(f)] = s;
        return;
      }
    }
    const uint32_t stored = static_cast<uint32_t>(fr.size() - kFrameHeaderBytes);
    auto* h = reinterpret_cast<uint8_t*>(fr.data());
    store_u32(h, raw_len);
    store_u32(h + 4, stored);
    store_u32(h + 8, crc32_of(h + kFrameHeaderBytes, stored));
  };
  if (frames > 1) {
    kernel_pool().parallel_for(0, frames, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t f = lo; f < hi; ++f) encode_frame(f);
    });
  } else if (frames == 1) {
    encode_frame(0);
  }
  for (const Status& s : errors) COHORT_RETURN_IF_ERROR(s);
  size_t total = header.size();
  for (const std::string& fr : out) total += fr.size();
  std::string payload;
  payload.reserve(total);
  payload += header;
  for (std::string& fr : out) {
    payload += fr;
    std::string().swap(fr);
  }
  // Every read of `values` is done: `decoded` may alias it. With error feedback, what did not
  // travel stays with the client: residual = sent-for (a copy, `work`) - received.
  std::vector<float> own;
  if (ef && decoded.empty()) {
    own.resize(static_cast<size_t>(numel));
    decoded = own;
  }
  if (!decoded.empty()) COHORT_RETURN_IF_ERROR(decode(payload, offsets, decoded));
  if (ef) {
    residual->assign(work.begin(), work.end());
    ops::axpy(-1.0f, decoded, *residual);
  }
  return payload;
}

Status Chain::decode(std::string_view payload, std::span<const int64_t> offsets,
                     std::span<float> out) const {
  return decode_or_fold(payload, offsets, out, 0.0f, false);
}

Status Chain::fold(std::string_view payload, std::span<const int64_t> offsets, float weight,
                   std::span<float> sum) const {
  return decode_or_fold(payload, offsets, sum, weight, true);
}

Status Chain::decode_or_fold(std::string_view payload, std::span<const int64_t> offsets,
                             std::span<float> out, float weight, bool fold) const {
  COHORT_RETURN_IF_ERROR(check_offsets(offsets));
  if (static_cast<int64_t>(out.size()) != offsets.back()) {
    return Status::invalid_argument("codec: output of " + std::to_string(out.size()) +
                                    " elements for a layout of " + std::to_string(offsets.back()));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
  const int64_t n = static_cast<int64_t>(payload.size());
  COHORT_ASSIGN_OR_RETURN(std::optional<Header> hdr, parse_header(*this, offsets, p, n));
  if (!hdr) {
    return Status::data_loss("codec payload truncated: " + std::to_string(n) +
                             " bytes end inside the header");
  }
  const Header& h = *hdr;
  std::vector<FrameRef> refs(static_cast<size_t>(h.num_frames));
  int64_t pos = h.bytes;
  for (int64_t f = 0; f < h.num_frames; ++f) {
    if (n - pos < kFrameHeaderBytes) {
      return Status::data_loss("codec payload truncated: frame " + std::to_string(f) + " of " +
                               std::to_string(h.num_frames) + " missing");
    }
    FrameRef& r = refs[static_cast<size_t>(f)];
    r.f = f;
    r.raw_len = load_u32(p + pos);
    r.stored_len = load_u32(p + pos + 4);
    r.crc = load_u32(p + pos + 8);
    const int64_t len = std::min(h.frame_elems, h.numel - f * h.frame_elems);
    COHORT_RETURN_IF_ERROR(check_frame_lengths(*this, offsets, f, len, r.raw_len, r.stored_len));
    const int64_t at = pos + kFrameHeaderBytes;
    if (n - at < r.stored_len) {
      return Status::data_loss("codec payload truncated inside frame " + std::to_string(f) +
                               " of " + std::to_string(h.num_frames));
    }
    r.stored = p + at;
    pos = at + r.stored_len;
  }
  if (pos != n) {
    return Status::invalid_argument("codec payload: " + std::to_string(n - pos) +
                                    " bytes after the last frame");
  }
  int64_t total_kept = 0;
  if (fold) {
    COHORT_RETURN_IF_ERROR(decode_frames(
        *this, offsets, h, refs, true, {},
        [&](int64_t first, std::span<const float> v) {
          ops::axpy(weight, v, out.subspan(static_cast<size_t>(first), v.size()));
          return Status();
        },
        &total_kept));
  } else {
    COHORT_RETURN_IF_ERROR(decode_frames(*this, offsets, h, refs, true, out, nullptr, &total_kept));
  }
  if (total_kept != h.kept) {
    return Status::invalid_argument("codec payload: frames carry " + std::to_string(total_kept) +
                                    " values, the header says " + std::to_string(h.kept));
  }
  return Status();
}

}  // namespace cohort::codec
