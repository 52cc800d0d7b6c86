// The terminal progress line: a reader of the metrics stream like every other view.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "cohort/runner/runner.h"

namespace cohort {

namespace {

std::string mmss(double s) {
  if (s < 0 || !std::isfinite(s)) return "--:--";
  const auto total = static_cast<long>(s + 0.5);
  char buf[32];
  if (total >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", total / 3600, (total / 60) % 60, total % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%02ld:%02ld", total / 60, total % 60);
  }
  return buf;
}

class ProgressLine final : public MetricsSink {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  ~ProgressLine() override {
    if (drawn_) std::fputc('\n', stderr);
  }

  void on_event(const Json& e) override {
    if (!enabled_) return;
    const std::string kind = e.value("event", "");
    if (kind == "start") {
      strategy_ = e.value("strategy", "");
      max_rounds_ = e.value("max_rounds", int64_t{0});
      max_vt_ = e.value("max_virtual_time_s", 0.0);
      return;
    }
    if (kind == "eval") {
      accuracy_ = e.value("accuracy", 0.0);
      updates_ = e.value("updates", updates_);
      have_acc_ = true;
    }
    if (kind == "summary") {
      draw(e, /*final=*/true);
      return;
    }
    if (kind == "eval" || kind == "round") draw(e, false);
  }
  // Bulk events (the per-client "clients") draw nothing.
  void on_event_text(std::string_view /*name*/, const std::string& /*text*/) override {}

 private:
  void draw(const Json& e, bool final) {
    const int64_t round = e.value("round", e.value("rounds", int64_t{0}));
    const double vt = e.value("virtual_time_s", 0.0);
    const double wall = e.value("wall_time_s", 0.0);
    // Remaining time from whichever budget is closer to done.
    double frac = 0;
    if (max_rounds_ > 0) frac = std::max(frac, static_cast<double>(round) / max_rounds_);
    if (max_vt_ > 0) frac = std::max(frac, vt / max_vt_);
    const double remaining = frac > 0 ? wall * (1 - frac) / frac : -1;
    char line[256];
    std::string rounds = std::to_string(round);
    if (max_rounds_ > 0) rounds += "/" + std::to_string(max_rounds_);
    std::snprintf(
        line, sizeof(line),
        "\r[%s] round %s | %lld updates | virtual %.1fs | acc %s | %s elapsed, %s left   ",
        strategy_.c_str(), rounds.c_str(), static_cast<long long>(updates_), vt,
        have_acc_ ? (std::to_string(accuracy_ * 100).substr(0, 5) + "%").c_str() : "-",
        mmss(wall).c_str(), final ? "00:00" : mmss(remaining).c_str());
    std::fputs(line, stderr);
    std::fflush(stderr);
    drawn_ = true;
  }

  bool enabled_;
  bool drawn_ = false;
  std::string strategy_;
  int64_t max_rounds_ = 0;
  double max_vt_ = 0;
  double accuracy_ = 0;
  int64_t updates_ = 0;
  bool have_acc_ = false;
};

}  // namespace

std::shared_ptr<MetricsSink> make_progress_line(bool enabled) {
  return std::make_shared<ProgressLine>(enabled && ::isatty(STDERR_FILENO) == 1);
}

}  // namespace cohort
