// Residency policy administration through the real server: each change is
// answered with its audit entry, which names the new policy version, and
// GET /v1/tenants/{t}/history lists the changes with the same entries.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>

#include "common/encoding.h"
#include "crypto/hash.h"
#include "tests/integration/residency_policy.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

class PolicyApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestServer::Start();
    ASSERT_TRUE(server_->started()) << server_->log();
    LoadResidencyPolicy(*server_);
    reader_ = server_->CreateToken("auditor", {"audit:read"});
    ASSERT_FALSE(reader_.empty());
  }
  nlohmann::json Json(const RawResponse& r) { return nlohmann::json::parse(r.body, nullptr, false); }
  RawResponse Admin(const std::string& method, const std::string& path, const std::string& body = "") {
    return server_->Authed(server_->admin_token(), method, path, body);
  }
  std::unique_ptr<TestServer> server_;
  std::string reader_;
};

// Optimistic concurrency for administrators and tools editing the same
// tenant: GET answers an ETag (the SHA-256 its change's audit entry names),
// and a PUT with If-Match that no longer holds is refused with 412 and
// changes nothing, instead of silently overwriting the other's change.
TEST_F(PolicyApiTest, APutWithAStaleIfMatchIsRefusedAndChangesNothing) {
  const std::string admin = server_->admin_token();
  auto put = [&](const std::string& path, const std::string& body, std::map<std::string, std::string> headers) {
    return server_->Authed(admin, "PUT", path, body, std::move(headers));
  };
  const std::string active = R"({"home_region":"eu-west-1","status":"active"})";
  const std::string suspended = R"({"home_region":"eu-west-1","status":"suspended"})";
  RawResponse created = put("/v1/tenants/etagco", active, {{"If-None-Match", "*"}});
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string first = created.Header("etag");
  ASSERT_EQ(first.size(), 66u) << first;  // a quoted SHA-256
  RawResponse got = Admin("GET", "/v1/tenants/etagco");
  EXPECT_EQ(got.Header("etag"), first);
  const uint64_t index = Json(created)["audit_index"];
  EXPECT_EQ("\"" + AuditEntries(*server_, reader_, index, index + 1)[0]["details"]["sha256"].get<std::string>() + "\"",
            first);

  // Another writer changes it; the first one's If-Match is now stale.
  RawResponse other = put("/v1/tenants/etagco", suspended, {{"If-Match", first}});
  ASSERT_EQ(other.status, 200) << other.body;
  const std::string second = other.Header("etag");
  EXPECT_NE(second, first);
  const uint64_t size = AuditSize(*server_, reader_);
  // A quoted "*" is a tag like any other, not the wildcard (RFC 9110 §13.1.1).
  for (const std::string& stale : {first, "W/" + second, "\"0000\", " + first, std::string("\"*\"")}) {
    RawResponse r = put("/v1/tenants/etagco", active, {{"If-Match", stale}});
    EXPECT_EQ(r.status, 412) << stale << " " << r.body;
    EXPECT_EQ(Json(r)["type"], "urn:geoledger:problem:precondition-failed") << r.body;
  }
  EXPECT_EQ(Json(Admin("GET", "/v1/tenants/etagco"))["status"], "suspended");
  EXPECT_EQ(AuditSize(*server_, reader_), size);
  EXPECT_EQ(put("/v1/tenants/etagco", active, {{"If-None-Match", "*"}}).status, 412);
  EXPECT_EQ(put("/v1/tenants/nobody", active, {{"If-Match", "*"}}).status, 412);
  EXPECT_EQ(put("/v1/tenants/etagco", active, {{"If-Match", "no-quotes"}}).status, 400);
  EXPECT_EQ(put("/v1/tenants/etagco", active, {{"If-None-Match", second}}).status, 400);
  EXPECT_EQ(put("/v1/tenants/etagco", active, {{"If-None-Match", "\"*\""}}).status, 400);
  // The current tag, in a list, holds.
  RawResponse ok = put("/v1/tenants/etagco", active, {{"If-Match", "\"0000\", " + second}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.Header("etag"), first);  // the same document as at first
  EXPECT_EQ(put("/v1/tenants/etagco", active, {{"If-Match", "*"}}).status, 200);  // it exists

  // Regions the same way.
  RawResponse region = Admin("GET", "/v1/regions/eu-west-1");
  ASSERT_EQ(region.status, 200) << region.body;
  const std::string region_tag = region.Header("etag");
  ASSERT_FALSE(region_tag.empty());
  EXPECT_EQ(put("/v1/regions/eu-west-1", R"({"country":"IE","name":"Dublin"})", {{"If-Match", "\"0000\""}}).status, 412);
  EXPECT_EQ(put("/v1/regions/eu-west-1", R"({"country":"IE","name":"Dublin"})", {{"If-Match", region_tag}}).status, 200);
}

TEST_F(PolicyApiTest, EachTenantChangeIsListedInItsHistoryWithItsAuditEntry) {
  RawResponse put = Admin("PUT", "/v1/tenants/acme", R"({"home_region":"eu-west-1","status":"suspended"})");
  ASSERT_EQ(put.status, 200) << put.body;
  const nlohmann::json changed = Json(put);
  ASSERT_TRUE(changed["audit_index"].is_number_unsigned()) << put.body;
  const uint64_t index = changed["audit_index"];
  const uint64_t version = changed["policy_version"];

  nlohmann::json entry = AuditEntries(*server_, reader_, index, index + 1)[0];
  EXPECT_EQ(entry["action"], "tenant.updated");
  EXPECT_EQ(entry["resource"], "tenant/acme");
  EXPECT_EQ(entry["details"]["policy_version"], std::to_string(version));
  EXPECT_NE(entry["details"]["fields"].get<std::string>().find("status"), std::string::npos) << entry.dump();
  // The entry names the document made active by its SHA-256: the canonical
  // JSON (keys sorted, no whitespace) that GET answers, without policy_version.
  nlohmann::json active = Json(Admin("GET", "/v1/tenants/acme"));
  active.erase("policy_version");
  EXPECT_EQ(entry["details"]["sha256"], HexEncode(crypto::AsView(crypto::Sha256(active.dump())))) << entry.dump();

  RawResponse h = Admin("GET", "/v1/tenants/acme/history");
  ASSERT_EQ(h.status, 200) << h.body;
  const nlohmann::json changes = Json(h)["changes"];
  ASSERT_EQ(changes.size(), 2u) << h.body;  // created by LoadResidencyPolicy, then suspended
  EXPECT_EQ(changes[0]["created"], true);
  const nlohmann::json& last = changes[1];
  EXPECT_EQ(last["version"], version);
  EXPECT_EQ(last["audit_index"], index);
  EXPECT_EQ(last["actor"], "bootstrap-admin");
  bool status_changed = false;
  for (const auto& c : last["changes"])
    status_changed |= c["field"] == "status" && c["from"] == "active" && c["to"] == "suspended";
  EXPECT_TRUE(status_changed) << last.dump();
  // The creation's entry is the one its history record names.
  const uint64_t created_at = changes[0]["audit_index"];
  nlohmann::json created = AuditEntries(*server_, reader_, created_at, created_at + 1)[0];
  EXPECT_EQ(created["action"], "tenant.created");
  EXPECT_EQ(created["details"]["policy_version"], std::to_string(changes[0]["version"].get<uint64_t>()));

  // The same body again changes nothing: no version, no entry, no record.
  const uint64_t size = AuditSize(*server_, reader_);
  RawResponse again = Admin("PUT", "/v1/tenants/acme", R"({"home_region":"eu-west-1","status":"suspended"})");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Json(again)["changed"], false);
  EXPECT_FALSE(Json(again).contains("audit_index"));
  EXPECT_EQ(Json(again)["policy_version"], version);
  EXPECT_EQ(AuditSize(*server_, reader_), size);
  EXPECT_EQ(Json(Admin("GET", "/v1/tenants/acme/history"))["changes"].size(), 2u);
}

