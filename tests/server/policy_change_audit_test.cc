// The audit side of a policy change: its entry before the commit, and a
// second entry when the commit then fails.
#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/kv_store.h"
#include "geoledger/v1/audit.pb.h"
#include "server/policy_routes.h"

namespace geoledger::server {
namespace {

class PolicyChangeAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = NewMemoryKvStore();
    signer_.emplace(std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32))));
    audit::Ledger::Options o;
    o.region = "eu-west-1";
    auto l = audit::Ledger::Open(kv_.get(), &*signer_, &SystemClock::Get(), o);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(l).value();
  }
  static audit::AuditEvent Event(const residency::ChangeRecord& c) {
    audit::AuditEvent e;
    e.actor = c.actor;
    e.action = "tenant.updated";
    e.resource = "tenant/" + c.id;
    e.outcome = "ok";
    e.details = {{"policy_version", std::to_string(c.version)}};
    return e;
  }
  v1::AuditEntry Entry(uint64_t index) {
    auto entries = ledger_->Entries(index, index + 1);
    EXPECT_TRUE(entries.ok()) << entries.status().ToString();
    v1::AuditEntry e;
    if (entries.ok()) {
      EXPECT_TRUE(e.ParseFromString((*entries)[0].bytes));
    }
    return e;
  }
  static std::string Detail(const v1::AuditEntry& e, const std::string& key) {
    for (const auto& d : e.details())
      if (d.key() == key) return d.value();
    return "";
  }
  residency::ChangeRecord Change() {
    residency::ChangeRecord c;
    c.version = 7;
    c.actor = "alice";
    c.kind = "tenant";
    c.id = "acme";
    c.changes = {{"status", "active", "suspended"}};
    return c;
  }
  std::unique_ptr<KvStore> kv_;
  std::optional<crypto::Ed25519Signer> signer_;
  std::unique_ptr<audit::Ledger> ledger_;
};

TEST_F(PolicyChangeAuditTest, TheEntryIsDurableBeforeTheHookReturnsAndACommittedChangeAddsNothing) {
  PolicyChangeAudit audit(ledger_.get(), Event);
  auto index = audit.Hook()(Change());
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(ledger_->size(), *index + 1);  // durable: Append returns only then
  v1::AuditEntry e = Entry(*index);
  EXPECT_EQ(e.action(), "tenant.updated");
  EXPECT_EQ(e.actor(), "alice");
  EXPECT_EQ(Detail(e, "policy_version"), "7");
  audit.Settle(Status::Ok());
  EXPECT_EQ(ledger_->size(), *index + 1);
}

TEST_F(PolicyChangeAuditTest, ACommitThatFailsAfterTheEntryIsRecordedAsNotApplied) {
  PolicyChangeAudit audit(ledger_.get(), Event);
  auto index = audit.Hook()(Change());
  ASSERT_TRUE(index.ok());
  audit.Settle(Internal("injected write failure"));
  ASSERT_EQ(ledger_->size(), *index + 2);
  v1::AuditEntry e = Entry(*index + 1);
  EXPECT_EQ(e.action(), "policy.change.not_applied");
  EXPECT_EQ(e.outcome(), "failed");
  EXPECT_EQ(e.actor(), "alice");
  EXPECT_EQ(e.resource(), "tenant/acme");
  EXPECT_EQ(Detail(e, "audit_index"), std::to_string(*index));
  EXPECT_EQ(Detail(e, "policy_version"), "7");
  EXPECT_EQ(Detail(e, "error"), "internal");
}

TEST_F(PolicyChangeAuditTest, AChangeRefusedBeforeItsEntryLeavesTheLogAlone) {
  PolicyChangeAudit audit(ledger_.get(), Event);
  const uint64_t size = ledger_->size();
  audit.Settle(FailedPrecondition("not newer"));  // the store refused before calling the hook
  EXPECT_EQ(ledger_->size(), size);
  EXPECT_FALSE(audit.hook_failed());
  ASSERT_TRUE(ledger_->Close().ok());
  PolicyChangeAudit closed(ledger_.get(), Event);
  EXPECT_EQ(closed.Hook()(Change()).status().code(), StatusCode::kUnavailable);  // no entry, no change
  EXPECT_TRUE(closed.hook_failed());
  closed.Settle(Unavailable("audit"));
  EXPECT_EQ(ledger_->size(), size);
}

}  // namespace
}  // namespace geoledger::server
