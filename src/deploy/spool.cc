#include "spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cohort/core/ops.h"

namespace cohort::deploy {

// ---- Spool -------------------------------------------------------------------------------------

Spool::Spool(std::string dir, int64_t memory_limit, int64_t expected)
    : dir_(std::move(dir)), memory_limit_(memory_limit), expected_(expected) {}

Spool::~Spool() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

Status write_all(int fd, const char* p, size_t n, const std::string& dir) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      return Status::internal("upload spool in " + dir + ": write failed: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status();
}

}  // namespace

Status Spool::append(std::string_view bytes) {
  if (fd_ < 0 && size_ + static_cast<int64_t>(bytes.size()) <= memory_limit_ &&
      expected_ <= memory_limit_) {
    if (size_ == 0 && expected_ > 0) mem_.reserve(static_cast<size_t>(expected_));
    mem_.append(bytes);
    size_ += static_cast<int64_t>(bytes.size());
    return Status();
  }
  if (fd_ < 0) {
    fd_ = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      // Filesystems without O_TMPFILE: a named file, unlinked at once.
      std::string path = dir_ + "/cohort-upload-XXXXXX";
      fd_ = ::mkstemp(path.data());
      if (fd_ >= 0) ::unlink(path.c_str());
    }
    if (fd_ < 0) {
      return Status::internal("upload spool: cannot create a temporary file in " + dir_ + ": " +
                              std::strerror(errno));
    }
    COHORT_RETURN_IF_ERROR(write_all(fd_, mem_.data(), mem_.size(), dir_));
    std::string().swap(mem_);
  }
  COHORT_RETURN_IF_ERROR(write_all(fd_, bytes.data(), bytes.size(), dir_));
  size_ += static_cast<int64_t>(bytes.size());
  return Status();
}

Status Spool::read(const std::function<Status(std::string_view)>& fn, int64_t piece) const {
  if (fd_ < 0) {
    for (int64_t at = 0; at < size_; at += piece) {
      COHORT_RETURN_IF_ERROR(fn(std::string_view(mem_).substr(static_cast<size_t>(at),
                                                              static_cast<size_t>(piece))));
    }
    return Status();
  }
  std::string buf(static_cast<size_t>(std::min(piece, std::max<int64_t>(size_, 1))), '\0');
  for (int64_t at = 0; at < size_;) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(piece, size_ - at));
    const ssize_t r = ::pread(fd_, buf.data(), want, at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      return Status::internal("upload spool in " + dir_ + ": read failed at byte " +
                              std::to_string(at) + ": " +
                              (r < 0 ? std::strerror(errno) : "unexpected end of file"));
    }
    COHORT_RETURN_IF_ERROR(fn(std::string_view(buf.data(), static_cast<size_t>(r))));
    at += r;
  }
  return Status();
}

// ---- DeltaDecoder ----------------------------------------------------------------------------

DeltaDecoder::DeltaDecoder(std::shared_ptr<const codec::Chain> chain,
                           std::shared_ptr<const ArrayLayout> layout, std::string what,
                           codec::StreamDecoder::Options options)
    : layout_(std::move(layout)), what_(std::move(what)) {
  if (chain) {
    codec_ = std::make_unique<codec::StreamDecoder>(
        std::move(chain), codec::segment_offsets(*layout_), what_, options);
  }
}

