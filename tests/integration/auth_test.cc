// Bearer tokens and scopes through the real server.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestServer::Start();
    ASSERT_TRUE(server_->started()) << server_->log();
    ASSERT_FALSE(server_->admin_token().empty());
  }
  std::unique_ptr<TestServer> server_;
};

TEST_F(AuthTest, MissingTokenGets401WithChallenge) {
  RawResponse r = server_->Request("GET", "/v1/whoami");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.Header("www-authenticate"), "Bearer");
  EXPECT_EQ(nlohmann::json::parse(r.body)["type"], "urn:geoledger:problem:unauthenticated");
}

TEST_F(AuthTest, WrongTokenGets401) {
  std::string forged = server_->admin_token();
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(server_->Authed(forged, "GET", "/v1/whoami").status, 401);
  EXPECT_EQ(server_->Authed("gl_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "GET",
                            "/v1/whoami").status, 401);
  EXPECT_EQ(server_->Authed("garbage", "GET", "/v1/whoami").status, 401);
  EXPECT_EQ(server_->Request("GET", "/v1/whoami", {{"Authorization", "Basic dXNlcjpwYXNz"}}).status, 401);
}

TEST_F(AuthTest, ScopeThatDoesNotCoverTheRouteGets403) {
  std::string decide = server_->CreateToken("gateway", {"decide"});
  ASSERT_FALSE(decide.empty());
  RawResponse r = server_->Authed(decide, "GET", "/v1/admin/tokens");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(nlohmann::json::parse(r.body)["type"], "urn:geoledger:problem:forbidden");
  RawResponse create = server_->Authed(decide, "POST", "/v1/admin/tokens", R"({"name":"x","scopes":["admin"]})");
  EXPECT_EQ(create.status, 403);
  EXPECT_EQ(server_->Authed(decide, "GET", "/v1/whoami").status, 200);
}

TEST_F(AuthTest, CreatedTokenIsShownOnceAndListedWithoutSecret) {
  RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens",
                                  R"({"name":"dsar-desk","scopes":["dsar","audit:read"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto created = nlohmann::json::parse(r.body);
  std::string token = created["token"];
  EXPECT_EQ(token.rfind("gl_", 0), 0u);
  EXPECT_EQ(created["scopes"], nlohmann::json({"audit:read", "dsar"}));
  EXPECT_EQ(r.Header("location"), "/v1/admin/tokens/" + created["id"].get<std::string>());

  RawResponse who = server_->Authed(token, "GET", "/v1/whoami");
  ASSERT_EQ(who.status, 200);
  EXPECT_EQ(nlohmann::json::parse(who.body)["name"], "dsar-desk");

  RawResponse list = server_->Authed(server_->admin_token(), "GET", "/v1/admin/tokens");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body.find(token.substr(token.find('.') + 1)), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(list.body)["tokens"].size(), 2u);
}

TEST_F(AuthTest, DuplicateNameGets409) {
  ASSERT_FALSE(server_->CreateToken("svc", {"decide"}).empty());
  RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens",
                                  R"({"name":"svc","scopes":["keys"]})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(nlohmann::json::parse(r.body)["type"], "urn:geoledger:problem:conflict");
}

TEST_F(AuthTest, BadTokenRequestsGet400AndCreateNothing) {
  for (const char* body : {R"({"name":"","scopes":["decide"]})", R"({"name":"a b","scopes":["decide"]})",
                           R"({"name":"x","scopes":["root"]})", R"({"name":"x","scopes":[]})",
                           R"({"name":"x","scopes":"decide"})", R"({"name":"x","scopes":["decide","decide"]})",
                           R"({"name":"x","scopes":["decide"],"extra":1})", R"([1,2])", R"({"scopes":["decide"]})"}) {
    RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  RawResponse list = server_->Authed(server_->admin_token(), "GET", "/v1/admin/tokens");
  EXPECT_EQ(nlohmann::json::parse(list.body)["tokens"].size(), 1u);
}

TEST_F(AuthTest, RevokedTokenStopsWorking) {
  RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens",
                                  R"({"name":"temp","scopes":["decide"]})");
  auto j = nlohmann::json::parse(r.body);
  std::string token = j["token"], id = j["id"];
  EXPECT_EQ(server_->Authed(token, "GET", "/v1/whoami").status, 200);
  EXPECT_EQ(server_->Authed(server_->admin_token(), "DELETE", "/v1/admin/tokens/" + id).status, 200);
  EXPECT_EQ(server_->Authed(token, "GET", "/v1/whoami").status, 401);
  EXPECT_EQ(server_->Authed(server_->admin_token(), "DELETE", "/v1/admin/tokens/ffffffffffffffff").status, 404);
}

