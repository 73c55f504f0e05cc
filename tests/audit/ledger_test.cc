#include "audit/ledger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "audit/export.h"
#include "audit/internal/ledger_keys.h"
#include "common/encoding.h"
#include "crypto/hash.h"
#include "geoledger/v1/audit.pb.h"
#include "tests/common/faulty_kv_store.h"

namespace geoledger::audit {
namespace {

// ---- a reference Merkle tree, straight from RFC 9162 §2.1 --------------------
std::string H(std::string_view s) { return std::string(crypto::AsView(crypto::Sha256(s))); }
std::string Node(const std::string& l, const std::string& r) { return H("\x01" + l + r); }
uint64_t K(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
std::string Mth(const std::vector<std::string>& leaves, uint64_t b, uint64_t e) {
  if (e - b == 0) return H("");
  if (e - b == 1) return leaves[b];
  uint64_t k = K(e - b);
  return Node(Mth(leaves, b, b + k), Mth(leaves, b + k, e));
}
std::vector<std::string> Path(const std::vector<std::string>& l, uint64_t m, uint64_t b, uint64_t e) {
  if (e - b <= 1) return {};
  uint64_t k = K(e - b);
  std::vector<std::string> p;
  if (m < k) {
    p = Path(l, m, b, b + k);
    p.push_back(Mth(l, b + k, e));
  } else {
    p = Path(l, m - k, b + k, e);
    p.push_back(Mth(l, b, b + k));
  }
  return p;
}
std::vector<std::string> SubProof(const std::vector<std::string>& l, uint64_t m, uint64_t b, uint64_t e, bool whole) {
  uint64_t n = e - b;
  if (m == n) return whole ? std::vector<std::string>{} : std::vector<std::string>{Mth(l, b, e)};
  uint64_t k = K(n);
  std::vector<std::string> p;
  if (m <= k) {
    p = SubProof(l, m, b, b + k, whole);
    p.push_back(Mth(l, b + k, e));
  } else {
    p = SubProof(l, m - k, b + k, e, false);
    p.push_back(Mth(l, b, b + k));
  }
  return p;
}

AuditEvent Event(int i) {
  AuditEvent e;
  e.tenant = "acme";
  e.actor = "test";
  e.action = "test.event";
  e.resource = "r/" + std::to_string(i);
  e.outcome = "ok";
  e.details = {{"n", std::to_string(i)}, {"a", "b"}};
  return e;
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = NewMemoryKvStore();
    faulty_ = std::make_unique<FaultyKvStore>(kv_.get());
    signer_.emplace(std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32))));
  }
  std::unique_ptr<Ledger> Open(Ledger::Options o = {}) {
    if (o.region.empty()) o.region = "eu-west-1";
    auto l = Ledger::Open(faulty_.get(), &*signer_, &SystemClock::Get(), o);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
  }
  std::vector<std::string> Leaves(const Ledger& l) {
    std::vector<std::string> out;
    auto entries = l.Entries(0, l.size());
    EXPECT_TRUE(entries.ok());
    if (entries.ok())
      for (auto& e : *entries) out.push_back(e.leaf_hash);
    return out;
  }
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<FaultyKvStore> faulty_;
  std::optional<crypto::Ed25519Signer> signer_;
};

