// Tampering with the stored audit log directly in RocksDB, as someone with
// access to the data files could, is caught by Ledger::Verify (or by Open)
// and named by entry index.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <functional>
#include <optional>

#include "audit/internal/ledger_keys.h"
#include "audit/ledger.h"
#include "common/clock.h"
#include "common/kv_store.h"
#include "crypto/hash.h"
#include "crypto/secret.h"
#include "tests/integration/test_server.h"

namespace geoledger::audit {
namespace {

constexpr uint64_t kEntries = 100;

using internal::BigEndian64;
using internal::CheckpointKey;
using internal::EntryKey;
using internal::SubtreeKey;

// Raw RocksDB access to the "audit" column family, bypassing every API.
class RawAuditColumn {
 public:
  explicit RawAuditColumn(const std::string& path) {
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* db = nullptr;
    EXPECT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, descs, &handles_, &db).ok());
    db_.reset(db);
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == "audit") cf_ = handles_[i];
    EXPECT_NE(cf_, nullptr);
  }
  ~RawAuditColumn() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  std::string Get(const std::string& key) {
    std::string v;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), cf_, key, &v).ok()) << "missing raw key";
    return v;
  }
  void Put(const std::string& key, const std::string& value) {
    rocksdb::WriteOptions w;
    w.sync = true;
    ASSERT_TRUE(db_->Put(w, cf_, key, value).ok());
  }
  void Delete(const std::string& key) {
    rocksdb::WriteOptions w;
    w.sync = true;
    ASSERT_TRUE(db_->Delete(w, cf_, key).ok());
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* cf_ = nullptr;
};

class LedgerTamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    signer_.emplace(std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32))));
    // 100 entries in batches of 10, a signed checkpoint after every batch.
    auto kv = OpenRocksDbKvStore(db(), KnownNamespaces());
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    auto ledger = Ledger::Open(kv->get(), &*signer_, &SystemClock::Get(), Opts());
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    for (uint64_t b = 0; b < kEntries / 10; ++b) {
      std::vector<AuditEvent> batch;
      for (uint64_t i = 0; i < 10; ++i) {
        AuditEvent e;
        e.tenant = "acme";
        e.actor = "test";
        e.action = "record.read";
        e.resource = "orders/" + std::to_string(b * 10 + i);
        e.outcome = "allowed";
        e.details = {{"n", std::to_string(b * 10 + i)}};
        batch.push_back(e);
      }
      ASSERT_TRUE((*ledger)->Append(std::move(batch)).ok());
    }
    ASSERT_TRUE((*ledger)->Close().ok());
  }
  void TearDown() override { testing::RemoveTree(dir_); }

  std::string db() const { return dir_ + "/db"; }
  static Ledger::Options Opts() {
    Ledger::Options o;
    o.region = "eu-west-1";
    o.checkpoint_interval = std::chrono::milliseconds(0);
    return o;
  }
  // Opens the store as the service would, then runs the full verification.
  Status OpenAndVerify(std::optional<Ledger::VerifyReport>* report = nullptr) {
    GL_ASSIGN_OR_RETURN(auto kv, OpenRocksDbKvStore(db(), KnownNamespaces()));
    GL_ASSIGN_OR_RETURN(auto ledger, Ledger::Open(kv.get(), &*signer_, &SystemClock::Get(), Opts()));
    auto r = ledger->Verify();
    if (r.ok() && report != nullptr) *report = *r;
    return r.status();
  }
  // Opens the store as the service would, without the full verification.
  Status OpenOnly() {
    GL_ASSIGN_OR_RETURN(auto kv, OpenRocksDbKvStore(db(), KnownNamespaces()));
    return Ledger::Open(kv.get(), &*signer_, &SystemClock::Get(), Opts()).status();
  }
  void ExpectOpenFails(const std::string& what) {
    Status st = OpenOnly();
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
  }
  void ExpectCaught(const std::string& what) {
    Status st = OpenAndVerify();
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
  }

  std::string dir_;
  std::optional<crypto::Ed25519Signer> signer_;
};

