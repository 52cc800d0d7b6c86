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

void JsonlFileSink::on_event_text(std::string_view /*name*/, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), f_);
  std::fputc('\n', f_);
  std::fflush(f_);
}

void JsonlFileSink::flush() { std::fflush(f_); }

void MetricsSink::on_event_text(std::string_view /*name*/, const std::string& text) {
  on_event(Json::parse(text));
}

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

void MetricsHub::emit_text(std::string_view name, const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : sinks_) s->on_event_text(name, text);
}

void MetricsHub::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : sinks_) s->flush();
}

namespace {

// Writes to `path` through a temp file, fsync and rename: readers see the old file or the
// whole new one. `produce(chunk)` appends the next piece of text and returns false after the last.
Status write_file_atomically(const std::string& path,
                             const std::function<bool(std::string& chunk)>& produce) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::unavailable("cannot write '" + tmp + "': " + std::strerror(errno));
  std::string text;
  bool more = true;
  while (more) {
    text.clear();
    more = produce(text);
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
  }
  ::fsync(fd);
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::unavailable("cannot rename '" + tmp + "' to '" + path +
                               "': " + std::strerror(errno));
  }
  return Status();
}

}  // namespace

Status write_json_file(const std::string& path, const Json& j) {
  return write_file_atomically(path, [&](std::string& chunk) {
    chunk = j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
    return false;
  });
}

Status write_json_array_file(const std::string& path, size_t n,
                             const std::function<void(size_t i, std::string& out)>& element,
                             std::string_view prefix, std::string_view suffix) {
  constexpr size_t kChunkBytes = 1 << 20;
  size_t next = 0;
  bool opened = false;
  return write_file_atomically(path, [&](std::string& chunk) {
    if (!opened) {
      chunk += prefix;
      chunk += "[";
      opened = true;
    }
    while (next < n && chunk.size() < kChunkBytes) {
      chunk += next == 0 ? "\n" : ",\n";
      element(next, chunk);
      ++next;
    }
    if (next < n) return true;
    chunk += "\n]";
    chunk += suffix;
    chunk += "\n";
    return false;
  });
}

}  // namespace cohort