TEST_F(LedgerTest, AppendsAreIndexedChainedAndCheckpointed) {
  auto l = Open();
  for (int b = 0; b < 5; ++b) {
    std::vector<AuditEvent> events;
    for (int i = 0; i < 7; ++i) events.push_back(Event(b * 7 + i));
    auto idx = l->Append(events);
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    for (int i = 0; i < 7; ++i) EXPECT_EQ((*idx)[i], static_cast<uint64_t>(b * 7 + i));
  }
  ASSERT_TRUE(l->Close().ok());
  auto cp = OpenCheckpoint(l->LatestCheckpoint(), "geoledger/eu-west-1", signer_->public_key());
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  EXPECT_EQ(cp->size, 35u);
  auto leaves = Leaves(*l);
  EXPECT_EQ(cp->root_hash, Mth(leaves, 0, 35));
  std::string prev(32, '\0');
  auto entries = l->Entries(0, 35);
  ASSERT_TRUE(entries.ok());
  for (auto& e : *entries) {
    v1::AuditEntry entry;
    ASSERT_TRUE(entry.ParseFromString(e.bytes));
    EXPECT_EQ(entry.index(), e.index);
    EXPECT_EQ(entry.prev_entry_hash(), prev);
    EXPECT_EQ(e.leaf_hash, H(std::string(1, '\0') + e.bytes));
    prev = H(e.bytes);
  }
}