TEST_F(LedgerTamperTest, UntouchedLogVerifiesWithEveryCheckpoint) {
  std::optional<Ledger::VerifyReport> report;
  Status st = OpenAndVerify(&report);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(report->entries, kEntries);
  EXPECT_EQ(report->checkpoints, kEntries / 10);
}

TEST_F(LedgerTamperTest, FlippedByteInAStoredEntryIsNamed) {
  {
    RawAuditColumn raw(db());
    std::string v = raw.Get(EntryKey(37));
    v[v.size() / 2] ^= 0x01;
    raw.Put(EntryKey(37), v);
  }
  // Leaves are not stored: the next entry's link names it.
  ExpectCaught("entry 38: prev_entry_hash does not match the SHA-256 of entry 37");
}

TEST_F(LedgerTamperTest, FlippedByteInTheFirstAndLastEntriesIsNamed) {
  for (uint64_t index : {uint64_t{0}, kEntries - 1}) {
    std::string original;
    {
      RawAuditColumn raw(db());
      original = raw.Get(EntryKey(index));
      std::string v = original;
      v.back() ^= 0x40;
      raw.Put(EntryKey(index), v);
    }
    ExpectCaught("entry " + std::to_string(index) + ":");
    RawAuditColumn(db()).Put(EntryKey(index), original);
  }
  EXPECT_TRUE(OpenAndVerify().ok());
}

TEST_F(LedgerTamperTest, DeletedEntryIsNamed) {
  RawAuditColumn(db()).Delete(EntryKey(37));
  ExpectCaught("entry 37: missing");
}

TEST_F(LedgerTamperTest, DeletedEntryMakesReadsFailNamingIt) {
  RawAuditColumn(db()).Delete(EntryKey(37));
  auto kv = OpenRocksDbKvStore(db(), KnownNamespaces());
  ASSERT_TRUE(kv.ok());
  auto ledger = Ledger::Open(kv->get(), &*signer_, &SystemClock::Get(), Opts());
  ASSERT_TRUE(ledger.ok()) << "opening reads O(log n) keys and does not notice";
  auto entries = (*ledger)->Entries(30, 40);
  EXPECT_EQ(entries.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(entries.status().message().find("entry 37"), std::string::npos);
  auto exported = (*ledger)->Export(0, std::nullopt);
  EXPECT_EQ(exported.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(exported.status().message().find("entry 37"), std::string::npos);
}

TEST_F(LedgerTamperTest, SwappedEntriesAreNamed) {
  {
    RawAuditColumn raw(db());
    std::string a = raw.Get(EntryKey(20)), b = raw.Get(EntryKey(30));
    raw.Put(EntryKey(20), b);
    raw.Put(EntryKey(30), a);
  }
  ExpectCaught("entry 20: index field says 30");
}

TEST_F(LedgerTamperTest, TruncatedTailIsNamed) {
  {
    RawAuditColumn raw(db());
    for (uint64_t i = 90; i < kEntries; ++i) raw.Delete(EntryKey(i));
  }
  // Opening hashes the last 4 entries (the right border below 16 leaves).
  ExpectCaught("entry 96 missing");
}

TEST_F(LedgerTamperTest, EntryMissingUnderTheRightBorderFailsOpenNamingIt) {
  RawAuditColumn(db()).Delete(EntryKey(98));
  ExpectCaught("entry 98 missing");
}

TEST_F(LedgerTamperTest, TruncatedTailWithARewrittenHeadFailsOpenNamingTheLostEntries) {
  {
    RawAuditColumn raw(db());
    std::string last_kept = raw.Get(EntryKey(94));
    for (uint64_t i = 95; i < kEntries; ++i) raw.Delete(EntryKey(i));
    raw.Put(internal::kHeadKey, BigEndian64(95) + std::string(crypto::AsView(crypto::Sha256(last_kept))));
  }
  ExpectCaught("entries 95 to 99 are missing");
}

TEST_F(LedgerTamperTest, ForgedLatestCheckpointFailsOpen) {
  {
    RawAuditColumn raw(db());
    auto other = crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32));
    std::string root(32, '\x07');
    raw.Put("checkpoint", SignCheckpoint(Checkpoint{"geoledger/eu-west-1", kEntries, root}, *other));
  }
  ExpectCaught("checkpoint does not verify");
}

