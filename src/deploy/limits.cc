#include "deploy/limits.h"

#include <algorithm>
#include <cstdio>

#include "cohort/core/format.h"

namespace cohort::deploy {

StreamWatchdog::StreamWatchdog(const DeployConfig& limits) : limits_(limits) {
  thread_ = std::thread([this] { run(); });
}

StreamWatchdog::~StreamWatchdog() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::unique_ptr<StreamWatchdog::Stream> StreamWatchdog::watch(grpc::ServerContextBase* ctx,
                                                              const std::string& what) {
  std::lock_guard<std::mutex> lk(mu_);
  const uint64_t id = next_id_++;
  Entry& e = entries_[id];
  e.ctx = ctx;
  e.what = what;
  e.start = e.last = clock_.now();
  return std::unique_ptr<Stream>(new Stream(this, id));
}

StreamWatchdog::Stream::~Stream() {
  std::lock_guard<std::mutex> lk(dog_->mu_);
  dog_->entries_.erase(id_);
}

void StreamWatchdog::Stream::progress(int64_t bytes) {
  std::lock_guard<std::mutex> lk(dog_->mu_);
  auto it = dog_->entries_.find(id_);
  if (it == dog_->entries_.end()) return;
  it->second.last = dog_->clock_.now();
  it->second.bytes += bytes;
}

void StreamWatchdog::Stream::excuse() {
  std::lock_guard<std::mutex> lk(dog_->mu_);
  auto it = dog_->entries_.find(id_);
  if (it == dog_->entries_.end()) return;
  const double t = dog_->clock_.now();
  it->second.start += t - it->second.last;
  it->second.last = t;
}

std::string StreamWatchdog::Stream::cancelled_reason() const {
  std::lock_guard<std::mutex> lk(dog_->mu_);
  auto it = dog_->entries_.find(id_);
  return it == dog_->entries_.end() ? std::string() : it->second.reason;
}

void StreamWatchdog::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, std::chrono::milliseconds(100));
    const double t = clock_.now();
    for (auto& [id, e] : entries_) {
      if (!e.reason.empty()) continue;
      const double age = t - e.start;
      if (limits_.stream_idle_timeout_s > 0 && t - e.last > limits_.stream_idle_timeout_s) {
        e.reason = strformat("%s stream idle for more than %g s (deploy.stream_idle_timeout_s)",
                             e.what.c_str(), limits_.stream_idle_timeout_s);
      } else if (limits_.stream_max_s > 0 && age > limits_.stream_max_s) {
        e.reason = strformat("%s stream longer than %g s (deploy.stream_max_s)", e.what.c_str(),
                             limits_.stream_max_s);
      } else if (limits_.stream_min_bytes_per_s > 0 && age > limits_.stream_grace_s &&
                 static_cast<double>(e.bytes) / age < limits_.stream_min_bytes_per_s) {
        e.reason = strformat("%s stream slower than %g bytes/s after %g s "
                             "(deploy.stream_min_bytes_per_s)",
                             e.what.c_str(), limits_.stream_min_bytes_per_s, limits_.stream_grace_s);
      }
      if (!e.reason.empty()) e.ctx->TryCancel();
    }
  }
}

Status ClientLimits::admit_call(ClientId id) {
  if (limits_.max_calls_per_s <= 0) return Status();
  std::lock_guard<std::mutex> lk(mu_);
  Bucket& b = buckets_[id];
  const double t = clock_.now();
  const double burst = 2 * limits_.max_calls_per_s;
  if (b.at < 0) {
    b.tokens = burst;
  } else {
    b.tokens = std::min(burst, b.tokens + (t - b.at) * limits_.max_calls_per_s);
  }
  b.at = t;
  if (b.tokens < 1) {
    return Status::resource_exhausted(
        strformat("client %lld calls faster than %g calls/s (deploy.max_calls_per_s)",
                  static_cast<long long>(id), limits_.max_calls_per_s));
  }
  b.tokens -= 1;
  return Status();
}

Result<std::unique_ptr<ClientLimits::Slot>> ClientLimits::open_stream(ClientId id,
                                                                     const char* what) {
  std::lock_guard<std::mutex> lk(mu_);
  int64_t& n = streams_[id];
  if (limits_.max_streams_per_client > 0 && n >= limits_.max_streams_per_client) {
    return Status::resource_exhausted(strformat(
        "%s refused: client %lld already has %lld streams open (deploy.max_streams_per_client)",
        what, static_cast<long long>(id), static_cast<long long>(n)));
  }
  ++n;
  return std::unique_ptr<Slot>(new Slot(this, id));
}

ClientLimits::Slot::~Slot() {
  std::lock_guard<std::mutex> lk(owner_->mu_);
  --owner_->streams_[id_];
}

Status UploadBudget::reserve(int64_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  if (max_bytes_ > 0 && reserved_ + bytes > max_bytes_) {
    return Status::resource_exhausted(strformat(
        "uploads being assembled hold %lld of the %lld bytes allowed (deploy.max_upload_bytes); "
        "push again later",
        static_cast<long long>(reserved_), static_cast<long long>(max_bytes_)));
  }
  reserved_ += bytes;
  return Status();
}

void UploadBudget::release(int64_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  reserved_ -= bytes;
}

void LogLimiter::log(const std::string& line) {
  std::lock_guard<std::mutex> lk(mu_);
  const double t = clock_.now();
  if (t - window_start_ > window_s_) {
    if (dropped_ > 0) {
      std::fprintf(stderr, "cohort serve: (%lld log lines suppressed in the last %g s)\n",
                   static_cast<long long>(dropped_), window_s_);
    }
    window_start_ = t;
    in_window_ = 0;
    dropped_ = 0;
  }
  if (in_window_ >= per_window_) {
    ++dropped_;
    return;
  }
  ++in_window_;
  std::fprintf(stderr, "cohort serve: %s\n", printable(line, 2000).c_str());
  std::fflush(stderr);
}

}  // namespace cohort::deploy
