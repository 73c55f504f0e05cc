// Residency decisions through the real server: POST /v1/decisions (single,
// batch, bad input, tenant-bound tokens) and GET /v1/gateway/check, each
// decision audit-logged (sync and async), and no torn decision while the
// policy changes under a storm of requests.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/clock.h"
#include "residency/date.h"
#include "tests/integration/residency_policy.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

// `cache_control` is `directive, max-age=N` with N at most `ttl_s` and at
// least ttl_s - 2: an answer sent in a later second than its decision (it
// waited for its entry's sync) carries only what is left of the ttl.
::testing::AssertionResult MaxAgeOf(const std::string& cache_control, const std::string& directive, int ttl_s) {
  const std::string prefix = directive + ", max-age=";
  if (cache_control.rfind(prefix, 0) != 0) return ::testing::AssertionFailure() << "Cache-Control: " << cache_control;
  const int max_age = std::atoi(cache_control.c_str() + prefix.size());
  if (max_age > ttl_s || max_age < ttl_s - 2)
    return ::testing::AssertionFailure() << "Cache-Control: " << cache_control << ", ttl " << ttl_s;
  return ::testing::AssertionSuccess();
}

nlohmann::json Req(const std::string& tenant, const std::string& category, const std::string& operation,
                   const std::string& region) {
  return {{"tenant", tenant}, {"category", category}, {"operation", operation}, {"region", region}};
}

class DecisionsTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args = {}) {
    server_ = TestServer::Start(args);
    ASSERT_TRUE(server_->started()) << server_->log();
    LoadResidencyPolicy(*server_);
    decide_ = server_->CreateToken("gateway", {"decide"});
    reader_ = server_->CreateToken("auditor", {"audit:read"});
    ASSERT_FALSE(decide_.empty());
    ASSERT_FALSE(reader_.empty());
  }
  void SetUp() override { Start(); }
  RawResponse Decide(const nlohmann::json& body, const std::string& token = "") {
    return server_->Authed(token.empty() ? decide_ : token, "POST", "/v1/decisions", body.dump());
  }
  RawResponse Check(std::map<std::string, std::string> headers, const std::string& token = "") {
    return server_->Authed(token.empty() ? decide_ : token, "GET", "/v1/gateway/check", "", std::move(headers));
  }
  // Sends `head` (a request line and headers, each ending in CRLF, without
  // the blank line that ends them) on a new connection and reads the answer:
  // for header sets a client library would not send.
  RawResponse SendHead(const std::string& head) {
    RawConnection c(server_->port());
    RawResponse r;
    EXPECT_TRUE(c.connected());
    EXPECT_TRUE(c.Send(head + "\r\n"));
    EXPECT_TRUE(c.ReadResponse(&r));
    return r;
  }
  // `r` must be a gateway refusal made before any decision (403 with
  // `reason`) that was audited as a denial naming `header`: returns its
  // audit entry (null when it has none).
  nlohmann::json RefusalEntry(const RawResponse& r, const std::string& reason, const std::string& header) {
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(r.Header("x-residency-reason"), reason);
    if (r.Header("x-residency-audit-index").empty()) {
      ADD_FAILURE() << "refusal " << reason << " was not audited: " << r.body;
      return nullptr;
    }
    uint64_t index = std::stoull(r.Header("x-residency-audit-index"));
    nlohmann::json e = AuditEntries(*server_, reader_, index, index + 1)[0];
    EXPECT_EQ(e["action"], "residency.decision");
    EXPECT_EQ(e["outcome"], "deny");
    EXPECT_EQ(e["details"]["reason"], reason);
    EXPECT_EQ(e["details"]["header"], header);
    EXPECT_EQ(e["details"]["decision_id"], r.Header("x-residency-decision-id"));
    return e;
  }
  std::unique_ptr<TestServer> server_;
  std::string decide_, reader_;
};