// A history longer than a page is read back from the newest with
// next_before, or forward from a known version with next_after, and the
// pages together are the whole history, each change once.
TEST_F(PolicyApiTest, AHistoryLongerThanAPageIsReadPageByPage) {
  std::vector<uint64_t> versions;
  for (int i = 0; i < 7; ++i) {
    const std::string status = i % 2 == 0 ? "suspended" : "active";
    RawResponse put = Admin("PUT", "/v1/tenants/pagedco", R"({"home_region":"eu-west-1","status":")" + status + R"("})");
    ASSERT_EQ(put.status / 100, 2) << put.body;
    versions.push_back(Json(put)["policy_version"]);
    // Another tenant's change between each, so the versions are not consecutive.
    ASSERT_EQ(Admin("PUT", "/v1/tenants/otherco", R"({"home_region":"eu-west-1","status":")" + status + R"("})").status / 100, 2);
  }
  auto page = [&](const std::string& query) {
    RawResponse r = Admin("GET", "/v1/tenants/pagedco/history" + query);
    EXPECT_EQ(r.status, 200) << query << " " << r.body;
    return Json(r);
  };
  auto versions_of = [](const nlohmann::json& p) {
    std::vector<uint64_t> out;
    for (const auto& c : p["changes"]) out.push_back(c["version"]);
    return out;
  };
  // Backward, three at a time.
  std::vector<uint64_t> seen;
  std::string query = "?limit=3";
  for (int pages = 0; pages < 10; ++pages) {
    nlohmann::json p = page(query);
    auto v = versions_of(p);
    seen.insert(seen.begin(), v.begin(), v.end());
    if (!p["more"].get<bool>()) {
      EXPECT_FALSE(p.contains("next_before"));
      break;
    }
    EXPECT_EQ(p["next_before"], v.front());
    query = "?limit=3&before=" + std::to_string(p["next_before"].get<uint64_t>());
  }
  EXPECT_EQ(seen, versions);
  // Forward from the second change, four at a time.
  nlohmann::json first = page("?after=" + std::to_string(versions[1]) + "&limit=4");
  EXPECT_EQ(versions_of(first), std::vector<uint64_t>(versions.begin() + 2, versions.begin() + 6));
  ASSERT_EQ(first["more"], true);
  nlohmann::json second = page("?after=" + std::to_string(first["next_after"].get<uint64_t>()) + "&limit=4");
  EXPECT_EQ(versions_of(second), std::vector<uint64_t>{versions[6]});
  EXPECT_EQ(second["more"], false);
  // Without parameters: the newest 1000, oldest first, as before.
  EXPECT_EQ(versions_of(page("")), versions);
  // Bad paging parameters are refused and name the parameter.
  for (const char* bad : {"?limit=0", "?limit=1001", "?before=-1", "?after=x", "?limit=2&limit=3"}) {
    RawResponse r = Admin("GET", "/v1/tenants/pagedco/history" + std::string(bad));
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json") << bad;
  }
}