TEST_F(LedgerTamperTest, ForgedHistoricCheckpointIsNamed) {
  {
    RawAuditColumn raw(db());
    auto other = crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32));
    std::string root(32, '\x07');
    raw.Put(CheckpointKey(50), SignCheckpoint(Checkpoint{"geoledger/eu-west-1", 50, root}, *other));
  }
  ExpectCaught("checkpoint at tree size 50 does not verify");
}

TEST_F(LedgerTamperTest, AlteredStoredSubtreeIsNamedByTheEntriesItCovers) {
  {
    RawAuditColumn raw(db());
    std::string key = SubtreeKey(4, 1);  // entries 16 to 31
    std::string v = raw.Get(key);
    v[0] ^= 0x01;
    raw.Put(key, v);
  }
  ExpectCaught("stored subtree over entries 16 to 31");
}

// The open recomputes the signed root from the subtrees on the checkpoint's
// border; the largest of them covers entries 0 to 63.
TEST_F(LedgerTamperTest, AlteredSubtreeUnderTheCheckpointFailsOpen) {
  {
    RawAuditColumn raw(db());
    std::string v = raw.Get(SubtreeKey(6, 0));
    v[5] ^= 0x01;
    raw.Put(SubtreeKey(6, 0), v);
  }
  ExpectOpenFails("the stored tree of size 100 does not have the signed checkpoint's root");
}

// Entries 96 to 99 are under subtrees too small to be stored: the open
// hashes them.
TEST_F(LedgerTamperTest, AlteredRecentEntryFailsOpen) {
  {
    RawAuditColumn raw(db());
    std::string v = raw.Get(EntryKey(97));
    v[v.size() / 2] ^= 0x01;
    raw.Put(EntryKey(97), v);
  }
  ExpectOpenFails("the stored tree of size 100 does not have the signed checkpoint's root");
}

TEST_F(LedgerTamperTest, AlteredLastEntryOrHeadHashFailsOpenNamingTheEntry) {
  std::string original;
  {
    RawAuditColumn raw(db());
    original = raw.Get(EntryKey(kEntries - 1));
    std::string v = original;
    v[v.size() / 2] ^= 0x01;
    raw.Put(EntryKey(kEntries - 1), v);
  }
  ExpectOpenFails("entry 99: its SHA-256 is not the tree head's last hash");
  RawAuditColumn(db()).Put(EntryKey(kEntries - 1), original);
  ASSERT_TRUE(OpenOnly().ok());
  // The head rewritten: new entries would chain to an entry the log lacks.
  RawAuditColumn(db()).Put(internal::kHeadKey, BigEndian64(kEntries) + std::string(32, '\x07'));
  ExpectOpenFails("entry 99: its SHA-256 is not the tree head's last hash");
}

// A latest checkpoint behind the head (as between checkpoints) is checked at
// its own size, from the subtrees of its border.
TEST_F(LedgerTamperTest, CheckpointBehindTheHeadIsCheckedAtItsSize) {
  {
    RawAuditColumn raw(db());
    raw.Put(internal::kCheckpointKey, raw.Get(CheckpointKey(50)));
  }
  ASSERT_TRUE(OpenOnly().ok());
  {
    RawAuditColumn raw(db());
    // Closing signed a checkpoint of the head again; put back the older one.
    raw.Put(internal::kCheckpointKey, raw.Get(CheckpointKey(50)));
    std::string v = raw.Get(SubtreeKey(4, 2));  // entries 32 to 47: on 50's border, not on 100's
    v[0] ^= 0x01;
    raw.Put(SubtreeKey(4, 2), v);
  }
  ExpectOpenFails("the stored tree of size 50 does not have the signed checkpoint's root");
}

}  // namespace
}  // namespace geoledger::audit
