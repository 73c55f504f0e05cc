// Tampering with a stopped server's audit log in RocksDB, through the real
// geoledgerd: --audit-verify-on-start keeps it unready and names the entry;
// without it the service starts in O(log n) and reads that touch the damage
// answer a data-loss problem naming the entry.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "audit/internal/ledger_keys.h"
#include "common/kv_store.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

using audit::internal::EntryKey;

class AuditTamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    original_ = TestServer::Start();  // owns the data dir until the test ends
    TestServer* s = original_.get();
    ASSERT_TRUE(s->started()) << s->log();
    admin_ = s->admin_token();
    std::string writer = s->CreateToken("app", {"audit:write"});
    nlohmann::json events = nlohmann::json::array();
    for (int i = 0; i < 40; ++i)
      events.push_back({{"tenant", "acme"}, {"action", "record.read"},
                        {"resource", "orders/" + std::to_string(i)}, {"outcome", "allowed"}});
    RawResponse r = s->Authed(writer, "POST", "/v1/audit/events", nlohmann::json{{"events", events}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    dir_ = s->data_dir();
    ASSERT_EQ(s->Terminate(), 0);  // final checkpoint covers every entry
    auto kv = OpenRocksDbKvStore(dir_ + "/db", KnownNamespaces());
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    KvBatch b;
    b.Delete(audit::internal::kLedgerNs, EntryKey(20));
    ASSERT_TRUE((*kv)->Write(b, true).ok());
  }
  std::unique_ptr<TestServer> original_;
  std::string dir_, admin_;
};

TEST_F(AuditTamperTest, VerifyOnStartKeepsTheServiceUnreadyAndNamesTheEntry) {
  auto s = TestServer::Start({"--audit-verify-on-start"}, dir_, true, std::chrono::seconds(2));
  EXPECT_FALSE(s->started());
  uint16_t port = s->WaitForUnreadyPort();
  ASSERT_NE(port, 0) << s->log();
  RawConnection c(port);
  RawResponse ready;
  ASSERT_TRUE(c.Send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n") && c.ReadResponse(&ready));
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("audit log verification failed"), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find("entry 20: missing"), std::string::npos) << ready.body;
  RawResponse api;
  ASSERT_TRUE(c.Send("GET /v1/audit/checkpoint HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
                     "\r\n\r\n") && c.ReadResponse(&api));
  EXPECT_EQ(api.status, 503);
  EXPECT_EQ(s->Terminate(), 0);
}

TEST_F(AuditTamperTest, WithoutVerificationReadsOverTheDamageNameTheEntry) {
  auto s = TestServer::Start({}, dir_);
  ASSERT_TRUE(s->started()) << s->log();
  RawResponse exported = s->Authed(admin_, "GET", "/v1/audit/export");
  EXPECT_EQ(exported.status, 500);
  EXPECT_EQ(exported.Header("content-type"), "application/problem+json");
  auto doc = nlohmann::json::parse(exported.body, nullptr, false);
  EXPECT_EQ(doc.value("type", ""), "urn:geoledger:problem:data-loss") << exported.body;
  EXPECT_NE(doc.value("detail", "").find("entry 20"), std::string::npos) << exported.body;
  RawResponse entries = s->Authed(admin_, "GET", "/v1/audit/entries?start=15&end=25");
  EXPECT_EQ(entries.status, 500);
  EXPECT_NE(entries.body.find("entry 20"), std::string::npos) << entries.body;
  // Entries before the damage are still served.
  EXPECT_EQ(s->Authed(admin_, "GET", "/v1/audit/entries?start=0&end=20").status, 200);
  EXPECT_EQ(s->Terminate(), 0);
}

}  // namespace
}  // namespace geoledger::testing
