// The dashboard's HTTP server: token, routes, errors, addresses.
#include "cohort/dashboard/server.h"

#include <httplib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace cohort::dashboard {
namespace {

using ::testing::HasSubstr;

const std::string kToken = "0123456789abcdef0123";

struct Served {
  Served() {
    state->on_event({{"event", "start"}, {"strategy", "fedavg"}, {"clients", 2}});
    DashboardOptions o;
    o.token = kToken;
    Status s = server.start(o, state);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  httplib::Client client() { return httplib::Client("127.0.0.1", server.port()); }
  std::shared_ptr<LiveState> state = std::make_shared<LiveState>();
  DashboardServer server;
};

TEST(DashboardServerTest, ServesThePageWithoutDataAndTheStateOnlyWithTheToken) {
  Served s;
  ASSERT_GT(s.server.port(), 0);
  auto cli = s.client();
  auto page = cli.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->body, HasSubstr("Cohort dashboard"));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_EQ(page->get_header_value("Cache-Control"), "no-store");

  auto anon = cli.Get("/api/state");
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->status, 401);
  EXPECT_THAT(anon->body, HasSubstr("token"));
  auto wrong = cli.Get("/api/state", {{"Authorization", "Bearer " + kToken + "x"}});
  EXPECT_EQ(wrong->status, 401);
  auto almost = cli.Get("/api/state?token=" + kToken.substr(0, kToken.size() - 1) + "X");
  EXPECT_EQ(almost->status, 401);

  auto ok = cli.Get("/api/state", {{"Authorization", "Bearer " + kToken}});
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200);
  Json j = Json::parse(ok->body);
  EXPECT_EQ(j["run"]["strategy"], "fedavg");
  EXPECT_EQ(j["status"], "running");
  auto by_query = cli.Get("/api/state?token=" + kToken);
  EXPECT_EQ(by_query->status, 200);
}

TEST(DashboardServerTest, LimitsClientRowsAndRefusesBadParametersAndUnknownPaths) {
  Served s;
  std::vector<LiveClient> rows(5);
  for (int i = 0; i < 5; ++i) rows[static_cast<size_t>(i)].id = i;
  s.state->on_live(LiveTotals{}, rows);
  auto cli = s.client();
  httplib::Headers auth = {{"Authorization", "Bearer " + kToken}};
  auto two = cli.Get("/api/state?clients=2", auth);
  ASSERT_EQ(two->status, 200);
  EXPECT_EQ(Json::parse(two->body)["clients"].size(), 2u);
  EXPECT_EQ(Json::parse(two->body)["clients_total"], 5);
  auto bad = cli.Get("/api/state?clients=-1", auth);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("clients: expected a count"));
  auto missing = cli.Get("/metrics.jsonl", auth);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(cli.Get("/healthz")->status, 200);
  auto post = cli.Post("/api/state", auth, "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_NE(post->status, 200);  // read-only
}

TEST(DashboardServerTest, GeneratesATokenAndRefusesShortOnesAndTakenPorts) {
  auto state = std::make_shared<LiveState>();
  DashboardServer a;
  ASSERT_TRUE(a.start(DashboardOptions{}, state).ok());
  EXPECT_EQ(a.token().size(), 32u);
  EXPECT_NE(a.token(), random_token());
  EXPECT_THAT(a.url(), HasSubstr("http://127.0.0.1:" + std::to_string(a.port()) +
                                 "/?token=" + a.token()));
  DashboardServer b;
  DashboardOptions taken;
  taken.port = a.port();
  Status s = b.start(taken, state);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr(std::to_string(a.port())));
  DashboardServer c;
  DashboardOptions weak;
  weak.token = "short";
  s = c.start(weak, state);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("at least 16 characters"));
  a.stop();
  a.stop();  // idempotent
}

TEST(DashboardServerTest, ParsesAddresses) {
  auto full = parse_address("0.0.0.0:8080");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->host, "0.0.0.0");
  EXPECT_EQ(full->port, 8080);
  auto port_only = parse_address(":9000");
  ASSERT_TRUE(port_only.ok());
  EXPECT_EQ(port_only->host, "127.0.0.1");
  EXPECT_EQ(port_only->port, 9000);
  EXPECT_EQ(parse_address("7000")->port, 7000);
  EXPECT_EQ(parse_address("[::1]:7001")->host, "::1");
  for (const char* bad : {"", "host:", "host:http", "host:70000", "host:-1", "a:1234567"}) {
    auto r = parse_address(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.error().message(), HasSubstr("dashboard address")) << bad;
  }
}

}  // namespace
}  // namespace cohort::dashboard