// A region's changes are listed the same way, each with its audit entry.
TEST_F(PolicyApiTest, EachRegionChangeIsListedInItsHistory) {
  RawResponse put = Admin("PUT", "/v1/regions/eu-west-1", R"({"country":"IE","name":"Dublin"})");
  ASSERT_EQ(put.status, 200) << put.body;
  const uint64_t index = Json(put)["audit_index"];
  const uint64_t version = Json(put)["policy_version"];
  RawResponse h = Admin("GET", "/v1/regions/eu-west-1/history");
  ASSERT_EQ(h.status, 200) << h.body;
  const nlohmann::json j = Json(h);
  EXPECT_EQ(j["region"], "eu-west-1");
  EXPECT_EQ(j["more"], false);
  ASSERT_EQ(j["changes"].size(), 2u) << h.body;  // created by LoadResidencyPolicy, then renamed
  EXPECT_EQ(j["changes"][0]["created"], true);
  EXPECT_EQ(j["changes"][1]["version"], version);
  EXPECT_EQ(j["changes"][1]["audit_index"], index);
  EXPECT_EQ(j["changes"][1]["kind"], "region");
  EXPECT_EQ(AuditEntries(*server_, reader_, index, index + 1)[0]["resource"], "region/eu-west-1");
  const nlohmann::json newest = Json(Admin("GET", "/v1/regions/eu-west-1/history?limit=1"));
  ASSERT_EQ(newest["changes"].size(), 1u);
  EXPECT_EQ(newest["changes"][0]["version"], version);
  EXPECT_EQ(newest["more"], true);
  EXPECT_EQ(newest["next_before"], version);
  EXPECT_FALSE(j["changes"][1]["actor"].get<std::string>().empty());
  // A tenant-bound admin token reads a region's changes without the names
  // of the operator's tokens that made them.
  std::string acme_admin = server_->CreateToken("acme-admin", {"admin"}, "acme");
  ASSERT_FALSE(acme_admin.empty());
  RawResponse seen = server_->Authed(acme_admin, "GET", "/v1/regions/eu-west-1/history");
  ASSERT_EQ(seen.status, 200) << seen.body;
  const nlohmann::json redacted = Json(seen);
  ASSERT_EQ(redacted["changes"].size(), 2u) << seen.body;
  for (const auto& c : redacted["changes"]) EXPECT_FALSE(c.contains("actor")) << seen.body;
  EXPECT_EQ(redacted["changes"][1]["audit_index"], index);
  EXPECT_EQ(redacted["changes"][1]["changes"], j["changes"][1]["changes"]);
  EXPECT_TRUE(Json(Admin("GET", "/v1/regions/nowhere-9/history"))["changes"].empty());
  EXPECT_EQ(Admin("GET", "/v1/regions/Not%20Valid/history").status, 400);
  EXPECT_EQ(Admin("GET", "/v1/regions/eu-west-1/history?limit=0").status, 400);
}

