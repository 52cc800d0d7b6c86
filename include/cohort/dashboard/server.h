// The live dashboard's web server (cpp-httplib): a read-only page and the JSON it polls,
// protected by an admin token and bound to the loopback interface unless told otherwise.
//
//   GET /                  the page (plain HTML and one inline script; no CDN, no network);
//                          it carries no run data, so it is served without the token and asks
//                          for /api/state with the token from its own URL (?token=...)
//   GET /api/state         LiveState::snapshot() as JSON; needs the token, as
//                          "Authorization: Bearer TOKEN" or ?token=TOKEN; ?clients=N limits
//                          the client rows (default 200, at most 10000)
//   GET /healthz           "ok" (no token; for probes)
// Anything else is 404; a missing or wrong token is 401 (compared in constant time). Responses
// are never cached and carry a restrictive Content-Security-Policy. docs/dashboard.md.
//
// Thread safety: start() and stop() from one thread; requests are served on the server's own
// threads and only read the LiveState.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "cohort/core/status.h"
#include "cohort/dashboard/live_state.h"

namespace httplib {
class Server;
}

namespace cohort::dashboard {

struct DashboardOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = any free port (port() tells which)
  // The admin token (at least 16 characters); empty = generate one (random_token()).
  std::string token;
};

// "HOST:PORT" or ":PORT" or "PORT" (host 127.0.0.1). InvalidArgument naming what is wrong.
Result<DashboardOptions> parse_address(const std::string& spec);

// 32 hex characters from libsodium's random generator.
std::string random_token();

class DashboardServer {
 public:
  DashboardServer();
  ~DashboardServer();  // stop()s
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  // Binds and starts serving `state` (kept alive by the server). Unavailable when the address
  // cannot be bound, InvalidArgument for a token shorter than 16 characters.
  Status start(DashboardOptions options, std::shared_ptr<const LiveState> state);
  void stop();

  int port() const { return port_; }
  const std::string& token() const { return options_.token; }
  // http://HOST:PORT/?token=TOKEN: what to open in a browser.
  std::string url() const;

 private:
  DashboardOptions options_;
  std::shared_ptr<const LiveState> state_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

// The page served at "/" (dashboard/page.html, compiled in).
const std::string& dashboard_page();

}  // namespace cohort::dashboard
