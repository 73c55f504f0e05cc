// The key hierarchy: round trips, every wrong binding, tampering, rotation
// with rewrap (also interrupted and resumed), retirement and crypto-shredding.
#include "crypto/keyring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/kv_store.h"
#include "crypto/hash.h"
#include "tests/common/faulty_kv_store.h"

namespace geoledger::crypto {
namespace {

std::string Reveal(const SecretBytes& s) {
  return std::string(reinterpret_cast<const char*>(s.Reveal(SecretAccess::Grant())), s.size());
}
std::string Pseudonym(const std::string& subject) { return std::string(AsView(Sha256("subject:" + subject))); }

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = NewMemoryKvStore();
    failing_ = std::make_unique<FaultyKvStore>(kv_.get());
    root_ = SecretBytes::Random(32);
    ring_ = Make("eu-west-1");
  }
  std::unique_ptr<Keyring> Make(const std::string& region, size_t batch = 256) {
    KeyringOptions o;
    o.region = region;
    o.rewrap_batch = batch;
    auto k = Keyring::Open(failing_.get(), root_, &clock_, o);
    EXPECT_TRUE(k.ok()) << k.status().ToString();
    return k.ok() ? std::move(*k) : nullptr;
  }
  // Commits key changes straight to the store, as the server does with
  // their audit entries, and records them; refuses them while
  // refuse_commits_ is set (a ledger that takes no entries).
  CommitChange Commit() {
    return [this](const KeyChange& change, KvBatch batch) -> Status {
      if (refuse_commits_) return Unavailable("audit: the ledger refuses appends");
      for (const auto& op : batch.ops()) EXPECT_EQ(op.ns, "keys");
      committed_.push_back(change);
      return failing_->Write(batch, /*sync=*/true);
    };
  }
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<FaultyKvStore> failing_;
  SecretBytes root_;
  ManualClock clock_;
  std::unique_ptr<Keyring> ring_;
  bool refuse_commits_ = false;
  std::vector<KeyChange> committed_;
  const std::string alice_ = Pseudonym("alice"), bob_ = Pseudonym("bob");
};

TEST_F(KeyringTest, DataKeyUnwrapsToTheSamePlaintextAndId) {
  auto issued = ring_->IssueDataKey("acme", alice_);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_TRUE(issued->subject_key_created);
  EXPECT_EQ(issued->key_id.size(), kKeyIdBytes);
  EXPECT_EQ(issued->plaintext.size(), kDataKeyBytes);
  EXPECT_EQ(issued->wrapped.find(Reveal(issued->plaintext)), std::string::npos);
  auto back = ring_->UnwrapDataKey("acme", alice_, issued->wrapped);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->key_id, issued->key_id);
  EXPECT_EQ(Reveal(back->plaintext), Reveal(issued->plaintext));
  ASSERT_TRUE(ring_->ConfirmCreationAudited("acme", alice_, issued->subject_key_id).ok());
  auto second = ring_->IssueDataKey("acme", alice_);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->subject_key_created);
  EXPECT_EQ(second->subject_key_id, issued->subject_key_id);
  EXPECT_NE(Reveal(second->plaintext), Reveal(issued->plaintext));
}

