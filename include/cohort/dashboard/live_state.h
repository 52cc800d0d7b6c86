// LiveState: what the dashboard shows, kept up to date from a running simulation or deployment.
//
// It is a MetricsSink: it reads the event stream (start, eval, the commit events, rejected,
// lost, privacy, robust, summary) and the runtime's live client table (MetricsSink::on_live),
// and keeps a bounded picture of the run: the run's identity, the clients with their state,
// the evaluation curve and the clients' training loss, updates and bytes per second over the
// last seconds of wall time, the most recent rejected inputs and lost tasks with their
// reasons, the privacy budget spent and the trust scores. snapshot() renders it as the JSON
// document that the dashboard's page polls (docs/dashboard.md specifies its fields).
//
// No HTTP here (dashboard/server.h serves it), so it is tested on its own.
//
// Thread safety: every method may be called from any thread (one internal lock).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cohort/core/metrics.h"

namespace cohort::dashboard {

struct LiveStateOptions {
  // Curve points kept; beyond it every other point is dropped (the curve keeps its shape).
  size_t max_points = 2000;
  // Recent rejected updates and lost tasks kept (each).
  size_t max_recent = 50;
  // Rates (updates/s, bytes/s) are taken over this many seconds of wall time.
  double rate_window_s = 10.0;
};

class LiveState final : public MetricsSink {
 public:
  explicit LiveState(LiveStateOptions options = {});

  void on_event(const Json& event) override;
  // Bulk events (the per-client "clients") are counted, not read: the table comes from the
  // live view.
  void on_event_text(std::string_view name, const std::string& text) override;
  bool wants_live() const override { return true; }
  void on_live(const LiveTotals& totals, std::span<const LiveClient> changed) override;

  // The dashboard's JSON document. `client_limit`: at most this many client rows (those
  // training first, then by id); `state_counts` always covers every client.
  Json snapshot(size_t client_limit = 200) const;

 private:
  void thin(std::vector<Json>& points) const;
  void push_recent(std::deque<Json>& q, Json item) const;

  LiveStateOptions options_;
  mutable std::mutex mu_;
  Json run_ = Json::object();  // from "start"
  std::string status_ = "waiting";
  Json summary_;  // from "summary", null before
  std::vector<Json> evals_;
  std::vector<Json> train_loss_;
  Json last_commit_;
  std::deque<Json> rejected_;
  std::deque<Json> lost_;
  Json privacy_;
  std::map<ClientId, double> trust_;
  LiveTotals totals_;
  bool have_totals_ = false;
  std::deque<LiveTotals> window_;  // totals over the last rate_window_s of wall time
  std::unordered_map<ClientId, LiveClient> clients_;
  int64_t events_ = 0;
};

}  // namespace cohort::dashboard
