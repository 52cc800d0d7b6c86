// Metrics: the JSON-lines event stream everything user-facing reads.
//
// Runtimes and strategies emit events (one JSON object each, with an "event" field such as
// "eval", "round", "update", "summary"); sinks consume them. The metrics.jsonl file, the
// terminal progress line and reports are all sinks or readers of the same stream, so they
// never disagree. Field names and meanings are specified in docs/formats.md.
//
// Besides the event stream, a live view (the dashboard) can ask for the runtime's client table
// and running totals: the rows of the clients that changed since the last event, published
// after every host event, and only when a sink asks for them (nothing is built otherwise).
//
// Thread safety: MetricsHub::emit and publish_live may be called from any thread; sinks are
// called under the hub's lock, one call at a time, in emission order.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort {

using Json = nlohmann::ordered_json;

// Where a client stands, as a live view shows it. kLost / kRejected: its last task was lost /
// its last update rejected, and it has not had a task since.
enum class LiveClientState : uint8_t { kIdle, kTraining, kOffline, kLost, kRejected };
// "idle", "training", "offline", "lost", "rejected".
const char* to_string(LiveClientState s);

// One row of the runtime's client table.
struct LiveClient {
  ClientId id = 0;
  LiveClientState state = LiveClientState::kOffline;
  int64_t examples = 0;
  int64_t tasks = 0;
  int64_t accepted = 0;
  int64_t rejected = 0;
  int64_t lost = 0;
  double speed = 0.0;           // local steps per second measured from its last task (0 = none)
  double mean_staleness = 0.0;  // over its updates that arrived
  int64_t last_staleness = 0;
  double changed_at = 0.0;      // host clock (virtual in the simulator) of its last change
};

// The run's running totals, as of the host's last event.
struct LiveTotals {
  ModelVersion version = 0;
  int64_t updates = 0;  // accepted
  int64_t rejected = 0;
  int64_t lost = 0;
  int64_t bytes_up = 0;
  int64_t bytes_down = 0;
  int64_t in_flight = 0;  // tasks
  double now = 0.0;       // host clock (virtual in the simulator)
  double wall_s = 0.0;    // wall seconds since the run started
};

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  virtual void on_event(const Json& event) = 0;
  // A bulk event, given as its compact JSON text (one line) because it is too large to build
  // as a Json value: today only "clients", every participating client's statistics, which is
  // hundreds of MB as a Json value at a million clients. `name` is its "event" field. The
  // default parses it and calls on_event (tests, user sinks); sinks that write text take it
  // as is, and sinks that never read bulk events skip it.
  virtual void on_event_text(std::string_view name, const std::string& text);
  virtual void flush() {}
  // Live view (see above): sinks that return true get on_live after the host's events; the
  // first call after the run starts carries every client, later ones the clients that changed.
  virtual bool wants_live() const { return false; }
  virtual void on_live(const LiveTotals& totals, std::span<const LiveClient> changed) {}
};

// Appends one compact JSON object per line to a file, flushed per event (a crash loses at
// most the line being written).
class JsonlFileSink final : public MetricsSink {
 public:
  static Result<std::unique_ptr<JsonlFileSink>> open(const std::string& path);
  ~JsonlFileSink() override;
  void on_event(const Json& event) override;
  void on_event_text(std::string_view name, const std::string& text) override;
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
  // A bulk event as compact JSON text (MetricsSink::on_event_text).
  void emit_text(std::string_view name, const std::string& text);
  void flush();
  // Whether a sink wants the live view (then the runtime builds it).
  bool wants_live() const { return live_.load(std::memory_order_relaxed); }
  void publish_live(const LiveTotals& totals, std::span<const LiveClient> changed);

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<MetricsSink>> sinks_;
  std::atomic<bool> live_{false};
};

// Writes `j` to `path` atomically (temp file, fsync, rename), pretty-printed.
Status write_json_file(const std::string& path, const Json& j);

// Writes a JSON array of `n` elements to `path` atomically, one compact element per line,
// element i's text appended to `out` by `element(i, out)`, the array between `prefix` and
// `suffix` (e.g. `{"clients": ` and `}` to write an object holding it). Streams: for arrays
// too large to hold as a Json value (a million clients' records), in bounded memory.
Status write_json_array_file(const std::string& path, size_t n,
                             const std::function<void(size_t i, std::string& out)>& element,
                             std::string_view prefix = {}, std::string_view suffix = {});

}  // namespace cohort