TEST_F(DecisionsTest, SingleDecisionAnswersEveryFieldAndIsAuditedBeforeTheAnswer) {
  RawResponse r = Decide(Req("acme", "personal", "store", "eu-central-1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(MaxAgeOf(r.Header("cache-control"), "private", 60));
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["allow"], true);
  EXPECT_EQ(j["route_region"], "eu-central-1");
  EXPECT_EQ(j["legal_basis"], "tenant-pinning");
  EXPECT_EQ(j["reason"], "allowed");
  EXPECT_GE(j["policy_version"].get<uint64_t>(), 1u);
  EXPECT_LE(j["ttl_s"].get<int>(), 60);  // what is left of the decided 60 s
  EXPECT_GE(j["ttl_s"].get<int>(), 58);
  std::string id = j["decision_id"];
  EXPECT_EQ(id.size(), 20u);
  ASSERT_TRUE(j["audit_index"].is_number_unsigned()) << r.body;

  // Sync audit: the entry is readable as soon as the answer arrived.
  uint64_t index = j["audit_index"];
  auto entries = AuditEntries(*server_, reader_, index, index + 1);
  ASSERT_EQ(entries.size(), 1u);
  const auto& e = entries[0];
  EXPECT_EQ(e["action"], "residency.decision");
  EXPECT_EQ(e["outcome"], "allow");
  EXPECT_EQ(e["tenant"], "acme");
  EXPECT_EQ(e["actor"], "gateway");
  EXPECT_EQ(e["details"]["decision_id"], id);
  EXPECT_EQ(e["details"]["reason"], "allowed");
  EXPECT_EQ(e["details"]["legal_basis"], "tenant-pinning");
  EXPECT_EQ(e["details"]["category"], "personal");
  EXPECT_EQ(e["details"]["operation"], "store");
  EXPECT_EQ(e["details"]["region"], "eu-central-1");
  EXPECT_EQ(e["details"]["policy_version"], std::to_string(j["policy_version"].get<uint64_t>()));
  EXPECT_EQ(e["details"]["ttl_s"], "60");  // as decided
}

TEST_F(DecisionsTest, DenialsNameTheReasonAndAreAuditedToo) {
  RawResponse r = Decide(Req("acme", "personal", "store", "us-east-1"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["allow"], false);
  EXPECT_EQ(j["reason"], "region-not-allowed");
  EXPECT_EQ(j["route_region"], "eu-west-1");  // the home region as a hint
  EXPECT_TRUE(MaxAgeOf(r.Header("cache-control"), "private", 5));
  uint64_t index = j["audit_index"];
  auto e = AuditEntries(*server_, reader_, index, index + 1)[0];
  EXPECT_EQ(e["outcome"], "deny");
  EXPECT_EQ(e["details"]["reason"], "region-not-allowed");
}

TEST_F(DecisionsTest, UnknownTenantCategoryOperationOrRegionIsADenyNeverAnError) {
  struct Case {
    nlohmann::json req;
    const char* reason;
  } cases[] = {
      {Req("nobody", "personal", "store", "eu-west-1"), "tenant-unknown"},
      {Req("acme", "biometric", "store", "eu-west-1"), "category-unknown"},
      {Req("acme", "personal", "teleport", "eu-west-1"), "operation-unknown"},
      {Req("acme", "personal", "store", "mars-1"), "region-unknown"},
      {Req("not a valid tenant id!", "personal", "store", "eu-west-1"), "tenant-unknown"},
  };
  for (const auto& c : cases) {
    RawResponse r = Decide(c.req);
    ASSERT_EQ(r.status, 200) << c.req.dump() << " " << r.body;
    auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["allow"], false) << c.req.dump();
    EXPECT_EQ(j["reason"], c.reason) << c.req.dump();
  }
}

// A decision's audit entry records only values the policy knows. An unknown
// tenant, category, operation or region is whatever the caller sent (an
// e-mail address, here), and the log cannot be redacted: the entry says the
// value was not recorded, and its reason says what was unknown.
TEST_F(DecisionsTest, UnknownValuesAreNotWrittenToTheAuditLog) {
  const std::string pii = "alice@example.com";
  auto entry = [&](uint64_t index) { return AuditEntries(*server_, reader_, index, index + 1)[0]; };
  struct Case {
    nlohmann::json req;
    const char* reason;
  } cases[] = {
      {Req(pii, pii, pii, pii), "tenant-unknown"},
      {Req("acme", pii, pii, pii), "category-unknown"},
      {Req("acme", "personal", pii, pii), "operation-unknown"},
      {Req("acme", "personal", "store", pii), "region-unknown"},
  };
  for (const auto& c : cases) {
    RawResponse r = Decide(c.req);
    ASSERT_EQ(r.status, 200) << r.body;
    auto e = entry(nlohmann::json::parse(r.body)["audit_index"]);
    EXPECT_EQ(e["details"]["reason"], c.reason);
    EXPECT_EQ(e.dump().find(pii), std::string::npos) << e.dump();
  }
  auto e = entry(nlohmann::json::parse(Decide(cases[0].req).body)["audit_index"]);
  EXPECT_EQ(e["resource"], "tenant/(unknown, not recorded)") << e.dump();
  EXPECT_EQ(e["details"]["region"], "(unknown, not recorded)") << e.dump();
  // Known values are recorded, on a denial too.
  e = entry(nlohmann::json::parse(Decide(Req("acme", "personal", "teleport", "eu-west-1")).body)["audit_index"]);
  EXPECT_EQ(e["resource"], "tenant/acme");
  EXPECT_EQ(e["details"]["category"], "personal");
  EXPECT_EQ(e["details"]["operation"], "(unknown, not recorded)");
  EXPECT_EQ(e["details"]["region"], "eu-west-1");
  // The gateway check records the same way.
  RawResponse r = Check(GatewayHeaders("acme", "personal", "read", pii));
  ASSERT_EQ(r.status, 403);
  EXPECT_EQ(r.Header("x-residency-reason"), "region-unknown");
  e = entry(std::stoull(r.Header("x-residency-audit-index")));
  EXPECT_EQ(e.dump().find(pii), std::string::npos) << e.dump();
  EXPECT_EQ(e["details"]["category"], "personal");
}

// The tenant a request names in a header or the query (not only in the
// body) is recorded only when the policy knows it: it was written as the
// entry's tenant whatever it was, on decisions and on refusals made before
// one, and a batch's entries carried the header's tenant instead of their own.
TEST_F(DecisionsTest, AnUnknownTenantNamedInAHeaderOrQueryIsNotWrittenToTheAuditLog) {
  const std::string name = "alice.smith";  // a valid tenant id, and a person's name
  auto entry = [&](uint64_t index) { return AuditEntries(*server_, reader_, index, index + 1)[0]; };
  auto expect_absent = [&](const nlohmann::json& e) {
    EXPECT_EQ(e.dump().find(name), std::string::npos) << e.dump();
  };
  // Gateway check, decided: tenant-unknown.
  RawResponse r = Check(GatewayHeaders(name, "personal", "store", "eu-west-1"));
  ASSERT_EQ(r.status, 403);
  EXPECT_EQ(r.Header("x-residency-reason"), "tenant-unknown");
  expect_absent(entry(std::stoull(r.Header("x-residency-audit-index"))));
  // Gateway check refused before a decision (a header missing).
  auto headers = GatewayHeaders(name, "personal", "store", "eu-west-1");
  headers.erase("X-Operation");
  nlohmann::json e = RefusalEntry(Check(headers), "missing-header", "x-operation");
  expect_absent(e);
  EXPECT_EQ(e["resource"], "tenant/(unknown, not recorded)") << e.dump();
  // The same refusal for a tenant the policy knows records it.
  headers = GatewayHeaders("acme", "personal", "store", "eu-west-1");
  headers.erase("X-Operation");
  e = RefusalEntry(Check(headers), "missing-header", "x-operation");
  EXPECT_EQ(e["tenant"], "acme") << e.dump();
  EXPECT_EQ(e["resource"], "tenant/acme") << e.dump();
  // POST /v1/decisions naming the tenant in a header, and in the query.
  r = server_->Authed(decide_, "POST", "/v1/decisions", Req(name, "personal", "store", "eu-west-1").dump(),
                      {{"X-Tenant-Id", name}});
  ASSERT_EQ(r.status, 200) << r.body;
  expect_absent(entry(nlohmann::json::parse(r.body)["audit_index"]));
  r = server_->Authed(decide_, "POST", "/v1/decisions?tenant=" + name,
                      Req(name, "personal", "store", "eu-west-1").dump());
  ASSERT_EQ(r.status, 200) << r.body;
  expect_absent(entry(nlohmann::json::parse(r.body)["audit_index"]));
  // A batch under one tenant's header: each entry carries its own request's
  // tenant, or none when the policy does not know it.
  r = server_->Authed(decide_, "POST", "/v1/decisions",
                      nlohmann::json{{"requests", {Req("ghost", "personal", "store", "eu-west-1"),
                                                   Req("acme", "personal", "store", "eu-west-1")}}}
                          .dump(),
                      {{"X-Tenant-Id", "acme"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto decisions = nlohmann::json::parse(r.body)["decisions"];
  e = entry(decisions[0]["audit_index"]);
  EXPECT_FALSE(e.contains("tenant") && e["tenant"] == "acme") << e.dump();
  EXPECT_EQ(e["resource"], "tenant/(unknown, not recorded)") << e.dump();
  EXPECT_EQ(entry(decisions[1]["audit_index"])["tenant"], "acme");
  // A token's bound tenant was set by an administrator: recorded even when
  // the policy does not know it.
  const std::string bound = server_->CreateToken("bound-gw", {"decide"}, "newco");
  r = Decide(Req("newco", "personal", "store", "eu-west-1"), bound);
  ASSERT_EQ(r.status, 200) << r.body;
  e = entry(nlohmann::json::parse(r.body)["audit_index"]);
  EXPECT_EQ(e["tenant"], "newco") << e.dump();
  EXPECT_EQ(e["resource"], "tenant/newco") << e.dump();
}

// A safeguard's reference is the tenant's text; in the gateway's
// X-Residency-Legal-Basis header, bytes outside visible ASCII (and '%') are
// percent-encoded, while the JSON answer and the audit entry keep the text.
TEST_F(DecisionsTest, ALegalBasisHeaderCarriesVisibleAsciiOnly) {
  const std::string reference = "réf 100%\u2028x";
  RawResponse r = server_->Authed(
      server_->admin_token(), "PUT", "/v1/tenants/intl",
      R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"personal":["us-east-1"]},
          "safeguards":[{"jurisdiction":"US","mechanism":"scc","reference":")" + reference +
          R"(","valid_from":"2020-01-01"}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  r = Check(GatewayHeaders("intl", "personal", "transfer", "us-east-1"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("x-residency-legal-basis"), "gdpr:art46:scc:r%C3%A9f%20100%25%E2%80%A8x");
  r = Decide(Req("intl", "personal", "transfer", "us-east-1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["legal_basis"], "gdpr:art46:scc:réf 100%\u2028x");
}

// Two Authorization headers: which one counts would be a guess, and a
// gateway that adds its token beside its client's must not be taken for the
// client. Refused, on the gateway route and on any other.
TEST_F(DecisionsTest, TwoAuthorizationHeadersAreRefused) {
  const std::string other = server_->CreateToken("other", {"decide"});
  for (const char* target : {"/v1/gateway/check", "/v1/regions/eu-west-1"}) {
    std::string head = std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + decide_ +
                       "\r\nAuthorization: Bearer " + other + "\r\n";
    for (const auto& [k, v] : GatewayHeaders("acme", "personal", "read", "eu-west-1")) head += k + ": " + v + "\r\n";
    RawResponse r = SendHead(head);
    EXPECT_EQ(r.status, 401) << target << " " << r.body;
  }
}

// A batch request with an unknown field: the message says which request.
TEST_F(DecisionsTest, ABatchRequestsUnknownFieldIsNamedWithItsIndex) {
  nlohmann::json bad = Req("acme", "personal", "store", "eu-west-1");
  bad["x"] = 1;
  RawResponse r = Decide({{"requests", {Req("acme", "personal", "store", "eu-west-1"), bad}}});
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("requests[1]: unknown field 'x'"), std::string::npos) << r.body;
}

// A tenant whose data falls outside an adequacy decision's scope opts out
// of it: a destination there then needs a safeguard. Through the API: the
// tenant's body, its history, and the gateway's answer.
TEST_F(DecisionsTest, ATenantThatOptsOutOfAnAdequacyDecisionNeedsASafeguardThere) {
  const std::string admin = server_->admin_token();
  auto put = [&](const std::string& body) { return server_->Authed(admin, "PUT", "/v1/tenants/optco", body); };
  const residency::Day today = residency::DayOf(SystemClock::Get().UnixMillis() / 1000);
  const std::string base =
      R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"personal":["us-east-1"]},)"
      R"("certifications":[{"name":"dpf","reference":"OptCo","valid_from":")" + residency::FormatDate(today - 1) +
      R"(","valid_until":")" + residency::FormatDate(today + 100) + R"("}])";
  ASSERT_EQ(put(base + "}").status, 201);
  RawResponse r = Check(GatewayHeaders("optco", "personal", "read", "us-east-1"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("x-residency-legal-basis"), "gdpr:art45:US:dpf:OptCo");
  r = put(base + R"(,"adequacy_opt_out":["US"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = Check(GatewayHeaders("optco", "personal", "read", "us-east-1"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.Header("x-residency-reason"), "no-transfer-basis");
  r = server_->Authed(admin, "GET", "/v1/tenants/optco");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["adequacy_opt_out"], nlohmann::json({"US"})) << r.body;
  r = server_->Authed(admin, "GET", "/v1/tenants/optco/history");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("adequacy_opt_out"), std::string::npos) << r.body;
}

// Through the API, a change may not write the forms that never lapse: an
// undated DPF declaration and an Art. 49 derogation without an end are
// refused with a problem document that names the field, and change nothing.
TEST_F(DecisionsTest, APutWithAnUndatedDpfOrAnOpenEndedDerogationIsRefused) {
  const std::string admin = server_->admin_token();
  const uint64_t before = AuditSize(*server_, reader_);
  RawResponse r = server_->Authed(admin, "PUT", "/v1/tenants/lapseco",
                                  R"({"home_region":"eu-west-1","status":"active",)"
                                  R"("allowed_regions":{"personal":["us-east-1"]},"certifications":["dpf"]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/problem+json");
  EXPECT_NE(r.body.find("certifications[0]"), std::string::npos) << r.body;
  r = server_->Authed(admin, "PUT", "/v1/tenants/lapseco",
                      R"({"home_region":"eu-west-1","status":"active","safeguards":[)"
                      R"({"jurisdiction":"IN","mechanism":"art49","reference":"art49-1-a","valid_from":"2025-01-01"}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("safeguards[0].valid_until"), std::string::npos) << r.body;
  EXPECT_EQ(server_->Authed(admin, "GET", "/v1/tenants/lapseco").status, 404);
  EXPECT_EQ(AuditSize(*server_, reader_), before);
}

// A dated DPF declaration makes a US region adequate only while the
// organisation's listing runs, names the organisation in the legal basis,
// bounds the answer's cache life, and is recorded in the tenant's history.
TEST_F(DecisionsTest, ADatedDpfDeclarationAppliesOnlyWhileItsListingRuns) {
  const std::string admin = server_->admin_token();
  const residency::Day today = residency::DayOf(SystemClock::Get().UnixMillis() / 1000);
  auto body = [](residency::Day from, residency::Day until) {
    return R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"personal":["us-east-1"]},)"
           R"("certifications":[{"name":"dpf","reference":"Example Cloud Inc.","valid_from":")" +
           residency::FormatDate(from) + R"(","valid_until":")" + residency::FormatDate(until) + R"("}]})";
  };
  RawResponse r = server_->Authed(admin, "PUT", "/v1/tenants/dpfco", body(today - 10, today + 100));
  ASSERT_EQ(r.status, 201) << r.body;
  r = Check(GatewayHeaders("dpfco", "personal", "process", "us-east-1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("x-residency-legal-basis"), "gdpr:art45:US:dpf:Example%20Cloud%20Inc.");
  EXPECT_EQ(r.Header("x-residency-region"), "us-east-1");
  r = Decide(Req("dpfco", "personal", "store", "us-east-1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["legal_basis"], "gdpr:art45:US:dpf:Example Cloud Inc.") << r.body;

  // The listing lapsed 40 days ago: the US is a third country again.
  r = server_->Authed(admin, "PUT", "/v1/tenants/dpfco", body(today - 400, today - 40));
  ASSERT_EQ(r.status, 200) << r.body;
  r = Check(GatewayHeaders("dpfco", "personal", "process", "us-east-1"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.Header("x-residency-reason"), "no-transfer-basis");

  // Bad declarations change nothing.
  r = server_->Authed(admin, "PUT", "/v1/tenants/dpfco", body(today - 10, today + 400));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("more than a year"), std::string::npos) << r.body;
  r = server_->Authed(admin, "GET", "/v1/tenants/dpfco");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["certifications"][0]["valid_until"], residency::FormatDate(today - 40))
      << r.body;

  r = server_->Authed(admin, "GET", "/v1/tenants/dpfco/history");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("dpf/Example Cloud Inc./" + residency::FormatDate(today - 400) + ".." +
                        residency::FormatDate(today - 40)),
            std::string::npos)
      << r.body;
}

// A decision header sent twice is refused: the gateway's backend may act on
// the other value (the last, or both joined) than the one decided on.
TEST_F(DecisionsTest, GatewayCheckRefusesADecisionHeaderSentTwice) {
  const std::string acme = server_->CreateToken("acme-gw", {"decide"}, "acme");
  const std::pair<const char*, const char*> twice[] = {{"X-Tenant-Id", "acme"},
                                                       {"X-Data-Category", "special"},
                                                       {"X-Operation", "store"},
                                                       {"X-Target-Region", "eu-central-1"}};
  for (const auto& [name, second] : twice) {
    std::string head = "GET /v1/gateway/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + acme + "\r\n";
    for (const auto& [k, v] : GatewayHeaders("acme", "personal", "read", "eu-west-1")) {
      head += k + ": " + v + "\r\n";
      if (k == name) head += k + ": " + second + "\r\n";
    }
    RawResponse r = SendHead(head);
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    nlohmann::json e = RefusalEntry(r, "invalid-header", lower);
    EXPECT_TRUE(r.Header("x-residency-region").empty()) << name;
    EXPECT_NE(r.Header("x-residency-detail").find("more than once"), std::string::npos) << name;
  }
  // An empty value counts as one: the header is there twice, not missing.
  std::string head = "GET /v1/gateway/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + acme + "\r\n";
  head += "X-Tenant-Id:\r\n";
  for (const auto& [k, v] : GatewayHeaders("acme", "personal", "read", "eu-west-1")) head += k + ": " + v + "\r\n";
  RawResponse r = SendHead(head);
  RefusalEntry(r, "invalid-header", "x-tenant-id");
  EXPECT_NE(r.Header("x-residency-detail").find("more than once"), std::string::npos) << r.Header("x-residency-detail");
}

TEST_F(DecisionsTest, BatchIsDecidedAndAuditedInOrder) {
  nlohmann::json reqs = nlohmann::json::array({Req("acme", "personal", "store", "eu-west-1"),
                                               Req("acme", "special", "store", "eu-central-1"),
                                               Req("globex", "anonymous", "process", "us-east-1")});
  RawResponse r = Decide({{"requests", reqs}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(MaxAgeOf(r.Header("cache-control"), "private", 5));  // the shortest ttl in the batch
  auto d = nlohmann::json::parse(r.body)["decisions"];
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0]["allow"], true);
  EXPECT_EQ(d[1]["allow"], false);
  EXPECT_EQ(d[1]["reason"], "special-outside-home");
  EXPECT_EQ(d[2]["allow"], true);
  EXPECT_EQ(d[2]["legal_basis"], "not-personal-data");
  std::set<std::string> ids;
  for (size_t i = 0; i < 3; ++i) {
    ids.insert(d[i]["decision_id"].get<std::string>());
    EXPECT_EQ(d[i]["policy_version"], d[0]["policy_version"]);  // one snapshot
    EXPECT_EQ(d[i]["audit_index"].get<uint64_t>(), d[0]["audit_index"].get<uint64_t>() + i);
  }
  EXPECT_EQ(ids.size(), 3u);
  uint64_t first = d[0]["audit_index"];
  auto entries = AuditEntries(*server_, reader_, first, first + 3);
  ASSERT_EQ(entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(entries[i]["details"]["decision_id"], d[i]["decision_id"]);
}

// A region beyond the policy's limit is a conflict with its state (409),
// not "rate limited" (429, which invites a retry that can never succeed),
// and changes nothing.
TEST_F(DecisionsTest, ARegionBeyondThePolicysLimitIs409AndChangesNothing) {
  const std::string admin = server_->admin_token();
  const uint64_t before = nlohmann::json::parse(server_->Request("GET", "/readyz").body)["policy_version"];
  int added = 0;
  RawResponse r;
  for (int i = 0; i < 200; ++i) {
    r = server_->Authed(admin, "PUT", "/v1/regions/extra-" + std::to_string(i), R"({"country":"DE","name":"x"})");
    if (r.status != 201) break;  // created
    ++added;
  }
  ASSERT_GT(added, 0);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/problem+json");
  EXPECT_TRUE(r.Header("retry-after").empty());
  EXPECT_NE(r.body.find("the most it can hold"), std::string::npos) << r.body;
  const uint64_t after = nlohmann::json::parse(server_->Request("GET", "/readyz").body)["policy_version"];
  EXPECT_EQ(after, before + static_cast<uint64_t>(added));
  EXPECT_EQ(server_->Authed(admin, "GET", "/v1/regions/extra-" + std::to_string(added)).status, 404);
}

TEST_F(DecisionsTest, BadInputIs400) {
  auto status = [&](const std::string& raw) {
    return server_->Authed(decide_, "POST", "/v1/decisions", raw).status;
  };
  EXPECT_EQ(status("{not json"), 400);
  EXPECT_EQ(status("[]"), 400);
  EXPECT_EQ(status(R"({"tenant":"acme","category":"personal","operation":"store"})"), 400);
  EXPECT_EQ(status(R"({"tenant":"acme","category":"personal","operation":"store","region":7})"), 400);
  EXPECT_EQ(status(R"({"tenant":"acme","category":"personal","operation":"store","region":"eu-west-1","x":1})"), 400);
  EXPECT_EQ(status(R"({"requests":[]})"), 400);
  EXPECT_EQ(status(R"({"requests":{}})"), 400);
  EXPECT_EQ(status(R"({"requests":[{"tenant":"acme"}]})"), 400);
  nlohmann::json big = nlohmann::json::array();
  for (int i = 0; i < 1001; ++i) big.push_back(Req("acme", "personal", "read", "eu-west-1"));
  RawResponse r = Decide({{"requests", big}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.Header("content-type").rfind("application/problem+json", 0), 0u);
  EXPECT_EQ(r.Header("cache-control"), "no-store");
  big.erase(big.begin());
  r = Decide({{"requests", big}});  // exactly 1000 is fine
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["decisions"].size(), 1000u);
}

TEST_F(DecisionsTest, TenantBoundTokenDecidesOnlyForItsTenant) {
  std::string acme = server_->CreateToken("acme-gw", {"decide"}, "acme");
  ASSERT_FALSE(acme.empty());
  EXPECT_EQ(Decide(Req("acme", "personal", "read", "eu-west-1"), acme).status, 200);
  EXPECT_EQ(Decide(Req("globex", "personal", "read", "eu-west-1"), acme).status, 403);
  nlohmann::json mixed = {{"requests", {Req("acme", "personal", "read", "eu-west-1"),
                                        Req("globex", "personal", "read", "eu-west-1")}}};
  EXPECT_EQ(Decide(mixed, acme).status, 403);
  // The gateway check holds it to its tenant as well.
  EXPECT_EQ(Check(GatewayHeaders("acme", "personal", "read", "eu-west-1"), acme).status, 200);
  RawResponse r = Check(GatewayHeaders("globex", "personal", "read", "eu-central-1"), acme);
  // Audited as a denial under the token's own tenant.
  auto e = RefusalEntry(r, "token-tenant-mismatch", "x-tenant-id");
  EXPECT_EQ(e["tenant"], "acme");
  EXPECT_EQ(e["actor"], "acme-gw");
  // A token without the decide scope is refused.
  std::string admin_only = server_->CreateToken("ops", {"audit:read"});
  EXPECT_EQ(Decide(Req("acme", "personal", "read", "eu-west-1"), admin_only).status, 403);
  // The scope is checked first: its gateway refusals are not decisions and are not audited.
  uint64_t before = AuditSize(*server_, reader_);
  r = Check(GatewayHeaders("bad!tenant", "personal", "read", "eu-west-1"), admin_only);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.Header("x-residency-reason"), "");
  EXPECT_EQ(AuditSize(*server_, reader_), before);
}

TEST_F(DecisionsTest, GatewayCheckAllowsWithRouteHeaders) {
  RawResponse r = Check(GatewayHeaders("acme", "personal", "store", "eu-central-1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.Header("x-residency-region"), "eu-central-1");
  EXPECT_EQ(r.Header("x-residency-decision-id").size(), 20u);
  // Cacheable by the gateway's shared cache, per token and the four headers.
  EXPECT_TRUE(MaxAgeOf(r.Header("cache-control"), "public", 60));
  EXPECT_EQ(r.Header("vary"), "Authorization, X-Tenant-Id, X-Data-Category, X-Operation, X-Target-Region");
  ASSERT_FALSE(r.Header("x-residency-audit-index").empty());
  uint64_t index = std::stoull(r.Header("x-residency-audit-index"));
  auto e = AuditEntries(*server_, reader_, index, index + 1)[0];
  EXPECT_EQ(e["action"], "residency.decision");
  EXPECT_EQ(e["details"]["decision_id"], r.Header("x-residency-decision-id"));
}

TEST_F(DecisionsTest, GatewayCheckDeniesWithAReason) {
  RawResponse r = Check(GatewayHeaders("acme", "special", "store", "us-east-1"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.Header("x-residency-reason"), "special-outside-home");
  EXPECT_EQ(r.Header("x-residency-region"), "");
  EXPECT_FALSE(r.Header("x-residency-decision-id").empty());
  EXPECT_TRUE(MaxAgeOf(r.Header("cache-control"), "public", 5));
  EXPECT_EQ(r.Header("vary"), "Authorization, X-Tenant-Id, X-Data-Category, X-Operation, X-Target-Region");
  r = Check(GatewayHeaders("nobody", "personal", "read", "eu-west-1"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.Header("x-residency-reason"), "tenant-unknown");
}

// Envoy's HTTP ext_authz calls the check with the original request's method
// and, with `path_prefix`, the original path appended (it may carry a body
// with `with_request_body`). Every such call is the same check; a path that
// only starts with the same letters is not.
TEST_F(DecisionsTest, GatewayCheckAnswersEnvoyStyleCallsWithAnyMethodAndAppendedPath) {
  const size_t before = AuditSize(*server_, reader_);
  struct Call {
    const char* method;
    const char* path;
    const char* body;
  } calls[] = {{"POST", "/v1/gateway/check", ""},
               {"PUT", "/v1/gateway/check/orders/17", ""},
               {"DELETE", "/v1/gateway/check/orders/17", ""},
               {"PATCH", "/v1/gateway/check/", ""},
               {"OPTIONS", "/v1/gateway/check//a/%zz", ""},
               {"POST", "/v1/gateway/check/orders", "name=not+json&x=1"},
               {"GET", "/v1/gateway/check/users/alice%40example.com", ""}};
  int allowed = 0;
  for (const auto& c : calls) {
    SCOPED_TRACE(std::string(c.method) + " " + c.path);
    auto headers = GatewayHeaders("acme", "personal", "store", "eu-central-1");
    if (*c.body) headers["Content-Type"] = "application/x-www-form-urlencoded";
    RawResponse r = server_->Authed(decide_, c.method, c.path, c.body, headers);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("x-residency-region"), "eu-central-1");
    EXPECT_FALSE(r.Header("x-residency-audit-index").empty());
    ++allowed;
  }
  RawResponse head = server_->Authed(decide_, "HEAD", "/v1/gateway/check/x", "",
                                     GatewayHeaders("acme", "personal", "store", "eu-central-1"));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("x-residency-region"), "eu-central-1");
  // A denial is a denial whatever the method.
  RawResponse denied = server_->Authed(decide_, "POST", "/v1/gateway/check/orders", "",
                                       GatewayHeaders("acme", "special", "store", "us-east-1"));
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.Header("x-residency-reason"), "special-outside-home");
  // Every call above was decided and audited once; nothing else was.
  EXPECT_EQ(AuditSize(*server_, reader_), before + allowed + 2);
  // The appended query string is the client's, never a tenant claim: without
  // X-Tenant-Id the check is refused for the missing header, not for the
  // query's invalid tenant.
  auto no_tenant = GatewayHeaders("acme", "personal", "store", "eu-central-1");
  no_tenant.erase("X-Tenant-Id");
  RawResponse q = server_->Authed(decide_, "GET", "/v1/gateway/check/orders?tenant=bad!id", "", no_tenant);
  EXPECT_EQ(q.status, 403);
  EXPECT_EQ(q.Header("x-residency-reason"), "missing-header");
  // Nor is a malformed query string its business (Envoy's path_prefix
  // appends the client's); every other route still refuses one.
  RawResponse sloppy = server_->Authed(decide_, "GET", "/v1/gateway/check/search?q=100%&x=%zz", "",
                                       GatewayHeaders("acme", "personal", "store", "eu-central-1"));
  EXPECT_EQ(sloppy.status, 200) << sloppy.body;
  RawResponse other = server_->Authed(reader_, "GET", "/v1/audit/checkpoint?x=%zz");
  EXPECT_EQ(other.status, 400);
  EXPECT_NE(other.body.find("malformed query string"), std::string::npos) << other.body;
  // Not the check: a path that merely starts with its letters.
  EXPECT_EQ(server_->Authed(decide_, "GET", "/v1/gateway/checkout", "",
                            GatewayHeaders("acme", "personal", "store", "eu-central-1")).status, 404);
  EXPECT_EQ(server_->Authed(decide_, "GET", "/v1/gateway", "",
                            GatewayHeaders("acme", "personal", "store", "eu-central-1")).status, 404);
  // And still not without a token with `decide`.
  EXPECT_EQ(server_->Request("POST", "/v1/gateway/check/orders",
                             GatewayHeaders("acme", "personal", "store", "eu-central-1")).status, 401);
  EXPECT_EQ(server_->Authed(reader_, "PUT", "/v1/gateway/check", "",
                            GatewayHeaders("acme", "personal", "store", "eu-central-1")).status, 403);
}

TEST_F(DecisionsTest, GatewayCheckMissingOrBadHeadersAre403NotErrors) {
  for (const char* name : {"X-Tenant-Id", "X-Data-Category", "X-Operation", "X-Target-Region"}) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto h = GatewayHeaders("acme", "personal", "read", "eu-west-1");
    h.erase(name);
    RawResponse r = Check(h);
    EXPECT_EQ(r.status, 403) << name << " " << r.body;
    EXPECT_EQ(r.Header("x-residency-reason"), "missing-header") << name;
    EXPECT_EQ(r.Header("x-residency-detail"), "header " + lower + " is required");
    EXPECT_EQ(r.Header("cache-control"), "no-store");
    // No body, as every gateway answer: nginx would not read it and would
    // close its kept connection.
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.Header("content-length"), "0");
    EXPECT_EQ(r.Header("content-type"), "");
  }
  RawResponse r = Check({});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.Header("x-residency-reason"), "missing-header");
  // Refused by the pipeline before the handler: no body either, headers kept.
  r = server_->Request("GET", "/v1/gateway/check", GatewayHeaders("acme", "personal", "read", "eu-west-1"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.Header("content-length"), "0");
  EXPECT_EQ(r.Header("www-authenticate"), "Bearer");
  // Refused before deciding, and still audited: reason and header name, never the value.
  auto e = RefusalEntry(Check(GatewayHeaders("bad tenant/!", "personal", "read", "eu-west-1")), "tenant-invalid",
                        "x-tenant-id");
  EXPECT_EQ(e["tenant"], "");
  EXPECT_EQ(e["resource"], "tenant/");
  EXPECT_EQ(e.dump().find("bad tenant"), std::string::npos);
  RefusalEntry(Check(GatewayHeaders("t\xff", "personal", "read", "eu-west-1")), "tenant-invalid", "x-tenant-id");
  e = RefusalEntry(Check(GatewayHeaders("acme", std::string(65, 'p'), "read", "eu-west-1")), "invalid-header",
                   "x-data-category");
  EXPECT_EQ(e["tenant"], "acme");
  EXPECT_EQ(e.dump().find(std::string(65, 'p')), std::string::npos);
  // A value that is not UTF-8 is refused, and the refusal (without the value)
  // is an entry that parses: such bytes in an entry would make the log unverifiable.
  RefusalEntry(Check(GatewayHeaders("acme", "pers\xffonal", "read", "eu-west-1")), "invalid-header",
               "x-data-category");
  auto missing = GatewayHeaders("acme", "personal", "read", "eu-west-1");
  missing.erase("X-Operation");
  RefusalEntry(Check(missing), "missing-header", "x-operation");
  // Without a token: 401, which auth_request passes on as a refusal.
  EXPECT_EQ(server_->Request("GET", "/v1/gateway/check", GatewayHeaders("acme", "personal", "read", "eu-west-1")).status, 401);
  // Other routes still answer an invalid tenant id with 400.
  EXPECT_EQ(server_->Authed(decide_, "POST", "/v1/decisions", Req("acme", "personal", "read", "eu-west-1").dump(),
                            {{"X-Tenant-Id", "bad tenant/!"}}).status,
            400);
}

