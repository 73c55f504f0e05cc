// A policy change and its audit entry are one write: a real ledger and a
// real policy store on the same KvStore, with the store's writes failing or
// its syncs failing on demand. Whatever fails, the store reopened from what
// reached the KvStore holds the change together with its entry, or neither.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "audit/internal/ledger_keys.h"
#include "common/clock.h"
#include "common/kv_store.h"
#include "geoledger/v1/audit.pb.h"
#include "residency/bundle.h"
#include "server/policy_routes.h"
#include "tests/common/faulty_kv_store.h"
#include "tests/residency/fixtures.h"

namespace geoledger::server {
namespace {

using residency::testing::At;
using residency::testing::R;
using residency::testing::T;

const int64_t kNow = At("2025-06-15");

class PolicyChangeAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signer_.emplace(std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32))));
    Open();
    // Regions and a tenant, each audited the way the server does it.
    ASSERT_TRUE(Put(R("eu-west-1", "IE")).ok());
    ASSERT_TRUE(Put(R("eu-central-1", "DE")).ok());
    ASSERT_TRUE(Put(Acme("active")).ok());
  }
  // (Re)opens the ledger, the engine and the store from what reached inner_.
  void Open() {
    if (ledger_) (void)ledger_->Close();  // an unhealthy ledger reports its failure again
    store_.reset();
    ledger_.reset();
    audit::Ledger::Options o;
    o.region = "eu-west-1";
    auto l = audit::Ledger::Open(&kv_, &*signer_, &SystemClock::Get(), o);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ledger_ = std::move(l).value();
    engine_ = residency::testing::NewEngine();
    auto s = residency::PolicyStore::Open(&kv_, engine_.get(), &SystemClock::Get());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  static residency::Tenant Acme(const std::string& status) {
    return T("acme", R"({"home_region":"eu-west-1","status":")" + status +
                         R"(","allowed_regions":{"personal":["eu-central-1"]}})");
  }
  static audit::AuditEvent Event(const residency::ChangeRecord& c) {
    audit::AuditEvent e;
    e.actor = c.actor;
    e.action = c.kind + (c.created ? ".created" : ".updated");
    e.resource = c.kind + "/" + c.id;
    e.outcome = "ok";
    e.details = {{"policy_version", std::to_string(c.version)}};
    return e;
  }
  StatusOr<residency::ChangeRecord> Put(const residency::Region& r) {
    PolicyChangeAudit audit(ledger_.get(), Event);
    return store_->PutRegion("alice", r, audit.Hook());
  }
  StatusOr<residency::ChangeRecord> Put(const residency::Tenant& t, bool* hook_failed = nullptr) {
    PolicyChangeAudit audit(ledger_.get(), Event);
    auto change = store_->PutTenant("alice", t, audit.Hook());
    if (hook_failed) *hook_failed = audit.hook_failed();
    return change;
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
  // Every tenant history record names an entry for that change, and every
  // tenant entry in the log has its history record.
  void ExpectEntriesAndHistoryAgree() {
    auto history = residency::testing::TenantHistory(*store_, "acme");
    ASSERT_TRUE(history.ok()) << history.status().ToString();
    size_t tenant_entries = 0;
    for (uint64_t i = 0; i < ledger_->size(); ++i)
      if (Entry(i).resource() == "tenant/acme") ++tenant_entries;
    EXPECT_EQ(tenant_entries, history->size());
    for (const auto& rec : *history) {
      ASSERT_TRUE(rec.audit_index.has_value());
      ASSERT_LT(*rec.audit_index, ledger_->size());
      v1::AuditEntry e = Entry(*rec.audit_index);
      EXPECT_EQ(e.resource(), "tenant/acme");
      EXPECT_EQ(Detail(e, "policy_version"), std::to_string(rec.version));
    }
  }

  std::unique_ptr<KvStore> inner_ = NewMemoryKvStore();
  FaultyKvStore kv_{inner_.get()};
  std::optional<crypto::Ed25519Signer> signer_;
  std::unique_ptr<audit::Ledger> ledger_;
  std::unique_ptr<residency::Engine> engine_;
  std::unique_ptr<residency::PolicyStore> store_;
};