// A key whose key.created entry never became durable (the append failed,
// the process stopped) is reported as created by every use until the caller
// confirms the entry: its creation is audited at least once.
TEST_F(KeyringTest, ASubjectKeysCreationIsReportedUntilConfirmedAudited) {
  auto first = ring_->Seal("acme", alice_, "orders/1", "a");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->subject_key_created);
  auto again = ring_->Seal("acme", alice_, "orders/2", "b");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->subject_key_created) << "not confirmed yet";
  EXPECT_EQ(again->key_id, first->key_id);
  auto issued = ring_->IssueDataKey("acme", alice_);
  ASSERT_TRUE(issued.ok());
  EXPECT_TRUE(issued->subject_key_created);
  EXPECT_EQ(issued->subject_key_id, first->key_id);
  // Another key id (say, of a key shredded meanwhile) confirms nothing.
  ASSERT_TRUE(ring_->ConfirmCreationAudited("acme", alice_, std::string(kKeyIdBytes, '\x01')).ok());
  EXPECT_TRUE(ring_->Seal("acme", alice_, "orders/3", "c")->subject_key_created);
  ASSERT_TRUE(ring_->ConfirmCreationAudited("acme", alice_, first->key_id).ok());
  EXPECT_FALSE(ring_->Seal("acme", alice_, "orders/4", "d")->subject_key_created);
  EXPECT_FALSE(ring_->IssueDataKey("acme", alice_)->subject_key_created);
  EXPECT_FALSE(ring_->EnsureSubjectKey("acme", alice_)->second);

  // A rewrap to a new KEK keeps an unconfirmed creation unconfirmed.
  auto bob = ring_->EnsureSubjectKey("acme", bob_);
  ASSERT_TRUE(bob.ok());
  EXPECT_TRUE(bob->second);
  ASSERT_TRUE(ring_->Rotate("acme", Commit()).ok());
  for (int i = 0; i < 10; ++i) {
    auto step = ring_->RewrapStep("acme", Commit());
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    if (step->done) break;
  }
  EXPECT_EQ(ring_->Info("acme")->pending, 0u);
  EXPECT_TRUE(ring_->EnsureSubjectKey("acme", bob_)->second);
  EXPECT_FALSE(ring_->EnsureSubjectKey("acme", alice_)->second);

  // After a shred the subject's next key is a new creation.
  ASSERT_TRUE(ring_->Shred("acme", alice_, Commit()).ok());
  ASSERT_TRUE(ring_->ConfirmCreationAudited("acme", alice_, first->key_id).ok());  // gone: nothing to do
  auto fresh = ring_->Seal("acme", alice_, "orders/5", "e");
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->subject_key_created);
  EXPECT_NE(fresh->key_id, first->key_id);
}

// The confirmation runs on the ledger's syncer thread: it never waits for
// another key write, it reports the keyring busy (and the creation is
// reported again by the next use).
TEST_F(KeyringTest, ConfirmingACreationNeverWaitsForAnotherKeyWrite) {
  auto alice = ring_->EnsureSubjectKey("acme", alice_);
  ASSERT_TRUE(alice.ok());
  failing_->block_ = true;
  std::thread writer([&] { EXPECT_TRUE(ring_->EnsureSubjectKey("acme", bob_).ok()); });
  while (!failing_->blocked_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(ring_->ConfirmCreationAudited("acme", alice_, alice->first).code(), StatusCode::kUnavailable);
  failing_->block_ = false;
  writer.join();
  EXPECT_TRUE(ring_->EnsureSubjectKey("acme", alice_)->second);
  ASSERT_TRUE(ring_->ConfirmCreationAudited("acme", alice_, alice->first).ok());
  EXPECT_FALSE(ring_->EnsureSubjectKey("acme", alice_)->second);
}

TEST_F(KeyringTest, RecordRoundTrips) {
  auto sealed = ring_->Seal("acme", alice_, "orders/1", "alice@example.com");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->ciphertext.find("alice@example.com"), std::string::npos);
  auto opened = ring_->Open("acme", alice_, "orders/1", sealed->ciphertext);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, "alice@example.com");
}