// A region is no tenant's: its change's entry is filed under no tenant,
// whatever tenant the request names in a header or the query string (a
// tenant's auditors would otherwise read it, with the operator's token name).
TEST_F(PolicyApiTest, ARegionChangeIsFiledUnderNoTenantWhateverTheRequestNames) {
  for (const char* path : {"/v1/regions/eu-west-1", "/v1/regions/eu-west-1?tenant=acme"}) {
    RawResponse put = server_->Authed(server_->admin_token(), "PUT", path,
                                      std::string(R"({"country":"IE","name":")") + path + "\"}",
                                      {{"X-Tenant-Id", "acme"}});
    ASSERT_EQ(put.status, 200) << put.body;
    const uint64_t index = Json(put)["audit_index"];
    const nlohmann::json e = AuditEntries(*server_, reader_, index, index + 1)[0];
    EXPECT_EQ(e["action"], "region.updated") << e.dump();
    EXPECT_EQ(e.value("tenant", ""), "") << e.dump();
  }
  // A tenant's change is filed under the tenant its path names, not the header's.
  RawResponse put = server_->Authed(server_->admin_token(), "PUT", "/v1/tenants/globex",
                                    R"({"home_region":"eu-west-1","status":"active"})", {{"X-Tenant-Id", "acme"}});
  ASSERT_EQ(put.status, 200) << put.body;
  const uint64_t index = Json(put)["audit_index"];
  EXPECT_EQ(AuditEntries(*server_, reader_, index, index + 1)[0]["tenant"], "globex");
}