TEST_F(PolicyChangeAuditTest, TheChangeIsActiveOnceItAndItsEntryAreDurable) {
  const int syncs = kv_.syncs_;
  auto change = Put(Acme("suspended"));
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  ASSERT_TRUE(change->audit_index.has_value());
  EXPECT_EQ(ledger_->size(), *change->audit_index + 1);  // durable: Append returns only then
  EXPECT_GT(kv_.syncs_, syncs);
  v1::AuditEntry e = Entry(*change->audit_index);
  EXPECT_EQ(e.action(), "tenant.updated");
  EXPECT_EQ(e.actor(), "alice");
  EXPECT_EQ(Detail(e, "policy_version"), std::to_string(change->version));
  EXPECT_EQ(engine_->version(), change->version);
  EXPECT_FALSE(engine_->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);
  ExpectEntriesAndHistoryAgree();
  Open();
  EXPECT_EQ(engine_->version(), change->version);
  ExpectEntriesAndHistoryAgree();
}

TEST_F(PolicyChangeAuditTest, AFailedWriteLeavesNeitherTheEntryNorTheChange) {
  const uint64_t size = ledger_->size(), version = store_->version();
  kv_.fail_ = true;
  bool hook_failed = false;
  EXPECT_EQ(Put(Acme("suspended"), &hook_failed).status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(hook_failed);
  EXPECT_EQ(engine_->version(), version);
  EXPECT_EQ(store_->GetTenant("acme").status().code(), StatusCode::kUnavailable);  // until reopened
  kv_.fail_ = false;
  Open();
  EXPECT_EQ(ledger_->size(), size);
  EXPECT_EQ(store_->version(), version);
  EXPECT_TRUE(engine_->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);
  ExpectEntriesAndHistoryAgree();
}

// A sync that reports a failure may still have persisted the write (here the
// memory store keeps it): then the change and its entry are both there.
TEST_F(PolicyChangeAuditTest, AFailedSyncLeavesTheChangeWithItsEntryOrNeither) {
  const uint64_t size = ledger_->size(), version = store_->version();
  kv_.fail_sync_ = true;
  EXPECT_EQ(Put(Acme("suspended")).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(engine_->version(), version);  // not active: it was not acknowledged
  kv_.fail_sync_ = false;
  Open();
  EXPECT_EQ(ledger_->size(), size + 1);
  EXPECT_EQ(store_->version(), version + 1);
  EXPECT_FALSE(engine_->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);
  ExpectEntriesAndHistoryAgree();
}

TEST_F(PolicyChangeAuditTest, AnEntryRefusedBeforeAnythingIsWrittenLeavesTheStoreUsable) {
  const uint64_t size = ledger_->size(), version = store_->version();
  ASSERT_TRUE(ledger_->Close().ok());
  bool hook_failed = false;
  EXPECT_EQ(Put(Acme("suspended"), &hook_failed).status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(hook_failed);
  EXPECT_EQ(store_->version(), version);
  auto acme = store_->GetTenant("acme");  // usable: nothing was handed to the store
  ASSERT_TRUE(acme.ok()) << acme.status().ToString();
  EXPECT_EQ((*acme)->status, residency::TenantStatus::kActive);
  Open();
  EXPECT_EQ(ledger_->size(), size + 0);
  auto retried = Put(Acme("suspended"));
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_EQ(retried->version, version + 1);
  ExpectEntriesAndHistoryAgree();
}

TEST_F(PolicyChangeAuditTest, AttachedWritesMayNotTouchTheAuditLog) {
  audit::AuditEvent e;
  e.action = "test.attached";
  e.outcome = "ok";
  auto before = inner_->Get(audit::internal::kLedgerNs, audit::internal::kHeadKey);
  ASSERT_TRUE(before.ok() && before->has_value());
  auto appended = ledger_->Append({e}, [](uint64_t, KvBatch& batch) {
    batch.Put(audit::internal::kLedgerNs, audit::internal::kHeadKey, "forged head");
  });
  EXPECT_EQ(appended.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(ledger_->healthy());
  auto head = inner_->Get(audit::internal::kLedgerNs, audit::internal::kHeadKey);
  ASSERT_TRUE(head.ok() && head->has_value());
  EXPECT_EQ(**head, **before);
}

// A bundle import is saved before it is written (DIR/policy-bundle.json
// .pending): when its audited write fails and yet reaches the disk, the
// restart, which finds the import in the store, makes that bundle the
// last-known-good file. Before, the file still held the previous bundle,
// and an operator had to notice and put the imported one there by hand.
class BundleImportAuditTest : public PolicyChangeAuditTest {
 protected:
  void SetUp() override {
    PolicyChangeAuditTest::SetUp();
    dir_ = std::filesystem::temp_directory_path() /
           ("geoledger-import-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    lkg_ = (dir_ / "policy-bundle.json").string();
    ASSERT_TRUE(Import(Bundle(10)).ok());
    ASSERT_EQ(Read(lkg_), Bundle(10));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Bundle(uint64_t version) const {
    residency::PolicyDocument doc;
    doc.version = version;
    doc.regions = {R("eu-west-1", "IE"), R("eu-central-1", "DE")};
    doc.tenants = {Acme(version % 20 == 0 ? "suspended" : "active")};
    return residency::SignBundle(doc, bundle_signer_);
  }
  StatusOr<residency::ImportedBundle> Import(const std::string& bundle) {
    PolicyChangeAudit audit(ledger_.get(), Event);
    return residency::ImportBundle(*store_, bundle, {bundle_signer_.public_key()}, lkg_, "bob", audit.Hook());
  }
  StatusOr<residency::LastKnownGood> Restart() {
    Open();
    PolicyChangeAudit audit(ledger_.get(), Event);
    return residency::LoadLastKnownGood(*store_, lkg_, {bundle_signer_.public_key()}, audit.Hook());
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  crypto::Ed25519Signer bundle_signer_ =
      std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::CopyFrom(std::string(32, 'b'))));
  std::filesystem::path dir_;
  std::string lkg_;
};

TEST_F(BundleImportAuditTest, AnImportWhoseSyncFailedButPersistedIsTheLastKnownGoodBundleAfterARestart) {
  const std::string pending = residency::PendingImportPath(lkg_);
  kv_.fail_sync_ = true;
  EXPECT_EQ(Import(Bundle(20)).status().code(), StatusCode::kUnavailable);
  kv_.fail_sync_ = false;
  EXPECT_EQ(engine_->version(), 10u);  // not active: it was not acknowledged
  EXPECT_EQ(Read(pending), Bundle(20));  // kept: whether it is stored is not known yet
  auto loaded = Restart();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(store_->version(), 20u);  // the memory store kept the write
  ASSERT_TRUE(loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, residency::PendingImport::kSaved);
  EXPECT_EQ(loaded->pending->version, std::optional<uint64_t>(20));
  EXPECT_FALSE(loaded->activated.has_value());  // the store has it already
  EXPECT_EQ(Read(lkg_), Bundle(20));
  EXPECT_FALSE(std::filesystem::exists(pending));
  EXPECT_FALSE(engine_->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);  // v20 suspends acme
}

TEST_F(BundleImportAuditTest, AnImportWhoseWriteFailedLeavesThePreviousLastKnownGoodBundle) {
  const std::string pending = residency::PendingImportPath(lkg_);
  kv_.fail_ = true;
  EXPECT_EQ(Import(Bundle(20)).status().code(), StatusCode::kUnavailable);
  kv_.fail_ = false;
  EXPECT_TRUE(std::filesystem::exists(pending));
  auto loaded = Restart();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(store_->version(), 10u);
  ASSERT_TRUE(loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, residency::PendingImport::kNotStored);
  EXPECT_EQ(Read(lkg_), Bundle(10));
  EXPECT_FALSE(std::filesystem::exists(pending));
  // And the import can be made again.
  auto again = Import(Bundle(20));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->last_known_good.ok()) << again->last_known_good.ToString();
  EXPECT_EQ(Read(lkg_), Bundle(20));
  EXPECT_FALSE(std::filesystem::exists(pending));
}

// While the store cannot tell whether an import reached the disk, a second
// import is refused before it touches the pending file: it overwrote the
// first import's file, which the start then removed as not stored, though
// the first import was.
TEST_F(BundleImportAuditTest, AnImportWhileAnEarlierOnesOutcomeIsUnknownIsRefusedAndKeepsItsFile) {
  const std::string pending = residency::PendingImportPath(lkg_);
  kv_.fail_sync_ = true;
  EXPECT_EQ(Import(Bundle(20)).status().code(), StatusCode::kUnavailable);
  kv_.fail_sync_ = false;
  EXPECT_EQ(Import(Bundle(30)).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Read(pending), Bundle(20));
  auto loaded = Restart();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, residency::PendingImport::kSaved);
  EXPECT_EQ(Read(lkg_), Bundle(20));
}

// An import whose rename failed left the active bundle in the pending file;
// the next import puts it in place before writing its own, so that import
// failing (its file removed) does not lose it.
TEST_F(BundleImportAuditTest, ThePendingFileOfAnImportWhoseRenameFailedIsPutInPlaceByTheNextImport) {
  const std::string pending = residency::PendingImportPath(lkg_);
  std::filesystem::remove(lkg_);
  std::filesystem::create_directory(lkg_);  // the rename fails
  auto imported = Import(Bundle(20));
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_FALSE(imported->last_known_good.ok());
  EXPECT_EQ(Read(pending), Bundle(20));
  std::filesystem::remove(lkg_);
  ASSERT_TRUE(ledger_->Close().ok());  // the next import is refused before its write
  EXPECT_EQ(Import(Bundle(30)).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Read(lkg_), Bundle(20));
  EXPECT_FALSE(std::filesystem::exists(pending));
}

// While the rename keeps failing (here a directory stands where the file
// goes), later imports are refused: the active bundle exists on disk only
// as the pending file, which an import would overwrite. A rollback is still
// answered as one. Once the path is fixed, the next import goes through.
TEST_F(BundleImportAuditTest, ImportsAreRefusedWhileAnEarlierImportsBundleCannotBePutInPlace) {
  const std::string pending = residency::PendingImportPath(lkg_);
  std::filesystem::remove(lkg_);
  std::filesystem::create_directory(lkg_);
  auto imported = Import(Bundle(20));
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_FALSE(imported->last_known_good.ok());
  auto refused = Import(Bundle(30));
  EXPECT_EQ(refused.status().code(), StatusCode::kInternal);
  EXPECT_NE(refused.status().message().find("could not be put in place"), std::string::npos)
      << refused.status().ToString();
  EXPECT_EQ(store_->version(), 20u);
  EXPECT_EQ(Import(Bundle(15)).status().code(), StatusCode::kFailedPrecondition);  // a rollback, not a 500
  EXPECT_EQ(Read(pending), Bundle(20));
  std::filesystem::remove(lkg_);
  auto next = Import(Bundle(30));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  ASSERT_TRUE(next->earlier.has_value());
  EXPECT_EQ(next->earlier->outcome, residency::PendingImport::kSaved);
  EXPECT_TRUE(next->last_known_good.ok()) << next->last_known_good.ToString();
  EXPECT_EQ(Read(lkg_), Bundle(30));
  EXPECT_FALSE(std::filesystem::exists(pending));
}

// An import the ledger refuses before anything is written (here: closed)
// leaves the store usable, so its pending file is removed at once.
TEST_F(BundleImportAuditTest, AnImportRefusedBeforeItsWriteLeavesNoPendingFile) {
  ASSERT_TRUE(ledger_->Close().ok());
  EXPECT_EQ(Import(Bundle(20)).status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(std::filesystem::exists(residency::PendingImportPath(lkg_)));
  EXPECT_EQ(Read(lkg_), Bundle(10));
  EXPECT_EQ(store_->version(), 10u);
}

}  // namespace
}  // namespace geoledger::server