TEST_F(KeyringTest, DecryptWithWrongTenantSubjectRecordOrVersionFails) {
  auto sealed = ring_->Seal("acme", alice_, "orders/1", "secret");
  ASSERT_TRUE(sealed.ok());
  ASSERT_TRUE(ring_->Seal("globex", alice_, "orders/1", "other").ok());  // globex has its own key for alice
  ASSERT_TRUE(ring_->Seal("acme", bob_, "orders/1", "other").ok());
  struct Case {
    const char* name;
    std::string tenant, pseudonym, record;
  } cases[] = {
      {"tenant with a key for the subject", "globex", alice_, "orders/1"},
      {"tenant without keys", "initech", alice_, "orders/1"},
      {"subject", "acme", bob_, "orders/1"},
      {"subject without a key", "acme", Pseudonym("carol"), "orders/1"},
      {"record", "acme", alice_, "orders/2"},
  };
  for (const auto& c : cases) {
    auto r = ring_->Open(c.tenant, c.pseudonym, c.record, sealed->ciphertext);
    EXPECT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << c.name << ": " << r.status().ToString();
  }
  std::string version_edited = sealed->ciphertext;
  version_edited[5] ^= 0x02;  // the KEK version in the header, bound by the associated data
  EXPECT_EQ(ring_->Open("acme", alice_, "orders/1", version_edited).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(KeyringTest, DecryptInAnotherRegionFails) {
  auto sealed = ring_->Seal("acme", alice_, "orders/1", "secret");
  auto issued = ring_->IssueDataKey("acme", alice_);
  ASSERT_TRUE(sealed.ok() && issued.ok());
  // The same database and root key, opened as another region: every key
  // above the data is bound to eu-west-1.
  auto us = Make("us-east-1");
  EXPECT_FALSE(us->Open("acme", alice_, "orders/1", sealed->ciphertext).ok());
  EXPECT_FALSE(us->UnwrapDataKey("acme", alice_, issued->wrapped).ok());
  // And a region with its own keys for the same tenant and subject.
  auto other_kv = NewMemoryKvStore();
  KeyringOptions o;
  o.region = "us-east-1";
  auto separate = Keyring::Open(other_kv.get(), root_, &clock_, o);
  ASSERT_TRUE(separate.ok());
  ASSERT_TRUE((*separate)->Seal("acme", alice_, "orders/1", "x").ok());
  EXPECT_EQ((*separate)->Open("acme", alice_, "orders/1", sealed->ciphertext).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ((*separate)->UnwrapDataKey("acme", alice_, issued->wrapped).status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(KeyringTest, TamperedCiphertextTagNonceOrHeaderFails) {
  auto sealed = ring_->Seal("acme", alice_, "orders/1", "a record of some length");
  ASSERT_TRUE(sealed.ok());
  const std::string& ct = sealed->ciphertext;
  const size_t header = 2 + 4 + kKeyIdBytes;
  for (size_t pos : {header, header + kAeadNonceBytes - 1, header + kAeadNonceBytes + 3, ct.size() - 1,
                     ct.size() - kAeadTagBytes, size_t{6}, size_t{6 + kKeyIdBytes - 1}}) {
    std::string t = ct;
    t[pos] ^= 0x01;
    auto r = ring_->Open("acme", alice_, "orders/1", t);
    EXPECT_FALSE(r.ok()) << "byte " << pos;
  }
  EXPECT_EQ(ring_->Open("acme", alice_, "orders/1", ct.substr(0, ct.size() - 1)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(ring_->Open("acme", alice_, "orders/1", ct.substr(0, header)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ring_->Open("acme", alice_, "orders/1", "").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KeyringTest, WrappedDataKeyIsBoundToTenantSubjectAndBytes) {
  auto issued = ring_->IssueDataKey("acme", alice_);
  ASSERT_TRUE(issued.ok());
  ASSERT_TRUE(ring_->IssueDataKey("globex", alice_).ok());
  ASSERT_TRUE(ring_->IssueDataKey("acme", bob_).ok());
  EXPECT_EQ(ring_->UnwrapDataKey("globex", alice_, issued->wrapped).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ring_->UnwrapDataKey("acme", bob_, issued->wrapped).status().code(), StatusCode::kPermissionDenied);
  for (size_t pos = 2; pos < issued->wrapped.size(); pos += 7) {
    std::string t = issued->wrapped;
    t[pos] ^= 0x80;
    EXPECT_FALSE(ring_->UnwrapDataKey("acme", alice_, t).ok()) << "byte " << pos;
  }
  EXPECT_EQ(ring_->UnwrapDataKey("acme", alice_, "short").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KeyringTest, BadTenantOrPseudonymIsRefused) {
  EXPECT_EQ(ring_->IssueDataKey("a/b", alice_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ring_->IssueDataKey("", alice_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ring_->IssueDataKey("acme", "alice").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ring_->Seal("acme", alice_, "", "x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KeyringTest, RotationKeepsOldDataReadableAndRewrapMovesEveryKey) {
  auto sealed = ring_->Seal("acme", alice_, "orders/1", "before rotation");
  auto issued = ring_->IssueDataKey("acme", bob_);
  ASSERT_TRUE(sealed.ok() && issued.ok());
  auto v2 = ring_->Rotate("acme", Commit());
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(*v2, 2u);
  auto info = ring_->Info("acme");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->rewrap_active);
  EXPECT_EQ(info->pending, 2u);
  // Old data reads before the rewrap...
  EXPECT_EQ(*ring_->Open("acme", alice_, "orders/1", sealed->ciphertext), "before rotation");
  // ...a version still in use cannot be retired...
  EXPECT_EQ(ring_->RetireBelow("acme", 2, Commit()).status().code(), StatusCode::kFailedPrecondition);
  auto step = ring_->RewrapStep("acme", Commit());
  ASSERT_TRUE(step.ok()) << step.status().ToString();
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->rewrapped, 2u);
  info = ring_->Info("acme");
  EXPECT_FALSE(info->rewrap_active);
  EXPECT_EQ(info->pending, 0u);
  // ...and after the rewrap and retirement of version 1 everything still reads.
  ASSERT_TRUE(ring_->RetireBelow("acme", 2, Commit()).ok());
  info = ring_->Info("acme");
  EXPECT_EQ(info->min_decryption_version, 2u);
  EXPECT_EQ(info->versions, std::vector<uint32_t>{2});
  auto fresh = Make("eu-west-1");  // no cached KEKs
  EXPECT_EQ(*fresh->Open("acme", alice_, "orders/1", sealed->ciphertext), "before rotation");
  auto back = fresh->UnwrapDataKey("acme", bob_, issued->wrapped);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(Reveal(back->plaintext), Reveal(issued->plaintext));
  EXPECT_FALSE(kv_->Get("keys", std::string("t/acme/v/") + std::string("\0\0\0\1", 4))->has_value());
  EXPECT_EQ(ring_->RetireBelow("acme", 3, Commit()).status().code(), StatusCode::kFailedPrecondition);  // beyond current
}

TEST_F(KeyringTest, RewrapInterruptedHalfwayResumesAfterRestartAndLosesNothing) {
  ring_ = Make("eu-west-1", /*batch=*/10);
  std::vector<std::string> ciphertexts;
  for (int i = 0; i < 95; ++i) {
    auto s = ring_->Seal("acme", Pseudonym("s" + std::to_string(i)), "r", "record " + std::to_string(i));
    ASSERT_TRUE(s.ok());
    ciphertexts.push_back(s->ciphertext);
  }
  ASSERT_TRUE(ring_->Rotate("acme", Commit()).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring_->RewrapStep("acme", Commit()).ok());
  EXPECT_EQ(ring_->Info("acme")->pending, 55u);
  failing_->fail_ = true;  // the disk dies in the middle of the fifth batch
  EXPECT_FALSE(ring_->RewrapStep("acme", Commit()).ok());
  ring_.reset();  // the process goes away
  failing_->fail_ = false;

  auto restarted = Make("eu-west-1", 10);
  auto pending = restarted->TenantsWithPendingRewrap();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(*pending, std::vector<std::string>{"acme"});
  EXPECT_EQ(restarted->Info("acme")->rewrapped, 40u);
  int steps = 0;
  for (;; ++steps) {
    auto step = restarted->RewrapStep("acme", Commit());
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    if (step->done) break;
    ASSERT_LT(steps, 20);
  }
  EXPECT_EQ(steps, 5);  // 55 left in batches of 10: the sixth call finds the end
  auto info = restarted->Info("acme");
  EXPECT_EQ(info->pending, 0u);
  EXPECT_EQ(info->rewrapped, 95u);
  EXPECT_TRUE(restarted->TenantsWithPendingRewrap()->empty());
  ASSERT_TRUE(restarted->RetireBelow("acme", 2, Commit()).ok());
  for (int i = 0; i < 95; ++i) {
    auto r = restarted->Open("acme", Pseudonym("s" + std::to_string(i)), "r", ciphertexts[i]);
    ASSERT_TRUE(r.ok()) << i << " " << r.status().ToString();
    EXPECT_EQ(*r, "record " + std::to_string(i));
  }
}

TEST_F(KeyringTest, AfterShreddingEveryPathSaysErased) {
  auto sealed = ring_->Seal("acme", alice_, "orders/1", "to be forgotten");
  auto issued = ring_->IssueDataKey("acme", alice_);
  ASSERT_TRUE(sealed.ok() && issued.ok());
  auto shredded = ring_->Shred("acme", alice_, Commit());
  ASSERT_TRUE(shredded.ok()) << shredded.status().ToString();
  EXPECT_EQ(*shredded, sealed->key_id);
  auto open = ring_->Open("acme", alice_, "orders/1", sealed->ciphertext);
  EXPECT_EQ(open.status().code(), StatusCode::kErased) << open.status().ToString();
  EXPECT_NE(open.status().message().find("erased"), std::string::npos);
  EXPECT_EQ(ring_->UnwrapDataKey("acme", alice_, issued->wrapped).status().code(), StatusCode::kErased);
  EXPECT_EQ(ring_->Shred("acme", alice_, Commit()).status().code(), StatusCode::kNotFound);
  auto fresh = Make("eu-west-1");
  EXPECT_EQ(fresh->Open("acme", alice_, "orders/1", sealed->ciphertext).status().code(), StatusCode::kErased);
  // New data for the same subject gets a new key; the old data stays erased.
  auto again = ring_->IssueDataKey("acme", alice_);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->subject_key_created);
  EXPECT_EQ(ring_->UnwrapDataKey("acme", alice_, issued->wrapped).status().code(), StatusCode::kErased);
  EXPECT_EQ(ring_->Open("acme", alice_, "orders/1", sealed->ciphertext).status().code(), StatusCode::kErased);
  EXPECT_TRUE(ring_->UnwrapDataKey("acme", alice_, again->wrapped).ok());
  // Other subjects are untouched.
  auto bob = ring_->Seal("acme", bob_, "orders/1", "kept");
  EXPECT_EQ(*ring_->Open("acme", bob_, "orders/1", bob->ciphertext), "kept");
}

// A new subject's key, and a new tenant's KEK, are written without a sync
// of their own: they are made on HTTP threads (sealing an audit event,
// issuing a data key), where a sync per new subject held up every other
// request of the thread. They become durable with the store's next sync,
// which every acknowledged use waits for (the audit entry that seals under
// the key or announces the data key): a crash before it loses them together
// with that use, one after it keeps them.
TEST_F(KeyringTest, ANewSubjectKeyIsWrittenWithoutASyncAndIsDurableWithTheNextOne) {
  auto kv = NewMemoryKvStore();
  FaultyKvStore journaled(kv.get(), /*journal=*/true);
  KeyringOptions o;
  o.region = "eu-west-1";
  auto ring = Keyring::Open(&journaled, root_, &clock_, o);
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  const int synced_before = journaled.synced_writes_.load();
  auto sealed = (*ring)->Seal("fresh", alice_, "r1", "hello");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_TRUE(sealed->subject_key_created);
  auto issued = (*ring)->IssueDataKey("fresh", bob_);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_EQ(journaled.synced_writes_.load(), synced_before);
  EXPECT_EQ(journaled.syncs_.load(), 0);

  auto Reopen = [&](KvStore* store) {
    auto r = Keyring::Open(store, root_, &clock_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  };
  {  // A crash now: neither key was used in anything acknowledged, and both are gone.
    auto lost = journaled.Recover();
    ASSERT_NE(lost, nullptr);
    auto after = Reopen(lost.get());
    ASSERT_NE(after, nullptr);
    EXPECT_FALSE(after->Open("fresh", alice_, "r1", sealed->ciphertext).ok());
    EXPECT_FALSE(after->UnwrapDataKey("fresh", bob_, issued->wrapped).ok());
  }
  ASSERT_TRUE(journaled.Sync().ok());  // the ledger's sync of the entries that use them
  auto kept = journaled.Recover();
  ASSERT_NE(kept, nullptr);
  auto after = Reopen(kept.get());
  ASSERT_NE(after, nullptr);
  auto plain = after->Open("fresh", alice_, "r1", sealed->ciphertext);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(*plain, "hello");
  auto back = after->UnwrapDataKey("fresh", bob_, issued->wrapped);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(Reveal(back->plaintext), Reveal(issued->plaintext));
}

TEST_F(KeyringTest, FailedWriteCreatesNoKey) {
  failing_->fail_ = true;
  EXPECT_FALSE(ring_->IssueDataKey("acme", alice_).ok());
  failing_->fail_ = false;
  EXPECT_EQ(ring_->Info("acme").status().code(), StatusCode::kNotFound);
}

TEST_F(KeyringTest, AKeyChangeIsStoredOnlyThroughItsCommit) {
  auto sealed = ring_->Seal("acme", alice_, "orders/1", "kept");
  ASSERT_TRUE(sealed.ok());
  // Refused by its commit (the ledger takes no entry), a change leaves the
  // keys as they were.
  refuse_commits_ = true;
  EXPECT_EQ(ring_->Shred("acme", alice_, Commit()).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(*ring_->Open("acme", alice_, "orders/1", sealed->ciphertext), "kept");
  EXPECT_EQ(ring_->Rotate("acme", Commit()).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(ring_->Info("acme")->current_version, 1u);
  EXPECT_FALSE(ring_->Info("acme")->rewrap_active);
  EXPECT_EQ(ring_->Rotate("globex", Commit()).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(ring_->Info("globex").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(committed_.empty());

  refuse_commits_ = false;
  auto v2 = ring_->Rotate("acme", Commit());
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  ASSERT_EQ(committed_.size(), 1u);
  EXPECT_EQ(committed_.back().version, 2u);

  // The step that finishes a rewrap is committed with it; refused, the
  // rewrap stays pending and the next step does it again.
  refuse_commits_ = true;
  EXPECT_EQ(ring_->RewrapStep("acme", Commit()).status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(ring_->Info("acme")->rewrap_active);
  EXPECT_EQ(ring_->Info("acme")->pending, 1u);
  refuse_commits_ = false;
  auto step = ring_->RewrapStep("acme", Commit());
  ASSERT_TRUE(step.ok()) << step.status().ToString();
  EXPECT_TRUE(step->done);
  EXPECT_TRUE(step->finished_now);
  ASSERT_EQ(committed_.size(), 2u);
  EXPECT_EQ(committed_.back().version, 2u);
  EXPECT_EQ(committed_.back().rewrapped, 1u);
  auto idle = ring_->RewrapStep("acme", Commit());  // nothing pending: nothing to commit
  ASSERT_TRUE(idle.ok());
  EXPECT_TRUE(idle->done);
  EXPECT_FALSE(idle->finished_now);
  EXPECT_EQ(committed_.size(), 2u);

  refuse_commits_ = true;
  EXPECT_EQ(ring_->RetireBelow("acme", 2, Commit()).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(ring_->Info("acme")->min_decryption_version, 1u);
  refuse_commits_ = false;
  auto retired = ring_->RetireBelow("acme", 2, Commit());
  ASSERT_TRUE(retired.ok()) << retired.status().ToString();
  EXPECT_TRUE(*retired);
  EXPECT_EQ(committed_.back().version, 2u);
  auto again = ring_->RetireBelow("acme", 2, Commit());  // retired already: no change, no commit
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(committed_.size(), 3u);

  auto shredded = ring_->Shred("acme", alice_, Commit());
  ASSERT_TRUE(shredded.ok()) << shredded.status().ToString();
  EXPECT_EQ(committed_.back().key_id, *shredded);
  EXPECT_EQ(ring_->Open("acme", alice_, "orders/1", sealed->ciphertext).status().code(), StatusCode::kErased);
}

}  // namespace
}  // namespace geoledger::crypto