// A tenant's token reads who made its tenant's changes only when that was
// one of the tenant's own tokens; the operator reads every actor, with the
// tenant its token is bound to.
TEST_F(PolicyApiTest, TenantHistoryNamesOnlyTheTenantsOwnTokensToItsTokens) {
  std::string acme_admin = server_->CreateToken("acme-admin", {"admin"}, "acme");
  ASSERT_FALSE(acme_admin.empty());
  RawResponse own = server_->Authed(acme_admin, "PUT", "/v1/tenants/acme",
                                    R"({"home_region":"eu-west-1","status":"active"})");
  ASSERT_EQ(own.status, 200) << own.body;
  RawResponse op = Admin("PUT", "/v1/tenants/acme", R"({"home_region":"eu-west-1","status":"suspended"})");
  ASSERT_EQ(op.status, 200) << op.body;
  const uint64_t own_version = Json(own)["policy_version"], op_version = Json(op)["policy_version"];

  auto change = [](const nlohmann::json& history, uint64_t version) {
    for (const auto& c : history["changes"])
      if (c["version"] == version) return c;
    ADD_FAILURE() << "no change at version " << version << " in " << history.dump();
    return nlohmann::json();
  };
  RawResponse seen = server_->Authed(acme_admin, "GET", "/v1/tenants/acme/history");
  ASSERT_EQ(seen.status, 200) << seen.body;
  const nlohmann::json by_tenant = Json(seen);
  EXPECT_EQ(change(by_tenant, own_version)["actor"], "acme-admin") << seen.body;
  EXPECT_EQ(change(by_tenant, own_version)["actor_tenant"], "acme") << seen.body;
  EXPECT_FALSE(change(by_tenant, op_version).contains("actor")) << seen.body;
  EXPECT_FALSE(change(by_tenant, op_version).contains("actor_tenant")) << seen.body;
  EXPECT_FALSE(change(by_tenant, op_version)["changes"].empty());

  const nlohmann::json by_operator = Json(Admin("GET", "/v1/tenants/acme/history"));
  EXPECT_EQ(change(by_operator, own_version)["actor"], "acme-admin");
  EXPECT_EQ(change(by_operator, own_version)["actor_tenant"], "acme");
  EXPECT_FALSE(change(by_operator, op_version)["actor"].get<std::string>().empty());
  EXPECT_EQ(change(by_operator, op_version)["actor_tenant"], "");
}

// A tenant's own admin token may edit the tenant's policy, but suspension is
// the operator's: it can neither lift nor impose it, and a refused PUT
// changes nothing.
TEST_F(PolicyApiTest, ATenantsOwnTokenCannotChangeItsStatus) {
  const std::string acme_admin = server_->CreateToken("acme-admin", {"admin"}, "acme");
  ASSERT_FALSE(acme_admin.empty());
  const std::string suspended = R"({"home_region":"eu-west-1","status":"suspended"})";
  const std::string active = R"({"home_region":"eu-west-1","status":"active"})";
  const uint64_t size = AuditSize(*server_, reader_);
  RawResponse self_suspend = server_->Authed(acme_admin, "PUT", "/v1/tenants/acme", suspended);
  EXPECT_EQ(self_suspend.status, 403) << self_suspend.body;
  ASSERT_EQ(Admin("PUT", "/v1/tenants/acme", suspended).status, 200);
  const uint64_t after_operator = AuditSize(*server_, reader_);
  EXPECT_EQ(after_operator, size + 1);
  RawResponse lift = server_->Authed(acme_admin, "PUT", "/v1/tenants/acme",
                                     R"({"home_region":"eu-west-1","status":"active",
                                         "allowed_regions":{"special":["us-east-1"]}})");
  EXPECT_EQ(lift.status, 403) << lift.body;
  EXPECT_NE(Json(lift)["detail"].get<std::string>().find("status"), std::string::npos) << lift.body;
  EXPECT_EQ(Json(Admin("GET", "/v1/tenants/acme"))["status"], "suspended");
  EXPECT_EQ(AuditSize(*server_, reader_), after_operator);
  // Other fields, with the status left as it is, are the tenant's to edit.
  RawResponse edit = server_->Authed(acme_admin, "PUT", "/v1/tenants/acme",
                                     R"({"home_region":"eu-west-1","status":"suspended",
                                         "allowed_regions":{"personal":["eu-west-1"]}})");
  EXPECT_EQ(edit.status, 200) << edit.body;
  EXPECT_EQ(Admin("PUT", "/v1/tenants/acme", active).status, 200);
}

