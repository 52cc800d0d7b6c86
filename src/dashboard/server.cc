#include "cohort/dashboard/server.h"

#include <httplib.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace cohort::dashboard {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxClientRows = 10000;

// No caching, no sniffing, no framing, nothing fetched from elsewhere.
const httplib::Headers& security_headers() {
  static const httplib::Headers h = {
      {"Cache-Control", "no-store"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"}};
  return h;
}

bool token_matches(const std::string& given, const std::string& expected) {
  if (given.size() != expected.size()) return false;
  return sodium_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

// The token from "Authorization: Bearer T" or ?token=T.
std::string request_token(const httplib::Request& req) {
  const std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (auth.compare(0, prefix.size(), prefix) == 0) return auth.substr(prefix.size());
  if (req.has_param("token")) return req.get_param_value("token");
  return "";
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(Json{{"error", message}}.dump(), "application/json");
}

}  // namespace

Result<DashboardOptions> parse_address(const std::string& spec) {
  DashboardOptions o;
  std::string port_text = spec;
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos) {
    std::string host = spec.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);  // [::1]:8080
    }
    if (!host.empty()) o.host = host;
    port_text = spec.substr(colon + 1);
  }
  const std::string what = "dashboard address '" + spec + "'";
  if (port_text.empty() ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      port_text.size() > 5) {
    return Status::invalid_argument(what + ": expected HOST:PORT, :PORT or PORT with a port in 0-65535");
  }
  const int port = std::stoi(port_text);
  if (port > 65535) return Status::invalid_argument(what + ": port " + port_text + " is above 65535");
  o.port = port;
  return o;
}

std::string random_token() {
  if (sodium_init() < 0) return "";
  unsigned char raw[16];
  randombytes_buf(raw, sizeof raw);
  char hex[2 * sizeof raw + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  return hex;
}

DashboardServer::DashboardServer() = default;

DashboardServer::~DashboardServer() { stop(); }

Status DashboardServer::start(DashboardOptions options, std::shared_ptr<const LiveState> state) {
  if (http_) return Status::failed_precondition("the dashboard is already serving");
  if (state == nullptr) return Status::invalid_argument("dashboard: no state to serve");
  if (options.token.empty()) options.token = random_token();
  if (options.token.size() < kMinTokenLength) {
    return Status::invalid_argument("dashboard token: at least " +
                                    std::to_string(kMinTokenLength) + " characters, got " +
                                    std::to_string(options.token.size()));
  }
  options_ = std::move(options);
  state_ = std::move(state);
  auto http = std::make_unique<httplib::Server>();
  http->set_default_headers(security_headers());
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would let a second
  // process bind the same port and take half of the connections.
  http->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(dashboard_page(), "text/html; charset=utf-8");
  });
  http->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  const std::string token = options_.token;
  std::shared_ptr<const LiveState> st = state_;
  http->Get("/api/state", [token, st](const httplib::Request& req, httplib::Response& res) {
    if (!token_matches(request_token(req), token)) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"cohort\"");
      send_error(res, 401, "missing or wrong token: open the URL cohort printed (?token=...)");
      return;
    }
    size_t limit = 200;
    if (req.has_param("clients")) {
      const std::string v = req.get_param_value("clients");
      if (v.empty() || v.size() > 6 ||
          !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        send_error(res, 400, "clients: expected a count of client rows, got '" + v + "'");
        return;
      }
      limit = std::min<size_t>(std::stoul(v), kMaxClientRows);
    }
    res.set_content(st->snapshot(limit).dump(-1, ' ', false, Json::error_handler_t::replace),
                    "application/json");
  });
  http->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) send_error(res, res.status, "not found (the dashboard serves /, /api/state)");
  });
  if (options_.port == 0) {
    port_ = http->bind_to_any_port(options_.host);
    if (port_ <= 0) {
      return Status::unavailable("dashboard: cannot listen on " + options_.host + " (any port)");
    }
  } else {
    if (!http->bind_to_port(options_.host, options_.port)) {
      return Status::unavailable("dashboard: cannot listen on " + options_.host + ":" +
                                 std::to_string(options_.port) +
                                 " (in use, or not an address of this machine)");
    }
    port_ = options_.port;
  }
  httplib::Server* raw = http.get();
  http_ = std::move(http);
  thread_ = std::thread([raw] { raw->listen_after_bind(); });
  // stop() only works once the server runs: wait for it (it starts at once).
  for (int i = 0; i < 2000 && !raw->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status();
}

void DashboardServer::stop() {
  if (!http_) return;
  http_->stop();
  if (thread_.joinable()) thread_.join();
  http_.reset();
}

std::string DashboardServer::url() const {
  const bool v6 = options_.host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + options_.host + "]" : options_.host;
  return "http://" + host + ":" + std::to_string(port_) + "/?token=" + options_.token;
}

}  // namespace cohort::dashboard
