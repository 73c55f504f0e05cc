// A KvStore for tests that wraps another and fails or stalls its writes and
// syncs on demand, like a disk that dies or hangs, and stalls its scans on
// demand, like a long read (header-only: every *_test.cc is its own
// binary). Reads go straight through. Constructed with `journal`, it also
// keeps every write in order and can tell what a crash would leave
// (Recover), as a write-ahead log that recovers a prefix of its writes.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/kv_store.h"

namespace geoledger {

class FaultyKvStore final : public KvStore {
 public:
  // `inner` must outlive this store.
  // With `journal`, `inner` must start empty (Recover replays from nothing).
  explicit FaultyKvStore(KvStore* inner, bool journal = false) : inner_(inner), journal_(journal) {}
  StatusOr<std::optional<std::string>> Get(std::string_view ns, std::string_view key) const override {
    return inner_->Get(ns, key);
  }
  // Waits while block_ is set (setting blocked_), then fails with kInternal
  // while fail_ is set; otherwise counts the write and passes it on.
  Status Write(const KvBatch& batch, bool sync) override {
    while (block_.load()) {
      blocked_ = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (fail_.load()) return Internal("injected write failure");
    writes_++;
    if (sync) synced_writes_++;
    if (!journal_) return inner_->Write(batch, sync);
    std::lock_guard<std::mutex> lock(journal_mu_);  // the journal's order is the inner store's
    Status st = inner_->Write(batch, sync);
    if (st.ok()) {
      journaled_.push_back(batch);
      if (sync) durable_ = journaled_.size();
    }
    return st;
  }
  // Waits while block_ or block_sync_ is set, then fails with kInternal while
  // fail_ or fail_sync_ is set; otherwise counts the sync and passes it on.
  Status Sync() override {
    while (block_.load() || block_sync_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (fail_.load() || fail_sync_.load()) return Internal("injected fsync failure");
    syncs_++;
    if (!journal_) return inner_->Sync();
    std::lock_guard<std::mutex> lock(journal_mu_);
    Status st = inner_->Sync();
    if (st.ok()) durable_ = journaled_.size();  // every write made before it
    return st;
  }
  // With a journal: a new store holding what a crash now would leave, the
  // writes up to the last synced write or sync, in order.
  std::unique_ptr<KvStore> Recover() const {
    std::lock_guard<std::mutex> lock(journal_mu_);
    auto out = NewMemoryKvStore();
    for (size_t i = 0; i < durable_; ++i)
      if (!out->Write(journaled_[i], /*sync=*/true).ok()) return nullptr;
    return out;
  }
  Status ScanFrom(std::string_view ns, std::string_view prefix, std::string_view start,
                  const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    WaitWhileScansBlocked();
    return inner_->ScanFrom(ns, prefix, start, fn);
  }
  Status ScanBackFrom(std::string_view ns, std::string_view prefix, std::string_view before,
                      const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    WaitWhileScansBlocked();
    return inner_->ScanBackFrom(ns, prefix, before, fn);
  }
  // Snapshots of the inner store whose scans, like this store's, wait while
  // block_scans_ is set (setting scan_blocked_).
  std::unique_ptr<KvSnapshot> Snapshot() const override {
    return std::make_unique<View>(this, inner_->Snapshot());
  }
  // Fails with kInternal while fail_purge_ is set, like a compaction that
  // does not run.
  Status PurgeDeleted(std::string_view ns) override {
    if (fail_purge_.load()) return Internal("injected purge failure");
    return inner_->PurgeDeleted(ns);
  }

  std::atomic<bool> fail_{false}, fail_sync_{false}, block_{false}, block_sync_{false};
  std::atomic<bool> fail_purge_{false};
  std::atomic<bool> blocked_{false};  // a write has waited on block_
  std::atomic<bool> block_scans_{false};
  mutable std::atomic<bool> scan_blocked_{false};  // a scan has waited on block_scans_
  std::atomic<int> writes_{0}, syncs_{0};
  std::atomic<int> synced_writes_{0};  // of writes_, those with sync=true

 private:
  class View final : public KvSnapshot {
   public:
    View(const FaultyKvStore* store, std::unique_ptr<KvSnapshot> inner) : store_(store), inner_(std::move(inner)) {}
    Status ScanFrom(std::string_view ns, std::string_view prefix, std::string_view start,
                    const std::function<bool(std::string_view, std::string_view)>& fn) const override {
      store_->WaitWhileScansBlocked();
      return inner_->ScanFrom(ns, prefix, start, fn);
    }

   private:
    const FaultyKvStore* store_;
    std::unique_ptr<KvSnapshot> inner_;
  };
  void WaitWhileScansBlocked() const {
    while (block_scans_.load()) {
      scan_blocked_ = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  KvStore* inner_;
  const bool journal_;
  mutable std::mutex journal_mu_;
  std::vector<KvBatch> journaled_;  // guarded by journal_mu_
  size_t durable_ = 0;              // guarded by journal_mu_: journaled_[0, durable_) survive a crash
};

}  // namespace geoledger
