// What the key hierarchy leaves in the RocksDB files: a raw byte scan of
// every file finds no plaintext data key, no sealed plaintext, no subject id,
// and — after crypto-shredding — not even the shredded key in wrapped form.
#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/kv_store.h"
#include "crypto/hash.h"
#include "crypto/keyring.h"
#include "tests/common/faulty_kv_store.h"
#include "tests/integration/test_server.h"

namespace geoledger::crypto {
namespace {

std::string Reveal(const SecretBytes& s) {
  return std::string(reinterpret_cast<const char*>(s.Reveal(SecretAccess::Grant())), s.size());
}
std::string Pseudonym(const std::string& subject) { return std::string(AsView(Sha256("subject:" + subject))); }

class KeyringStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    root_ = SecretBytes::Random(32);
    Reopen();
  }
  void TearDown() override {
    ring_.reset();
    kv_.reset();
    testing::RemoveTree(dir_);
  }
  void Reopen() {
    ring_.reset();
    faulty_.reset();
    kv_.reset();
    auto kv = OpenRocksDbKvStore(dir_ + "/db", KnownNamespaces());
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    kv_ = std::move(*kv);
    faulty_ = std::make_unique<FaultyKvStore>(kv_.get());
    KeyringOptions o;
    o.region = "eu-west-1";
    auto ring = Keyring::Open(faulty_.get(), root_, &SystemClock::Get(), o);
    ASSERT_TRUE(ring.ok());
    ring_ = std::move(*ring);
  }
  // Key changes go straight to the store here (the server writes them with
  // their audit entries).
  CommitChange Commit() {
    return [this](const KeyChange&, KvBatch batch) { return kv_->Write(batch, /*sync=*/true); };
  }
  std::string dir_;
  SecretBytes root_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<FaultyKvStore> faulty_;  // over kv_, the keyring's store
  std::unique_ptr<Keyring> ring_;
};

TEST_F(KeyringStorageTest, RawScanFindsNoPlaintextKeyMarkerOrSubjectId) {
  const std::string marker = "GEOLEDGER-PLAINTEXT-MARKER-7f3a9c";
  std::vector<std::string> plaintext_keys, subject_ids;
  for (int i = 0; i < 40; ++i) {
    std::string subject = "subject-" + std::to_string(i) + "@example.com";
    subject_ids.push_back(subject);
    auto issued = ring_->IssueDataKey("acme", Pseudonym(subject));
    ASSERT_TRUE(issued.ok());
    plaintext_keys.push_back(Reveal(issued->plaintext));
    ASSERT_TRUE(ring_->Seal("acme", Pseudonym(subject), "profile", marker + " of " + subject).ok());
  }
  ASSERT_TRUE(ring_->Rotate("acme", Commit()).ok());
  ASSERT_TRUE(ring_->RewrapStep("acme", Commit()).ok());
  Reopen();  // closes RocksDB: memtables flushed, the files are all there is
  for (const auto& k : plaintext_keys) EXPECT_TRUE(testing::FilesContaining(dir_, k).empty()) << "a plaintext data key is on disk";
  EXPECT_TRUE(testing::FilesContaining(dir_, marker).empty());
  for (const auto& s : subject_ids) EXPECT_TRUE(testing::FilesContaining(dir_, s).empty()) << s;
  EXPECT_TRUE(testing::FilesContaining(dir_, Reveal(root_)).empty());
}

TEST_F(KeyringStorageTest, ShreddedKeyLeavesTheDatabaseFilesEvenWrapped) {
  const std::string alice = Pseudonym("alice"), bob = Pseudonym("bob");
  auto sealed = ring_->Seal("acme", alice, "profile", "alice's record");
  ASSERT_TRUE(sealed.ok());
  ASSERT_TRUE(ring_->Seal("acme", bob, "profile", "bob's record").ok());
  auto record = kv_->Get("keys", "s/acme/" + alice);  // the stored, wrapped subject key
  ASSERT_TRUE(record.ok() && record->has_value());
  Reopen();  // the wrapped key is now in an SST file
  ASSERT_FALSE(testing::FilesContaining(dir_, **record).empty());
  ASSERT_TRUE(ring_->Shred("acme", alice, Commit()).ok());
  EXPECT_TRUE(testing::FilesContaining(dir_, **record).empty()) << "the shredded key is still in a database file";
  Reopen();
  EXPECT_TRUE(testing::FilesContaining(dir_, **record).empty());
  EXPECT_EQ(ring_->Open("acme", alice, "profile", sealed->ciphertext).status().code(), StatusCode::kErased);
  auto other = ring_->Seal("acme", bob, "again", "still here");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*ring_->Open("acme", bob, "again", other->ciphertext), "still here");
}

