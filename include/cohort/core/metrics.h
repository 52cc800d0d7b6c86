// Metrics: the JSON-lines event stream everything user-facing reads.
//
// Runtimes and strategies emit events (one JSON object each, with an "event" field such as
// "eval", "round", "update", "summary"); sinks consume them. The metrics.jsonl file, the
// terminal progress line and reports are all sinks or readers of the same stream, so they
// never disagree. Field names and meanings are specified in docs/formats.md.
//
// Thread safety: MetricsHub::emit may be called from any thread; sinks are called under the
// hub's lock, one event at a time, in emission order.
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cohort/core/status.h"

namespace cohort {

using Json = nlohmann::ordered_json;

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  virtual void on_event(const Json& event) = 0;
  virtual void flush() {}
};

// Appends one compact JSON object per line to a file, flushed per event (a crash loses at
// most the line being written).
class JsonlFileSink final : public MetricsSink {
 public:
  static Result<std::unique_ptr<JsonlFileSink>> open(const std::string& path);
  ~JsonlFileSink() override;
  void on_event(const Json& event) override;
  void flush() override;

 private:
  explicit JsonlFileSink(std::FILE* f) : f_(f) {}
  std::FILE* f_;
};

// Keeps every event in memory (tests, comparisons).
class MemorySink final : public MetricsSink {
 public:
  void on_event(const Json& event) override { events.push_back(event); }
  std::vector<Json> events;
};

class MetricsHub {
 public:
  void add_sink(std::shared_ptr<MetricsSink> sink);
  void emit(const Json& event);
  void flush();

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<MetricsSink>> sinks_;
};

// Writes `j` to `path` atomically (temp file, fsync, rename), pretty-printed.
Status write_json_file(const std::string& path, const Json& j);

}  // namespace cohort
