// Per-tenant and per-token token buckets through the real server: a flood
// from one tenant does not starve another (the noisy-neighbour incident).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <thread>

#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

TEST(RateLimitTest, FloodFromOneTenantDoesNotStarveAnother) {
  auto s = TestServer::Start({"--rate-limit-tenant-rps", "5", "--rate-limit-tenant-burst", "10",
                              "--rate-limit-token-rps", "100000", "--rate-limit-token-burst", "100000"});
  ASSERT_TRUE(s->started()) << s->log();
  std::string gateway = s->CreateToken("gateway", {"decide"});
  ASSERT_FALSE(gateway.empty());

  // Tenant "noisy" floods from two threads over persistent connections.
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::atomic<bool> retry_after_seen{false};
  auto flood = [&] {
    RawConnection c(s->port());
    const std::string req = "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: noisy\r\nAuthorization: Bearer " +
                            gateway + "\r\n\r\n";
    for (int i = 0; i < 300; ++i) {
      RawResponse r;
      if (!c.Send(req) || !c.ReadResponse(&r)) break;
      if (r.status == 200) ok++;
      else if (r.status == 429) {
        limited++;
        if (std::atoi(r.Header("retry-after").c_str()) >= 1) retry_after_seen = true;
      } else other++;
    }
  };
  std::thread a(flood), b(flood);
  // While the flood runs, the quiet tenant is served every time.
  int quiet_ok = 0;
  for (int i = 0; i < 5; ++i) {
    RawResponse r = s->Authed(gateway, "GET", "/v1/whoami", "", {{"X-Tenant-Id", "quiet"}});
    if (r.status == 200) quiet_ok++;
  }
  a.join();
  b.join();
  EXPECT_EQ(quiet_ok, 5);
  EXPECT_GT(limited.load(), 400);  // 600 sent; ~10 burst + 5/s allowed
  EXPECT_GE(ok.load(), 10);
  EXPECT_EQ(other.load(), 0);
  EXPECT_TRUE(retry_after_seen.load());
  RawResponse limited_doc = s->Authed(gateway, "GET", "/v1/whoami", "", {{"X-Tenant-Id", "noisy"}});
  ASSERT_EQ(limited_doc.status, 429);
  EXPECT_EQ(nlohmann::json::parse(limited_doc.body)["type"], "urn:geoledger:problem:rate-limited");
  RawResponse m = s->Request("GET", "/metrics");
  EXPECT_NE(m.body.find("geoledger_http_rate_limited_total{limiter=\"tenant\"}"), std::string::npos);
}

TEST(RateLimitTest, PerTokenLimitAppliesAcrossTenants) {
  auto s = TestServer::Start({"--rate-limit-token-rps", "2", "--rate-limit-token-burst", "3"});
  ASSERT_TRUE(s->started()) << s->log();
  std::string noisy = s->CreateToken("noisy-client", {"decide"});
  std::string calm = s->CreateToken("calm-client", {"decide"});
  int limited = 0;
  for (int i = 0; i < 20; ++i) {
    RawResponse r = s->Authed(noisy, "GET", "/v1/whoami", "", {{"X-Tenant-Id", "t" + std::to_string(i)}});
    if (r.status == 429) {
      limited++;
      EXPECT_FALSE(r.Header("retry-after").empty());
    }
  }
  EXPECT_GE(limited, 10);
  EXPECT_EQ(s->Authed(calm, "GET", "/v1/whoami").status, 200);
}

// The tenants a decision body names are charged to their own limits whatever
// else the request names: an unrelated X-Tenant-Id header, or a batch
// ({"requests":[…]}), let a token that is not bound to a tenant decide for a
// tenant whose limit was used up.
TEST(RateLimitTest, TenantsNamedInADecisionBodyAreChargedWhateverElseIsNamed) {
  auto s = TestServer::Start({"--rate-limit-tenant-rps", "0.01", "--rate-limit-tenant-burst", "2",
                              "--rate-limit-token-rps", "100000", "--rate-limit-token-burst", "100000"});
  ASSERT_TRUE(s->started()) << s->log();
  const std::string decide = s->CreateToken("gateway", {"decide"});
  auto one = [](const std::string& tenant) {
    return nlohmann::json{{"tenant", tenant}, {"category", "personal"}, {"operation", "read"}, {"region", "eu-west-1"}};
  };
  auto post = [&](const nlohmann::json& body, std::map<std::string, std::string> headers = {}) {
    return s->Authed(decide, "POST", "/v1/decisions", body.dump(), std::move(headers)).status;
  };
  EXPECT_EQ(post(one("acme")), 200);
  EXPECT_EQ(post(one("acme")), 200);
  EXPECT_EQ(post(one("acme")), 429);  // acme's burst of 2 is used up
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(post(one("acme"), {{"X-Tenant-Id", "other" + std::to_string(i)}}), 429) << i;
    EXPECT_EQ(post(nlohmann::json{{"requests", {one("acme")}}}), 429) << i;
    EXPECT_EQ(post(nlohmann::json{{"requests", {one("fresh" + std::to_string(i)), one("acme")}}}), 429) << i;
  }
  // Other tenants are still served, alone or batched together.
  EXPECT_EQ(post(one("quiet")), 200);
  EXPECT_EQ(post(nlohmann::json{{"requests", {one("calm"), one("still")}}}), 200);
  // A token bound to one tenant that names another is refused (403, or 429
  // once its own tenant's limit is spent) without spending that other
  // tenant's limit: it cannot drain it.
  const std::string bound = s->CreateToken("bound", {"decide"}, "bound-tenant");
  ASSERT_FALSE(bound.empty());
  for (int i = 0; i < 3; ++i) {
    for (const nlohmann::json& body : {one("victim"), nlohmann::json{{"requests", {one("victim")}}}}) {
      const int status = s->Authed(bound, "POST", "/v1/decisions", body.dump()).status;
      EXPECT_TRUE(status == 403 || status == 429) << i << ": " << status;
    }
  }
  EXPECT_EQ(post(one("victim")), 200);
  EXPECT_EQ(post(one("victim")), 200);  // its whole burst of 2 is left

  // A batch over the 1000-request bound is refused before any tenant it
  // names is charged: it cannot spend (or crowd out) their limits.
  nlohmann::json big = nlohmann::json::array();
  for (int i = 0; i < 1001; ++i) big.push_back(one("many" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(post(nlohmann::json{{"requests", big}}), 400) << i;
  EXPECT_EQ(post(one("many0")), 200);
  EXPECT_EQ(post(one("many0")), 200);  // its whole burst of 2 is left
}

}  // namespace
}  // namespace geoledger::testing