// A shred whose purge did not run (the process stopped between its write
// and the compaction, or the compaction failed) is purged by the next start:
// the deletion leaves a purge key until the wrapped key is out of the files.
TEST_F(KeyringStorageTest, AShredWhosePurgeDidNotRunIsPurgedAtTheNextOpen) {
  const std::string alice = Pseudonym("alice");
  ASSERT_TRUE(ring_->Seal("acme", alice, "profile", "alice's record").ok());
  auto record = kv_->Get("keys", "s/acme/" + alice);
  ASSERT_TRUE(record.ok() && record->has_value());
  Reopen();  // the wrapped key is now in an SST file
  ASSERT_FALSE(testing::FilesContaining(dir_, **record).empty());
  faulty_->fail_purge_ = true;
  EXPECT_EQ(ring_->Shred("acme", alice, Commit()).status().code(), StatusCode::kInternal);
  EXPECT_FALSE(kv_->Get("keys", "s/acme/" + alice)->has_value());  // the shred itself is stored
  int owed = 0;
  ASSERT_TRUE(kv_->Scan("keys", "p/", [&](std::string_view, std::string_view) { return ++owed, true; }).ok());
  EXPECT_EQ(owed, 1);
  Reopen();  // a restart
  EXPECT_TRUE(testing::FilesContaining(dir_, **record).empty()) << "the shredded key is still in a database file";
  owed = 0;
  ASSERT_TRUE(kv_->Scan("keys", "p/", [&](std::string_view, std::string_view) { return ++owed, true; }).ok());
  EXPECT_EQ(owed, 0);
  EXPECT_EQ(ring_->Shred("acme", alice, Commit()).status().code(), StatusCode::kNotFound);
}

// The same for a retirement: the retired tenant key versions leave the files
// at the next start when the retirement's own compaction did not run.
TEST_F(KeyringStorageTest, ARetirementWhosePurgeDidNotRunIsPurgedAtTheNextOpen) {
  const std::string alice = Pseudonym("alice");
  auto sealed = ring_->Seal("acme", alice, "profile", "alice's record");
  ASSERT_TRUE(sealed.ok());
  auto v1 = kv_->Get("keys", std::string("t/acme/v/") + std::string("\0\0\0\1", 4));  // the wrapped KEK v1
  ASSERT_TRUE(v1.ok() && v1->has_value());
  ASSERT_TRUE(ring_->Rotate("acme", Commit()).ok());
  auto step = ring_->RewrapStep("acme", Commit());
  ASSERT_TRUE(step.ok() && step->done);
  Reopen();  // KEK v1 is now in an SST file
  ASSERT_FALSE(testing::FilesContaining(dir_, **v1).empty());
  faulty_->fail_purge_ = true;
  EXPECT_EQ(ring_->RetireBelow("acme", 2, Commit()).status().code(), StatusCode::kInternal);
  EXPECT_EQ(ring_->Info("acme")->min_decryption_version, 2u);  // the retirement itself is stored
  Reopen();
  EXPECT_TRUE(testing::FilesContaining(dir_, **v1).empty()) << "a retired key version is still in a database file";
  int owed = 0;
  ASSERT_TRUE(kv_->Scan("keys", "p/", [&](std::string_view, std::string_view) { return ++owed, true; }).ok());
  EXPECT_EQ(owed, 0);
  EXPECT_EQ(*ring_->Open("acme", alice, "profile", sealed->ciphertext), "alice's record");
}

}  // namespace
}  // namespace geoledger::crypto
