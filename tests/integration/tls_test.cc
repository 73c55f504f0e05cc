// TLS and mTLS through Pistache + OpenSSL, with certificates made by the test.
#include <gtest/gtest.h>

#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir());
    std::string error;
    ASSERT_TRUE(MakeTestPki(*dir_, &error)) << error;
  }
  static void TearDownTestSuite() {
    RemoveTree(*dir_);
    delete dir_;
  }
  static std::string Path(const std::string& f) { return *dir_ + "/" + f; }
  static std::string Url(const TestServer& s, const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(s.port()) + path;
  }
  static std::string* dir_;
};
std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, ServesHttpsWithTheConfiguredCertificate) {
  auto s = TestServer::Start({"--tls-cert", Path("server.pem"), "--tls-key", Path("server.key")});
  ASSERT_TRUE(s->started()) << s->log();
  std::string out;
  EXPECT_EQ(RunCommand({"curl", "-sS", "--max-time", "20", "--cacert", Path("ca.pem"), "-o", "/dev/null",
                        "-w", "%{http_code}", Url(*s, "/healthz")}, &out), 0) << out;
  EXPECT_EQ(out, "200");
  // An untrusting client refuses the connection.
  EXPECT_NE(RunCommand({"curl", "-sS", "--max-time", "20", Url(*s, "/healthz")}, &out), 0);
  // Plain HTTP to the TLS port gets nothing useful.
  RawResponse plain = s->Request("GET", "/healthz");
  EXPECT_NE(plain.status, 200);
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificate) {
  auto s = TestServer::Start({"--tls-cert", Path("server.pem"), "--tls-key", Path("server.key"),
                              "--tls-client-ca", Path("ca.pem")});
  ASSERT_TRUE(s->started()) << s->log();
  std::string out;
  EXPECT_NE(RunCommand({"curl", "-sS", "--max-time", "20", "--cacert", Path("ca.pem"), Url(*s, "/healthz")}, &out), 0)
      << out;
  EXPECT_EQ(RunCommand({"curl", "-sS", "--max-time", "20", "--cacert", Path("ca.pem"), "--cert",
                        Path("client.pem"), "--key", Path("client.key"), "-o", "/dev/null", "-w",
                        "%{http_code}", Url(*s, "/healthz")}, &out), 0) << out;
  EXPECT_EQ(out, "200");
}

// The packaged Pistache handshakes on its accept thread with a fixed 10 s
// socket timeout: a silent client delays others but cannot stall them forever.
TEST_F(TlsTest, SilentClientCannotStallOtherHandshakesForever) {
  auto s = TestServer::Start({"--tls-cert", Path("server.pem"), "--tls-key", Path("server.key")});
  ASSERT_TRUE(s->started()) << s->log();
  RawConnection silent(s->port());  // connects, never sends a ClientHello
  ASSERT_TRUE(silent.connected());
  std::string out;
  EXPECT_EQ(RunCommand({"curl", "-sS", "--max-time", "60", "--cacert", Path("ca.pem"), "-o", "/dev/null",
                        "-w", "%{http_code}", Url(*s, "/healthz")}, &out), 0) << out;
  EXPECT_EQ(out, "200");
}

TEST_F(TlsTest, UnreadableCertificateIsAStartupError) {
  auto s = TestServer::Start({"--tls-cert", Path("missing.pem"), "--tls-key", Path("server.key")});
  EXPECT_FALSE(s->started());
}

}  // namespace
}  // namespace geoledger::testing