// Checkpoints follow every checkpoint_every_entries entries, and every
// checkpoint_every_bytes of them, however fast entries come; an export
// without `end` stops at the furthest checkpoint within its bounds. So a log
// of any size exports whole, export by export, each verifying on its own.
TEST_F(LedgerTest, ALogExportsWholeExportByExportEachEndingAtACheckpoint) {
  Ledger::Options o;
  o.checkpoint_interval = std::chrono::hours(1);  // only the bounds below sign
  o.checkpoint_every_entries = 40;
  o.checkpoint_every_bytes = 6000;
  o.max_export_bytes = 12000;
  auto l = Open(o);
  for (int b = 0; b < 30; ++b) {
    std::vector<AuditEvent> events;
    for (int i = 0; i < 10; ++i) events.push_back(Event(b * 10 + i));
    ASSERT_TRUE(l->Append(events).ok());
  }
  ASSERT_TRUE(l->Close().ok());
  auto entries = l->Entries(0, 300);
  ASSERT_TRUE(entries.ok());
  std::vector<uint64_t> checkpoints;
  ASSERT_TRUE(kv_->Scan("audit", "c", [&](std::string_view key, std::string_view) {
                   if (key.size() == 9) checkpoints.push_back(internal::FromBigEndian64(key.substr(1)));
                   return true;
                 }).ok());
  ASSERT_GE(checkpoints.size(), 2u);
  EXPECT_EQ(checkpoints.back(), 300u);
  for (size_t i = 1; i < checkpoints.size(); ++i) {
    uint64_t bytes = 0;
    for (uint64_t k = checkpoints[i - 1]; k < checkpoints[i]; ++k) bytes += (*entries)[k].bytes.size();
    // One append (10 entries) past either bound at most.
    EXPECT_LE(checkpoints[i] - checkpoints[i - 1], 40u + 9u) << i;
    EXPECT_LT(bytes, 6000u + 10 * (*entries)[0].bytes.size() * 2) << i;
  }

  uint64_t start = 0;
  int exports = 0;
  while (start < 300) {
    auto exported = l->Export(start, std::nullopt);
    ASSERT_TRUE(exported.ok()) << start << ": " << exported.status().ToString();
    std::istringstream in(*exported);
    auto verified = VerifyExport(in, signer_->public_key(), "geoledger/eu-west-1");
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    ASSERT_GT(verified->tree_size, start);
    uint64_t bytes = 0;
    for (uint64_t k = start; k < verified->tree_size; ++k) bytes += (*entries)[k].bytes.size();
    EXPECT_LE(bytes, 12000u);
    EXPECT_NE(std::find(checkpoints.begin(), checkpoints.end(), verified->tree_size), checkpoints.end());
    start = verified->tree_size;
    ++exports;
    ASSERT_LT(exports, 100);
  }
  EXPECT_GT(exports, 1);
  // Given an end beyond the byte bound, an export is refused and names the
  // furthest checkpoint that fits.
  auto whole = l->Export(0, 300);
  ASSERT_EQ(whole.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(whole.status().message().find("the furthest checkpoint within it is"), std::string::npos)
      << whole.status().ToString();
  EXPECT_EQ(l->Export(301, std::nullopt).status().code(), StatusCode::kInvalidArgument);
}

// A write takes queued appends up to max_batch_bytes of event bytes (a
// single larger append still goes whole), so that the checkpoint due after
// checkpoint_every_bytes follows closely.
TEST_F(LedgerTest, AWriteTakesQueuedAppendsUpToItsByteBound) {
  Ledger::Options o;
  o.checkpoint_interval = std::chrono::hours(1);
  o.max_batch_bytes = 2000;
  auto l = Open(o);
  ASSERT_TRUE(l->Append({Event(0)}).ok());
  faulty_->block_ = true;  // the next write waits in the store
  std::atomic<int> done{0};
  auto count = [&done](StatusOr<std::vector<uint64_t>> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    done++;
  };
  ASSERT_TRUE(l->AppendAsync({Event(1)}, count).ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!faulty_->blocked_.load() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(faulty_->blocked_.load());
  for (int i = 0; i < 10; ++i) {
    AuditEvent big = Event(2 + i);
    big.details["pad"] = std::string(500, 'x');  // about 560 bytes: three fit in 2000
    ASSERT_TRUE(l->AppendAsync({big}, count).ok());
  }
  AuditEvent huge = Event(12);
  for (int k = 0; k < 5; ++k) huge.details["pad" + std::to_string(k)] = std::string(1000, 'y');  // alone over the bound
  ASSERT_TRUE(l->AppendAsync({huge}, count).ok());
  const uint64_t before = l->Stats().batches;
  faulty_->block_ = false;
  while (done.load() < 12 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(done.load(), 12);
  // The blocked write, four of at most three appends each, and the large one
  // alone: taken together they would have been two.
  EXPECT_GE(l->Stats().batches - before, 6u);
  EXPECT_EQ(l->size(), 13u);
}

TEST_F(LedgerTest, ProofsMatchTheReferenceForEverySizeUpTo40) {
  auto l = Open();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(l->Append({Event(i)}).ok());
  auto leaves = Leaves(*l);
  for (uint64_t n = 1; n <= 40; ++n) {
    EXPECT_EQ(*l->RootAt(n), Mth(leaves, 0, n)) << n;
    for (uint64_t m = 0; m < n; ++m) EXPECT_EQ(*l->InclusionProof(m, n), Path(leaves, m, 0, n)) << m << "," << n;
    for (uint64_t m = 1; m <= n; ++m)
      EXPECT_EQ(*l->ConsistencyProof(m, n), SubProof(leaves, m, 0, n, true)) << m << "," << n;
  }
  EXPECT_FALSE(l->InclusionProof(40, 40).ok());
  EXPECT_FALSE(l->InclusionProof(0, 41).ok());
  EXPECT_FALSE(l->ConsistencyProof(5, 4).ok());
}

TEST_F(LedgerTest, ConcurrentAppendersAreGroupCommitted) {
  auto l = Open();
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<uint64_t> seen;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        auto idx = l->Append({Event(t * 1000 + i)});
        ASSERT_TRUE(idx.ok());
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(seen.insert((*idx)[0]).second);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), 800u);
  EXPECT_EQ(*seen.rbegin(), 799u);
  EXPECT_LE(faulty_->writes_.load(), 800);
}

TEST_F(LedgerTest, ReopenRestoresTheHeadAndKeepsAppending) {
  {
    auto l = Open();
    for (int i = 0; i < 13; ++i) ASSERT_TRUE(l->Append({Event(i)}).ok());
  }
  auto l = Open();
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->size(), 13u);
  EXPECT_EQ((*l->Append({Event(13)}))[0], 13u);
  ASSERT_TRUE(l->Close().ok());
  auto leaves = Leaves(*l);
  auto cp = OpenCheckpoint(l->LatestCheckpoint(), "geoledger/eu-west-1", signer_->public_key());
  EXPECT_EQ(cp->root_hash, Mth(leaves, 0, 14));
}