TEST_F(AuthTest, TenantBoundTokenCannotActForAnotherTenant) {
  std::string t = server_->CreateToken("acme-svc", {"decide"}, "acme");
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(server_->Authed(t, "GET", "/v1/whoami", "", {{"X-Tenant-Id", "acme"}}).status, 200);
  EXPECT_EQ(server_->Authed(t, "GET", "/v1/whoami", "", {{"X-Tenant-Id", "globex"}}).status, 403);
}

TEST_F(AuthTest, TokensCannotGrantMoreThanTheyHold) {
  std::string admin_only = server_->CreateToken("ops", {"admin"});
  ASSERT_FALSE(admin_only.empty());
  RawResponse wider = server_->Authed(admin_only, "POST", "/v1/admin/tokens", R"({"name":"k","scopes":["keys"]})");
  EXPECT_EQ(wider.status, 403) << wider.body;
  EXPECT_EQ(server_->Authed(admin_only, "POST", "/v1/admin/tokens", R"({"name":"a2","scopes":["admin"]})").status, 201);

  std::string acme_admin = server_->CreateToken("acme-admin", {"admin", "decide"}, "acme");
  RawResponse other = server_->Authed(acme_admin, "POST", "/v1/admin/tokens",
                                      R"({"name":"g","scopes":["decide"],"tenant":"globex"})");
  EXPECT_EQ(other.status, 403);
  RawResponse unbound = server_->Authed(acme_admin, "POST", "/v1/admin/tokens", R"({"name":"u","scopes":["decide"]})");
  ASSERT_EQ(unbound.status, 201);
  EXPECT_EQ(nlohmann::json::parse(unbound.body)["tenant"], "acme");  // inherits the binding
  // A tenant admin sees and revokes only its tenant's tokens.
  auto listed = nlohmann::json::parse(server_->Authed(acme_admin, "GET", "/v1/admin/tokens").body)["tokens"];
  for (const auto& t : listed) EXPECT_EQ(t.value("tenant", ""), "acme");
  std::string ops_id = nlohmann::json::parse(server_->Authed(admin_only, "GET", "/v1/whoami").body)["id"];
  EXPECT_EQ(server_->Authed(acme_admin, "DELETE", "/v1/admin/tokens/" + ops_id).status, 404);
}

TEST_F(AuthTest, LastUnrestrictedAdminCannotBeRevoked) {
  std::string id = nlohmann::json::parse(server_->Authed(server_->admin_token(), "GET", "/v1/whoami").body)["id"];
  RawResponse r = server_->Authed(server_->admin_token(), "DELETE", "/v1/admin/tokens/" + id);
  EXPECT_EQ(r.status, 409) << r.body;
  std::string second = server_->CreateToken("admin-2", {"admin"});
  EXPECT_EQ(server_->Authed(second, "DELETE", "/v1/admin/tokens/" + id).status, 200);
  EXPECT_EQ(server_->Authed(server_->admin_token(), "GET", "/v1/whoami").status, 401);
}

TEST_F(AuthTest, MalformedTenantIdGets400) {
  RawResponse r = server_->Authed(server_->admin_token(), "GET", "/v1/whoami", "",
                                  {{"X-Tenant-Id", std::string(200, 'a')}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(server_->Authed(server_->admin_token(), "GET", "/v1/whoami?tenant=a%20b").status, 400);
}

TEST_F(AuthTest, TokensSurviveRestartAndAreStoredHashed) {
  std::string t = server_->CreateToken("persisted", {"decide"});
  std::string dir = server_->data_dir();
  std::string admin = server_->admin_token();
  ASSERT_EQ(server_->Terminate(), 0);
  // The secret half of the token never reaches the disk.
  std::string secret = t.substr(t.find('.') + 1);
  std::string grep_out;
  EXPECT_EQ(RunCommand({"grep", "-rqF", "-e", secret, dir + "/db"}, &grep_out), 1) << grep_out;
  auto again = TestServer::Start({}, dir);
  ASSERT_TRUE(again->started()) << again->log();
  EXPECT_EQ(again->Authed(t, "GET", "/v1/whoami").status, 200);
  EXPECT_EQ(again->Authed(admin, "GET", "/v1/admin/tokens").status, 200);
}

}  // namespace
}  // namespace geoledger::testing