// Whether a tenant exists is the operator's too: a token bound to a tenant
// the policy does not hold (never admitted, or removed) cannot create it,
// which would turn its decisions from "tenant-unknown" denials into allows.
TEST_F(PolicyApiTest, ATokenBoundToAMissingTenantCannotCreateIt) {
  const std::string newco_admin = server_->CreateToken("newco-admin", {"admin"}, "newco");
  ASSERT_FALSE(newco_admin.empty());
  const uint64_t size = AuditSize(*server_, reader_);
  RawResponse create = server_->Authed(newco_admin, "PUT", "/v1/tenants/newco",
                                       R"({"home_region":"eu-west-1","status":"active",
                                           "allowed_regions":{"personal":["us-east-1"]}})");
  EXPECT_EQ(create.status, 403) << create.body;
  EXPECT_EQ(create.Header("content-type"), "application/problem+json");
  EXPECT_NE(Json(create)["detail"].get<std::string>().find("cannot create"), std::string::npos) << create.body;
  EXPECT_EQ(Admin("GET", "/v1/tenants/newco").status, 404);
  EXPECT_EQ(AuditSize(*server_, reader_), size);
  // Once the operator has created it, its own token edits it.
  ASSERT_EQ(Admin("PUT", "/v1/tenants/newco", R"({"home_region":"eu-west-1","status":"active"})").status, 201);
  RawResponse edit = server_->Authed(newco_admin, "PUT", "/v1/tenants/newco",
                                     R"({"home_region":"eu-west-1","status":"active",
                                         "allowed_regions":{"personal":["eu-west-1"]}})");
  EXPECT_EQ(edit.status, 200) << edit.body;
}

// A PUT equal as policy to what is stored, though not as sent (allowed
// regions in another order), changes nothing, and its answer is the stored
// entity with the tag GET and If-Match use.
TEST_F(PolicyApiTest, AnUnchangedPutAnswersTheStoredEntityAndItsTag) {
  RawResponse got = Admin("GET", "/v1/tenants/acme");
  ASSERT_EQ(got.status, 200) << got.body;
  const std::string tag = got.Header("etag");
  const uint64_t size = AuditSize(*server_, reader_);
  RawResponse same = Admin("PUT", "/v1/tenants/acme",
                           R"({"home_region":"eu-west-1","status":"active",
                               "allowed_regions":{"personal":["eu-central-1","eu-west-1"]}})");
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(Json(same)["changed"], false);
  EXPECT_EQ(same.Header("etag"), tag);
  EXPECT_EQ(Json(same)["tenant"]["allowed_regions"], Json(got)["allowed_regions"]) << same.body;
  EXPECT_EQ(AuditSize(*server_, reader_), size);
  RawResponse conditional = server_->Authed(server_->admin_token(), "PUT", "/v1/tenants/acme",
                                            R"({"home_region":"eu-west-1","status":"active"})",
                                            {{"If-Match", same.Header("etag")}});
  EXPECT_EQ(conditional.status, 200) << conditional.body;
}

TEST_F(PolicyApiTest, HistoryOfAnUnknownTenantIsEmptyAndABadIdIsRefused) {
  RawResponse unknown = Admin("GET", "/v1/tenants/nobody/history");
  ASSERT_EQ(unknown.status, 200) << unknown.body;
  EXPECT_TRUE(Json(unknown)["changes"].empty());
  RawResponse bad = Admin("GET", "/v1/tenants/Not%20Valid/history");
  EXPECT_EQ(bad.status / 100, 4) << bad.body;
  EXPECT_EQ(bad.Header("content-type"), "application/problem+json");
  // Tenant-bound admin tokens see their own tenant's history only.
  std::string acme_admin = server_->CreateToken("acme-admin", {"admin"}, "acme");
  ASSERT_FALSE(acme_admin.empty());
  EXPECT_EQ(server_->Authed(acme_admin, "GET", "/v1/tenants/acme/history").status, 200);
  EXPECT_EQ(server_->Authed(acme_admin, "GET", "/v1/tenants/globex/history").status, 403);
}

}  // namespace
}  // namespace geoledger::testing