Status DeltaDecoder::feed(std::string_view bytes, const codec::StreamDecoder::Sink& sink) {
  if (codec_) return codec_->feed(bytes, sink);
  const int64_t numel = layout_->numel();
  auto emit = [&]() -> Status {
    const std::span<const float> v(frame_);
    if (!ops::all_finite(v)) {
      for (size_t i = 0; i < v.size(); ++i) {
        if (std::isfinite(v[i])) continue;
        const int64_t e = next_element_ + static_cast<int64_t>(i);
        for (const ArraySpec& a : layout_->specs()) {
          if (e >= a.offset && e < a.offset + a.numel) {
            return Status::invalid_argument(what_ + ": array '" + a.name + "' element " +
                                            std::to_string(e - a.offset) + " is " +
                                            (std::isnan(v[i]) ? "NaN" : "infinite"));
          }
        }
      }
    }
    COHORT_RETURN_IF_ERROR(sink(next_element_, v));
    next_element_ += static_cast<int64_t>(v.size());
    frame_.clear();
    return Status();
  };
  while (!bytes.empty()) {
    if (next_element_ + static_cast<int64_t>(frame_.size()) >= numel) {
      return Status::resource_exhausted(what_ + ": more than the model's " +
                                        std::to_string(numel * 4) + " bytes");
    }
    // Complete a float split across chunks, then take whole floats.
    if (!carry_.empty() || bytes.size() < 4) {
      const size_t take = std::min(bytes.size(), 4 - carry_.size());
      carry_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (carry_.size() == 4) {
        float f;
        std::memcpy(&f, carry_.data(), 4);
        frame_.push_back(f);
        carry_.clear();
      }
    } else {
      const int64_t room = std::min<int64_t>(
          codec::kDefaultFrameElems - static_cast<int64_t>(frame_.size()),
          numel - next_element_ - static_cast<int64_t>(frame_.size()));
      const int64_t n = std::min<int64_t>(room, static_cast<int64_t>(bytes.size() / 4));
      const size_t at = frame_.size();
      frame_.resize(at + static_cast<size_t>(n));
      std::memcpy(frame_.data() + at, bytes.data(), static_cast<size_t>(n) * 4);
      bytes.remove_prefix(static_cast<size_t>(n) * 4);
    }
    if (static_cast<int64_t>(frame_.size()) == codec::kDefaultFrameElems ||
        next_element_ + static_cast<int64_t>(frame_.size()) == numel) {
      COHORT_RETURN_IF_ERROR(emit());
    }
  }
  return Status();
}

Status DeltaDecoder::finish() const {
  if (codec_) return codec_->finish();
  if (next_element_ != layout_->numel() || !carry_.empty()) {
    return Status::data_loss(what_ + " truncated: " + std::to_string(next_element_) + " of " +
                             std::to_string(layout_->numel()) + " elements");
  }
  return Status();
}

// ---- FrameStats, SpooledDelta ------------------------------------------------------------------

void FrameStats::add(std::span<const float> v) {
  const ops::Magnitudes m = ops::magnitudes(v);
  sum_squares += m.sum_squares;
  max_abs = std::max(max_abs, m.max_abs);
}

SpooledDelta::SpooledDelta(std::shared_ptr<const codec::Chain> chain,
                           std::shared_ptr<const ArrayLayout> layout, std::unique_ptr<Spool> spool,
                           const FrameStats& stats)
    : chain_(std::move(chain)), layout_(std::move(layout)), spool_(std::move(spool)),
      stats_(stats) {}

double SpooledDelta::l2_norm() const { return std::sqrt(stats_.sum_squares) * std::fabs(scale_); }
float SpooledDelta::max_abs() const { return stats_.max_abs * std::fabs(scale_); }

Status SpooledDelta::replay(
    const std::function<Status(int64_t, std::span<const float>)>& fn) const {
  // The bytes were checked (CRCs, codes, finiteness) when they arrived and have not left
  // this process: frames are decoded without their CRCs, several at a time in parallel.
  DeltaDecoder decoder(chain_, layout_, "spooled update",
                       {.verify_crc = false, .parallel = true});
  const codec::StreamDecoder::Sink sink = [&](int64_t first, std::span<const float> v) {
    if (scale_ == 1.0f) return fn(first, v);
    std::vector<float> scaled(v.begin(), v.end());
    ops::scale(scaled, scale_);
    return fn(first, scaled);
  };
  COHORT_RETURN_IF_ERROR(spool_->read(
      [&](std::string_view piece) {
        return decoder.feed(piece, sink);
      },
      int64_t{1} << 20));
  return decoder.finish();
}

}  // namespace cohort::deploy
