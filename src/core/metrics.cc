#include "cohort/core/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cohort {

Result<std::unique_ptr<JsonlFileSink>> JsonlFileSink::open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    return Status::unavailable("cannot open metrics file '" + path + "': " + std::strerror(errno));
  }
  return std::unique_ptr<JsonlFileSink>(new JsonlFileSink(f));
}

JsonlFileSink::~JsonlFileSink() { std::fclose(f_); }

void JsonlFileSink::on_event(const Json& event) {
  const std::string line = event.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::fwrite(line.data(), 1, line.size(), f_);
  std::fputc('\n', f_);
  std::fflush(f_);
}

void JsonlFileSink::flush() { std::fflush(f_); }

const char* to_string(LiveClientState s) {
  switch (s) {
    case LiveClientState::kIdle: return "idle";
    case LiveClientState::kTraining: return "training";
    case LiveClientState::kOffline: return "offline";
    case LiveClientState::kLost: return "lost";
    case LiveClientState::kRejected: return "rejected";
  }
  return "unknown";
}

void MetricsHub::add_sink(std::shared_ptr<MetricsSink> sink) {
  std::lock_guard<std::mutex> lock(mu_);
  if (sink->wants_live()) live_.store(true, std::memory_order_relaxed);
  sinks_.push_back(std::move(sink));
}

void MetricsHub::publish_live(const LiveTotals& totals, std::span<const LiveClient> changed) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : sinks_) {
    if (s->wants_live()) s->on_live(totals, changed);
  }
}

void MetricsHub::emit(const Json& event) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : sinks_) s->on_event(event);
}

void MetricsHub::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : sinks_) s->flush();
}

Status write_json_file(const std::string& path, const Json& j) {
  const std::string tmp = path + ".tmp";
  const std::string text = j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::unavailable("cannot write '" + tmp + "': " + std::strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      return Status::unavailable("cannot write '" + tmp + "': " + err);
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::unavailable("cannot rename '" + tmp + "' to '" + path +
                               "': " + std::strerror(errno));
  }
  return Status();
}

}  // namespace cohort
