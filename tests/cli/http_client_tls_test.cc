// HttpClient against the real geoledgerd: plain HTTP, TLS with a private CA,
// mutual TLS, and the verification failures a client must not paper over.
#include <cstdio>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "tests/integration/test_server.h"

namespace geoledger::cli {
namespace {

using ::geoledger::testing::MakeTempDir;
using ::geoledger::testing::RemoveTree;
using ::geoledger::testing::RunCommand;
using ::geoledger::testing::TestServer;

HttpRequest Whoami(const std::string& token) {
  return {"GET", "/v1/whoami", {{"Authorization", "Bearer " + token}}, ""};
}

StatusOr<std::unique_ptr<HttpClient>> ClientFor(const std::string& url, HttpClientOptions options = {}) {
  GL_ASSIGN_OR_RETURN(ServerUrl parsed, ParseServerUrl(url));
  return HttpClient::Create(parsed, std::move(options));
}

TEST(HttpClientServerTest, PlainHttpRoundTrip) {
  auto s = TestServer::Start();
  ASSERT_TRUE(s->started()) << s->log();
  auto client = ClientFor("http://127.0.0.1:" + std::to_string(s->port()));
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  auto me = (*client)->Send(Whoami(s->admin_token()));
  ASSERT_TRUE(me.ok()) << me.status().ToString();
  EXPECT_EQ(me->status, 200);
  EXPECT_EQ(nlohmann::json::parse(me->body)["name"], "bootstrap-admin");
  ASSERT_NE(me->Header("x-request-id"), nullptr);

  auto created = (*client)->Send({"POST",
                                  "/v1/admin/tokens",
                                  {{"Authorization", "Bearer " + s->admin_token()},
                                   {"Content-Type", "application/json"}},
                                  R"({"name":"cli-test","scopes":["decide"]})"});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->status, 201) << created->body;

  auto denied = (*client)->Send(Whoami("gl_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  ASSERT_TRUE(denied.ok()) << denied.status().ToString();
  EXPECT_EQ(denied->status, 401);
  ASSERT_NE(denied->Header("content-type"), nullptr);
  EXPECT_EQ(*denied->Header("content-type"), "application/problem+json");
}

class HttpClientTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir());
    std::string error;
    ASSERT_TRUE(geoledger::testing::MakeTestPki(*dir_, &error)) << error;
  }
  static void TearDownTestSuite() {
    RemoveTree(*dir_);
    delete dir_;
  }
  static std::string Path(const std::string& f) { return *dir_ + "/" + f; }
  static std::string* dir_;
};
std::string* HttpClientTlsTest::dir_ = nullptr;

TEST_F(HttpClientTlsTest, VerifiesTheServerAndPresentsTheClientCertificate) {
  auto s = TestServer::Start({"--tls-cert", Path("server.pem"), "--tls-key", Path("server.key"),
                              "--tls-client-ca", Path("ca.pem")});
  ASSERT_TRUE(s->started()) << s->log();
  const std::string port = std::to_string(s->port());
  HttpClientOptions mtls;
  mtls.ca_file = Path("ca.pem");
  mtls.cert_file = Path("client.pem");
  mtls.key_file = Path("client.key");

  auto ok = ClientFor("https://127.0.0.1:" + port, mtls);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto me = (*ok)->Send(Whoami(s->admin_token()));
  ASSERT_TRUE(me.ok()) << me.status().ToString();
  EXPECT_EQ(me->status, 200) << me->body;

  // No client certificate: the server refuses.
  HttpClientOptions no_cert;
  no_cert.ca_file = Path("ca.pem");
  auto anonymous = ClientFor("https://127.0.0.1:" + port, no_cert);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ((*anonymous)->Send(Whoami(s->admin_token())).status().code(), StatusCode::kUnavailable);

  // A CA that did not sign the server certificate.
  HttpClientOptions wrong_ca = mtls;
  wrong_ca.ca_file = Path("other-ca.pem");
  auto untrusting = ClientFor("https://127.0.0.1:" + port, wrong_ca);
  ASSERT_TRUE(untrusting.ok());
  auto r = (*untrusting)->Send(Whoami(s->admin_token()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("failed verification"), std::string::npos) << r.status().message();

  // The certificate names 127.0.0.1, not localhost.
  auto by_name = ClientFor("https://localhost:" + port, mtls);
  ASSERT_TRUE(by_name.ok());
  r = (*by_name)->Send(Whoami(s->admin_token()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("hostname mismatch"), std::string::npos) << r.status().message();

  // The error messages never carry the token.
  EXPECT_EQ(r.status().message().find(s->admin_token()), std::string::npos);
}

TEST_F(HttpClientTlsTest, KeyMustMatchTheCertificate) {
  HttpClientOptions o;
  o.ca_file = Path("ca.pem");
  o.cert_file = Path("client.pem");
  o.key_file = Path("server.key");
  auto c = ClientFor("https://127.0.0.1:1", o);
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace geoledger::cli