TEST_F(LedgerTest, AFailedSyncIsNeverAcknowledged) {
  auto l = Open();
  ASSERT_TRUE(l->Append({Event(0)}).ok());
  faulty_->fail_ = true;
  auto r = l->Append({Event(1)});
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(l->healthy());
  faulty_->fail_ = false;
  EXPECT_EQ(l->Append({Event(2)}).status().code(), StatusCode::kUnavailable);  // stays failed
  l.reset();
  auto reopened = Open();
  EXPECT_EQ(reopened->size(), 1u);  // nothing unacknowledged became durable
}

TEST_F(LedgerTest, FullQueuePushesBackWithoutDropping) {
  Ledger::Options o;
  o.max_queued_events = 4;
  auto l = Open(o);
  faulty_->block_ = true;
  std::vector<std::thread> writers;
  std::atomic<int> ok{0}, refused{0};
  for (int i = 0; i < 12; ++i)
    writers.emplace_back([&, i] {
      auto r = l->Append({Event(i)});
      if (r.ok()) ok++;
      else if (r.status().code() == StatusCode::kUnavailable) refused++;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the queue fill; not a timing assertion
  faulty_->block_ = false;
  for (auto& t : writers) t.join();
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(ok.load() + refused.load(), 12);
  EXPECT_EQ(l->size(), static_cast<uint64_t>(ok.load()));
  EXPECT_GT(l->Stats().rejected, 0u);
}

TEST_F(LedgerTest, TamperedStoredCheckpointOrTreeFailsOpen) {
  {
    auto l = Open();
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(l->Append({Event(i)}).ok());
  }
  auto note = **kv_->Get("audit", "checkpoint");
  KvBatch b;
  std::string forged = note;
  forged[forged.find('\n') + 1] = '9';  // size line
  b.Put("audit", "checkpoint", forged);
  ASSERT_TRUE(kv_->Write(b, true).ok());
  EXPECT_EQ(Ledger::Open(faulty_.get(), &*signer_, &SystemClock::Get(), {"eu-west-1"}).status().code(),
            StatusCode::kDataLoss);
}

// The ledger's UTF-8 check must be at least as strict as protobuf's: any
// text it lets into an entry has to parse again.
TEST(LedgerTextTest, TextTheLedgerAcceptsAlwaysParsesBackFromAnEntry) {
  std::mt19937 rng(20261130);
  const unsigned char interesting[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                       0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string text(1 + rng() % 6, '\0');
    for (char& c : text) c = static_cast<char>(interesting[rng() % sizeof interesting]);
    if (!IsValidUtf8(text)) continue;
    ++accepted;
    v1::AuditEntry entry;
    entry.add_details()->set_value(text);
    v1::AuditEntry back;
    ASSERT_TRUE(back.ParseFromString(entry.SerializeAsString())) << testing::PrintToString(text);
    ASSERT_EQ(back.details(0).value(), text);
  }
  EXPECT_GT(accepted, 1000);  // the generator does reach valid multi-byte text
}

TEST_F(LedgerTest, MalformedEventsAreRefusedAndChangeNothing) {
  auto l = Open();
  EXPECT_EQ(l->Append({}).status().code(), StatusCode::kInvalidArgument);
  AuditEvent no_action = Event(0);
  no_action.action.clear();
  EXPECT_EQ(l->Append({Event(1), no_action}).status().code(), StatusCode::kInvalidArgument);
  AuditEvent half_sealed = Event(0);
  half_sealed.sealed_key_id = "k1";
  EXPECT_EQ(l->Append({half_sealed}).status().code(), StatusCode::kInvalidArgument);
  // Text that is not UTF-8 would be written but never parse again.
  AuditEvent bad_detail = Event(0);
  bad_detail.details["category"] = "pers\xffonal";
  EXPECT_EQ(l->Append({Event(1), bad_detail}).status().code(), StatusCode::kInvalidArgument);
  AuditEvent bad_resource = Event(0);
  bad_resource.resource = "tenant/\xc0\xaf";
  EXPECT_EQ(l->Append({bad_resource}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l->size(), 0u);
  AuditEvent unicode = Event(0);
  unicode.details["city"] = "Zürich";
  ASSERT_TRUE(l->Append({unicode}).ok());
  EXPECT_TRUE(l->Verify().ok());
}

}  // namespace
}  // namespace geoledger::audit

namespace geoledger::audit {
namespace {

TEST_F(LedgerTest, AppendAsyncCallsBackOnceDurableInOrder) {
  auto l = Open();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<uint64_t>> got;  // guarded by mu
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(l->AppendAsync({Event(2 * i), Event(2 * i + 1)}, [&](StatusOr<std::vector<uint64_t>> r) {
                   ASSERT_TRUE(r.ok());
                   EXPECT_GE(l->size(), r->back() + 1);  // durable (and visible) before the callback
                   std::lock_guard<std::mutex> lock(mu);
                   got.push_back(*r);
                   cv.notify_all();
                 }).ok());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return got.size() == 3; }));
  EXPECT_EQ(got, (std::vector<std::vector<uint64_t>>{{0, 1}, {2, 3}, {4, 5}}));
}

