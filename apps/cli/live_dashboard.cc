#include "live_dashboard.h"

#include <cstdio>
#include <fstream>

#include "cohort/dashboard/live_state.h"
#include "cohort/dashboard/server.h"

namespace cohort::cli {

void DashboardArgs::add_options(CLI::App* cmd) {
  cmd->add_option("--dashboard", address,
                  "Serve a live web dashboard on HOST:PORT (127.0.0.1 unless a host is given; "
                  "port 0 = any free port); its URL with the admin token is printed on stderr");
  cmd->add_option("--dashboard-token-file", token_file,
                  "File whose first line is the dashboard's admin token (>= 16 characters); "
                  "default: a random token");
}

LiveDashboard::~LiveDashboard() = default;

std::shared_ptr<MetricsSink> LiveDashboard::sink() const { return state_; }

namespace {

Result<std::string> read_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("--dashboard-token-file: cannot read '" + path + "'");
  std::string line;
  std::getline(in, line);
  const auto first = line.find_first_not_of(" \t\r");
  const auto last = line.find_last_not_of(" \t\r");
  line = first == std::string::npos ? "" : line.substr(first, last - first + 1);
  if (line.size() < 16) {
    return Status::invalid_argument("--dashboard-token-file: '" + path +
                                    "': the token on its first line must have at least 16 "
                                    "characters, got " + std::to_string(line.size()));
  }
  return line;
}

}  // namespace

Result<std::unique_ptr<LiveDashboard>> start_dashboard(const DashboardArgs& args) {
  if (args.address.empty()) {
    if (!args.token_file.empty()) {
      return Status::invalid_argument("--dashboard-token-file needs --dashboard HOST:PORT");
    }
    return std::unique_ptr<LiveDashboard>();
  }
  Result<dashboard::DashboardOptions> opts = dashboard::parse_address(args.address);
  if (!opts.ok()) return opts.error().with_context("--dashboard");
  if (!args.token_file.empty()) {
    COHORT_ASSIGN_OR_RETURN(opts->token, read_token(args.token_file));
  }
  std::unique_ptr<LiveDashboard> d(new LiveDashboard());
  d->state_ = std::make_shared<dashboard::LiveState>();
  d->server_ = std::make_unique<dashboard::DashboardServer>();
  COHORT_RETURN_IF_ERROR(d->server_->start(*opts, d->state_).with_context("--dashboard"));
  d->url_ = d->server_->url();
  std::fprintf(stderr, "cohort: dashboard at %s\n", d->url_.c_str());
  if (opts->host != "127.0.0.1" && opts->host != "::1" && opts->host != "localhost") {
    std::fprintf(stderr,
                 "cohort: warning: the dashboard listens on %s, beyond this machine, over plain "
                 "HTTP: anyone who can see its traffic can read the token\n",
                 opts->host.c_str());
  }
  return d;
}

}  // namespace cohort::cli