TEST_F(DecisionsTest, DeferredAnswersKeepTheConnectionAlive) {
  // Deferred (audited) answers and an immediate one, one after the other on
  // one persistent connection without a Connection header.
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  std::string check = "GET /v1/gateway/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + decide_ +
                      "\r\nX-Tenant-Id: acme\r\nX-Data-Category: personal\r\nX-Operation: read\r\nX-Target-Region: ";
  struct Step {
    std::string request;
    int status;
    const char* header;
    const char* value;
  } steps[] = {{check + "eu-west-1\r\n\r\n", 200, "x-residency-region", "eu-west-1"},
               {"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200, "connection", "Keep-Alive"},
               {check + "us-east-1\r\n\r\n", 403, "x-residency-reason", "no-transfer-basis"},
               {check + "mars-1\r\n\r\n", 403, "x-residency-reason", "region-unknown"}};
  for (const auto& step : steps) {
    ASSERT_TRUE(c.Send(step.request));
    RawResponse r;
    ASSERT_TRUE(c.ReadResponse(&r));
    EXPECT_EQ(r.status, step.status);
    EXPECT_EQ(r.Header(step.header), step.value);
    EXPECT_EQ(r.Header("connection"), "Keep-Alive");
  }
}

TEST(DecisionsAsyncTest, AsyncAuditAnswersAtOnceAndStillWritesEveryEntry) {
  auto server = TestServer::Start({"--decision-audit", "async"});
  ASSERT_TRUE(server->started()) << server->log();
  LoadResidencyPolicy(*server);
  std::string decide = server->CreateToken("gateway", {"decide"});
  std::string reader = server->CreateToken("auditor", {"audit:read"});
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    RawResponse r = server->Authed(decide, "POST", "/v1/decisions",
                                   Req("acme", "personal", "store", i % 2 ? "eu-west-1" : "us-east-1").dump());
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = nlohmann::json::parse(r.body);
    EXPECT_TRUE(j["audit_index"].is_null());  // not known yet in async mode
    ids.insert(j["decision_id"].get<std::string>());
  }
  RawResponse g = server->Authed(decide, "GET", "/v1/gateway/check", "", GatewayHeaders("acme", "personal", "read", "eu-west-1"));
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(g.Header("x-residency-audit-index"), "");
  ids.insert(g.Header("x-residency-decision-id"));
  ASSERT_EQ(ids.size(), 6u);
  // Every decision reaches the log; wait (bounded) for the group commit.
  std::set<std::string> logged;
  for (int attempt = 0; attempt < 200 && logged.size() < ids.size(); ++attempt) {
    uint64_t size = AuditSize(*server, reader);
    auto entries = AuditEntries(*server, reader, 0, size);
    logged.clear();
    for (const auto& e : entries)
      if (e["action"] == "residency.decision") logged.insert(e["details"]["decision_id"].get<std::string>());
    if (logged.size() < ids.size()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(logged, ids);
  EXPECT_EQ(server->Terminate(), 0);
}

// Async answers go out before their entries are written; a stop (SIGTERM)
// writes every entry still queued before the process exits, so a restart
// finds each decision that was answered.
TEST(DecisionsAsyncTest, AStopWritesEveryQueuedEntryBeforeExiting) {
  DirGuard guard{MakeTempDir()};
  const std::string data = guard.dir + "/data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  std::set<std::string> ids;
  {
    // Entries wait up to 100 ms to be written and as long again to be
    // synced, so the last answers' entries are still queued at the stop.
    auto server = TestServer::Start({"--decision-audit", "async", "--decision-audit-async-linger-ms", "100",
                                     "--rate-limit-tenant-rps", "0", "--rate-limit-token-rps", "0"},
                                    data);
    ASSERT_TRUE(server->started()) << server->log();
    LoadResidencyPolicy(*server);
    const std::string decide = server->CreateToken("gateway", {"decide"});
    RawConnection c(server->port());
    ASSERT_TRUE(c.connected());
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(c.Send(RequestBytes("GET", "/v1/gateway/check", decide, "",
                                      GatewayHeaders("acme", "personal", "read", i % 3 ? "eu-west-1" : "us-east-1"))));
      RawResponse r;
      ASSERT_TRUE(c.ReadResponse(&r));
      ASSERT_EQ(r.status, i % 3 ? 200 : 403);
      ids.insert(r.Header("x-residency-decision-id"));
    }
    ASSERT_EQ(ids.size(), 60u);
    EXPECT_EQ(server->Terminate(), 0) << server->log();
  }
  auto again = TestServer::Start({}, data);
  ASSERT_TRUE(again->started()) << again->log();
  const std::string reader = again->CreateToken("auditor", {"audit:read"});
  std::set<std::string> logged;
  for (const auto& e : AuditEntries(*again, reader, 0, AuditSize(*again, reader)))
    if (e["action"] == "residency.decision") logged.insert(e["details"]["decision_id"].get<std::string>());
  EXPECT_EQ(logged, ids);
  EXPECT_EQ(again->Terminate(), 0);
}

// Decisions take at most --decision-audit-queue places in the audit
// ledger's queue; it holds 100,000 more for every other audit write, so a
// backlog of decisions never refuses them.
TEST(DecisionsAsyncTest, TheLedgersQueueHoldsTheDecisionBoundAndRoomForOtherWrites) {
  auto server = TestServer::Start({"--decision-audit", "async", "--decision-audit-queue", "2000"});
  ASSERT_TRUE(server->started()) << server->log();
  RawResponse m = server->Request("GET", "/metrics");
  EXPECT_EQ(MetricSample(m.body, "geoledger_audit_queue_capacity"), 102000) << m.body;
  EXPECT_EQ(server->Terminate(), 0);
}

// In async mode the entries of decisions answered within the linger time
// share one write and one sync; they still all reach the log.
TEST(DecisionsAsyncTest, AsyncEntriesShareWritesWithinTheLingerTime) {
  auto server = TestServer::Start({"--decision-audit", "async", "--decision-audit-async-linger-ms", "100",
                                   "--rate-limit-tenant-rps", "0", "--rate-limit-token-rps", "0"});
  ASSERT_TRUE(server->started()) << server->log();
  LoadResidencyPolicy(*server);
  std::string decide = server->CreateToken("gateway", {"decide"});
  std::string reader = server->CreateToken("auditor", {"audit:read"});
  auto batches = [&] {
    RawResponse m = server->Request("GET", "/metrics");
    int64_t n = MetricSample(m.body, "geoledger_audit_batches_total");
    EXPECT_GE(n, 0) << m.body;  // present
    return n < 0 ? uint64_t{0} : static_cast<uint64_t>(n);
  };
  const uint64_t size_before = AuditSize(*server, reader), batches_before = batches();
  constexpr int kChecks = 40;
  for (int i = 0; i < kChecks; ++i) {
    RawResponse g = server->Authed(decide, "GET", "/v1/gateway/check", "",
                                   GatewayHeaders("acme", "personal", "read", i % 2 ? "eu-west-1" : "us-east-1"));
    ASSERT_EQ(g.status, i % 2 ? 200 : 403) << g.body;
  }
  for (int attempt = 0; attempt < 200 && AuditSize(*server, reader) < size_before + kChecks; ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(AuditSize(*server, reader), size_before + kChecks);
  // One check after another: without the linger each entry is its own batch.
  EXPECT_LE(batches() - batches_before, 8u);
  EXPECT_EQ(server->Terminate(), 0);
}

// Two policies that differ in two fields at once; a decision made against a
// half-applied change would allow both or neither.
TEST(DecisionsStormTest, ConcurrentPolicyChangesNeverTearADecision) {
  auto server = TestServer::Start({"--rate-limit-tenant-rps", "0", "--rate-limit-token-rps", "0"});
  ASSERT_TRUE(server->started()) << server->log();
  LoadResidencyPolicy(*server);
  std::string decide = server->CreateToken("gateway", {"decide"});
  const std::string kA =
      R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"personal":["eu-west-1","eu-central-1"],"special":["eu-west-1"]}})";
  const std::string kB =
      R"({"home_region":"eu-west-1","status":"active","allowed_regions":{"personal":["eu-west-1"],"special":["eu-west-1","eu-central-1"]}})";
  std::mutex mu;
  std::map<uint64_t, char> state_at;  // policy version → 'A' or 'B'
  RawResponse first = server->Authed(server->admin_token(), "PUT", "/v1/tenants/acme", kA);
  ASSERT_EQ(first.status, 200) << first.body;
  uint64_t v0 = nlohmann::json::parse(first.body)["policy_version"];
  state_at[v0] = 'A';

  std::atomic<bool> stop{false};
  std::atomic<int> checked{0}, failures{0};
  std::vector<nlohmann::json> seen;  // guarded by mu
  std::thread writer([&] {
    for (int i = 0; i < 40; ++i) {
      bool b = i % 2 == 0;
      RawResponse r = server->Authed(server->admin_token(), "PUT", "/v1/tenants/acme", b ? kB : kA);
      if (r.status != 200) { failures++; continue; }
      std::lock_guard<std::mutex> lock(mu);
      state_at[nlohmann::json::parse(r.body)["policy_version"].get<uint64_t>()] = b ? 'B' : 'A';
    }
    stop = true;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&] {
      nlohmann::json body = {{"requests", {Req("acme", "personal", "store", "eu-central-1"),
                                           Req("acme", "special", "store", "eu-central-1")}}};
      while (!stop.load()) {
        RawResponse r = server->Authed(decide, "POST", "/v1/decisions", body.dump());
        if (r.status != 200) { failures++; continue; }
        std::lock_guard<std::mutex> lock(mu);
        seen.push_back(nlohmann::json::parse(r.body)["decisions"]);
      }
    });
  writer.join();
  for (auto& t : readers) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_GT(seen.size(), 0u);
  std::set<char> states_checked;  // of versions written during the storm
  std::set<uint64_t> versions_checked;
  for (const auto& d : seen) {
    uint64_t v = d[0]["policy_version"];
    ASSERT_EQ(d[1]["policy_version"], v);
    bool personal = d[0]["allow"], special = d[1]["allow"];
    ASSERT_NE(personal, special) << "torn decision at policy version " << v;
    auto it = state_at.find(v);
    if (it == state_at.end()) continue;  // a version from before the storm
    EXPECT_EQ(personal, it->second == 'A') << "version " << v;
    checked++;
    if (v != v0) states_checked.insert(it->second), versions_checked.insert(v);
  }
  EXPECT_GT(checked.load(), 0);
  // Decided while the policy changed, in both of its states, not only
  // before the first change.
  EXPECT_EQ(states_checked, (std::set<char>{'A', 'B'}));
  EXPECT_GE(versions_checked.size(), 3u);
  EXPECT_EQ(server->Terminate(), 0);
}

}  // namespace
}  // namespace geoledger::testing