// An append's attached writes go to the store in the write that holds its
// entries, told the index of the first; a failed write stores neither.
TEST_F(LedgerTest, AttachedWritesShareTheEntriesWrite) {
  Ledger::Options o;
  o.checkpoint_interval = std::chrono::hours(1);  // no checkpoint-only write in between
  auto l = Open(o);
  ASSERT_TRUE(l->Append({Event(0)}).ok());
  std::vector<uint64_t> told;
  auto attach = [&told](uint64_t first, KvBatch& batch) {
    told.push_back(first);
    batch.Put("residency", "k" + std::to_string(first), "v");
  };
  const int writes_before = faulty_->writes_.load();
  auto r = l->Append({Event(1), Event(2)}, attach);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(told, (std::vector<uint64_t>{1}));
  EXPECT_EQ(faulty_->writes_.load(), writes_before + 1);  // one write for the entries and theirs
  auto stored = kv_->Get("residency", "k1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->value_or(""), "v");

  faulty_->fail_ = true;
  EXPECT_EQ(l->Append({Event(3)}, attach).status().code(), StatusCode::kUnavailable);
  faulty_->fail_ = false;
  EXPECT_EQ(told.size(), 2u);  // it was called, and its write failed with the entry
  auto absent = kv_->Get("residency", "k3");
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
  l.reset();
  EXPECT_EQ(Open(o)->size(), 3u);
  // An append refused before it is queued never calls it.
  auto closed = Open();
  ASSERT_TRUE(closed->Close().ok());
  EXPECT_EQ(closed->Append({Event(4)}, attach).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(told.size(), 2u);
}

TEST_F(LedgerTest, AppendAsyncRefusesAtOnceWithoutCallingBack) {
  Ledger::Options o;
  o.max_queued_events = 2;
  auto l = Open(o);
  bool called = false;
  auto cb = [&](StatusOr<std::vector<uint64_t>>) { called = true; };
  EXPECT_EQ(l->AppendAsync({}, cb).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l->AppendAsync({Event(0), Event(1), Event(2)}, cb).code(), StatusCode::kUnavailable);
  ASSERT_TRUE(l->Close().ok());
  EXPECT_EQ(l->AppendAsync({Event(0)}, cb).code(), StatusCode::kUnavailable);
  EXPECT_FALSE(called);
}

// The writer writes a batch and goes on; the syncer makes it durable. Until
// then nothing of it is counted, read, proven or acknowledged.
TEST_F(LedgerTest, AWrittenBatchIsInvisibleUntilItsSyncAndAFailedSyncIsNeverAcknowledged) {
  auto l = Open();
  ASSERT_TRUE(l->Append({Event(0), Event(1)}).ok());
  faulty_->block_sync_ = true;
  const int writes_before = faulty_->writes_.load();
  std::promise<StatusOr<std::vector<uint64_t>>> done;
  ASSERT_TRUE(l->AppendAsync({Event(2)}, [&](StatusOr<std::vector<uint64_t>> r) { done.set_value(std::move(r)); }).ok());
  for (int i = 0; i < 5000 && faulty_->writes_.load() == writes_before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_GT(faulty_->writes_.load(), writes_before) << "the writer did not write the batch";
  auto pending = done.get_future();
  EXPECT_EQ(pending.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(l->size(), 2u);
  EXPECT_FALSE(l->Entries(0, 3).ok());
  EXPECT_FALSE(l->InclusionProof(2, 3).ok());
  // The sync fails: the written entry is never acknowledged nor counted.
  faulty_->fail_sync_ = true;
  faulty_->block_sync_ = false;
  auto r = pending.get();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(l->size(), 2u);
  EXPECT_FALSE(l->healthy());
  EXPECT_EQ(l->Append({Event(3)}).status().code(), StatusCode::kUnavailable);
  faulty_->fail_sync_ = false;
}

TEST_F(LedgerTest, OneSyncCoversEveryBatchWrittenWhileTheLastOneSynced) {
  auto l = Open();
  ASSERT_TRUE(l->Append({Event(0)}).ok());
  faulty_->block_sync_ = true;
  std::atomic<int> acknowledged{0};
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(l->AppendAsync({Event(i)}, [&](StatusOr<std::vector<uint64_t>> r) {
                   if (r.ok()) acknowledged++;
                 }).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let the writer take them one by one
  }
  EXPECT_EQ(acknowledged.load(), 0);
  const int syncs_before = faulty_->syncs_.load();
  faulty_->block_sync_ = false;
  for (int i = 0; i < 5000 && acknowledged.load() < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(acknowledged.load(), 20);
  EXPECT_EQ(l->size(), 21u);
  EXPECT_LE(faulty_->syncs_.load() - syncs_before, 3) << "the batches were not synced together";
  ASSERT_TRUE(l->Close().ok());
  auto cp = OpenCheckpoint(l->LatestCheckpoint(), "geoledger/eu-west-1", signer_->public_key());
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(cp->size, 21u);
  EXPECT_EQ(cp->root_hash, Mth(Leaves(*l), 0, 21));
}

TEST_F(LedgerTest, AppendAsyncReportsAFailedWriteAndCloseDrainsTheQueue) {
  auto l = Open();
  faulty_->fail_ = true;
  std::promise<Status> failed;
  ASSERT_TRUE(l->AppendAsync({Event(0)}, [&](StatusOr<std::vector<uint64_t>> r) { failed.set_value(r.status()); }).ok());
  EXPECT_EQ(failed.get_future().get().code(), StatusCode::kUnavailable);
  faulty_->fail_ = false;

  l.reset();
  auto l2 = Open();
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(l2->AppendAsync({Event(i)}, [&](StatusOr<std::vector<uint64_t>> r) { done += r.ok(); }).ok());
  ASSERT_TRUE(l2->Close().ok());  // commits everything queued, calling back first
  EXPECT_EQ(done.load(), 20);
  EXPECT_EQ(l2->size(), 20u);
}

// One event appended lazily (Durability::kLazy).
Status AppendLazy(Ledger& l, int i, Ledger::AppendCallback done) {
  return l.AppendAsync({Event(i)}, std::move(done), Durability::kLazy);
}

// Lazy appends (async decision audit) wait for each other; a prompt one takes
// them all along in one write and one sync, and is not held back by them.
TEST_F(LedgerTest, LazyAppendsShareOneWriteAndOneSyncWithThePromptOneThatFollows) {
  Ledger::Options o;
  o.lazy_delay = std::chrono::hours(1);
  o.lazy_batch_events = 1000;
  auto l = Open(o);
  const int writes_before = faulty_->writes_.load(), syncs_before = faulty_->syncs_.load();
  std::mutex mu;
  std::vector<uint64_t> acknowledged;
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(AppendLazy(*l, i, [&](StatusOr<std::vector<uint64_t>> r) {
                  ASSERT_TRUE(r.ok());
                  std::lock_guard<std::mutex> lock(mu);
                  acknowledged.push_back(r->at(0));
                }).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(faulty_->writes_.load(), writes_before) << "lazy appends were written without waiting for others";
  auto prompt = l->Append({Event(50)});
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(prompt->at(0), 50u);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(acknowledged.size(), 50u);  // called back before the prompt one, in commit order
    for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(acknowledged[i], i);
  }
  EXPECT_EQ(faulty_->writes_.load() - writes_before, 1);
  EXPECT_EQ(faulty_->syncs_.load() - syncs_before, 1);
  EXPECT_EQ(l->size(), 51u);
}

TEST_F(LedgerTest, AFullBatchOfLazyAppendsGoesAtOnceAndALoneOneAfterTheDelay) {
  Ledger::Options o;
  o.lazy_delay = std::chrono::hours(1);
  o.lazy_batch_events = 8;
  auto l = Open(o);
  std::atomic<int> acknowledged{0};
  std::promise<void> all;
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(AppendLazy(*l, i, [&](StatusOr<std::vector<uint64_t>> r) {
                  if (r.ok() && ++acknowledged == 8) all.set_value();
                }).ok());
  all.get_future().wait();  // hangs (the test times out) if the full batch waited for the delay
  EXPECT_EQ(l->size(), 8u);

  o.lazy_delay = std::chrono::milliseconds(5);
  l.reset();
  l = Open(o);
  std::promise<StatusOr<std::vector<uint64_t>>> alone;
  ASSERT_TRUE(AppendLazy(*l, 8, [&](StatusOr<std::vector<uint64_t>> r) { alone.set_value(std::move(r)); }).ok());
  l->WakeWriter();  // as the caller does once its answer is sent
  auto r = alone.get_future().get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(0), 8u);
}

// A lazy append does not wake the writer itself (WakeWriter does, after the
// caller's answer); a caller that never wakes it still gets its entry
// written by the writer's periodic wake.
TEST_F(LedgerTest, ALazyAppendNobodyWakesTheWriterForIsWrittenByItsPeriodicWake) {
  Ledger::Options o;
  o.lazy_delay = std::chrono::milliseconds(1);
  o.checkpoint_interval = std::chrono::milliseconds(50);
  auto l = Open(o);
  ASSERT_TRUE(l->Append({Event(0)}).ok());
  std::promise<StatusOr<std::vector<uint64_t>>> done;
  ASSERT_TRUE(AppendLazy(*l, 1, [&](StatusOr<std::vector<uint64_t>> r) { done.set_value(std::move(r)); }).ok());
  auto r = done.get_future().get();  // hangs (the test times out) if nothing wakes the writer
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(0), 1u);
}

TEST_F(LedgerTest, CloseWritesAndSyncsLazyAppendsWithoutWaitingForTheDelay) {
  Ledger::Options o;
  o.lazy_delay = std::chrono::hours(1);
  auto l = Open(o);
  std::atomic<int> acknowledged{0};
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(AppendLazy(*l, i, [&](StatusOr<std::vector<uint64_t>> r) { acknowledged += r.ok(); }).ok());
  ASSERT_TRUE(l->Close().ok());  // hangs (the test times out) if it waited for the delay
  EXPECT_EQ(acknowledged.load(), 5);
  EXPECT_EQ(l->size(), 5u);
  auto cp = OpenCheckpoint(l->LatestCheckpoint(), "geoledger/eu-west-1", signer_->public_key());
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(cp->size, 5u);
}

}  // namespace
}  // namespace geoledger::audit
