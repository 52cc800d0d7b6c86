// --dashboard for the commands that run training (`cohort simulate`, `cohort serve`): the
// flags, and the dashboard they start (include/cohort/dashboard/, docs/dashboard.md).
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cohort/core/metrics.h"
#include "cohort/core/status.h"

namespace cohort::dashboard {
class DashboardServer;
class LiveState;
}  // namespace cohort::dashboard

namespace cohort::cli {

struct DashboardArgs {
  std::string address;     // --dashboard HOST:PORT ("" = no dashboard)
  std::string token_file;  // --dashboard-token-file: the admin token (else one is generated)
  void add_options(CLI::App* cmd);
};

// A running dashboard: add sink() to the run's metrics before it starts.
class LiveDashboard {
 public:
  ~LiveDashboard();
  std::shared_ptr<MetricsSink> sink() const;
  const std::string& url() const { return url_; }

 private:
  friend Result<std::unique_ptr<LiveDashboard>> start_dashboard(const DashboardArgs& args);
  LiveDashboard() = default;
  std::shared_ptr<dashboard::LiveState> state_;
  std::unique_ptr<dashboard::DashboardServer> server_;
  std::string url_;
};

// Starts the dashboard the flags ask for and prints its URL (with the token) on stderr; null
// when --dashboard is not given. Errors name the flag: a bad address, a missing or too short
// token file, an address that cannot be bound.
Result<std::unique_ptr<LiveDashboard>> start_dashboard(const DashboardArgs& args);

}  // namespace cohort::cli
