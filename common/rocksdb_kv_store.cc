#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "common/kv_store.h"
#include "common/log.h"

namespace geoledger {
namespace {

// RocksDB's warnings and errors, as lines of the service's own log. RocksDB
// would otherwise write them to DIR/db/LOG through a file writer that, in
// the packaged library (built with assertions), aborts the process when it
// is used again after a failed write: on a full disk the store's error
// recovery logs through it and the service crashed instead of refusing
// writes (runbook: "Disk full"). Nothing of RocksDB's is written to the
// data volume's LOG file any more.
class StorageLogger final : public rocksdb::Logger {
 public:
  StorageLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[1024];
    const int n = std::vsnprintf(line, sizeof line, format, ap);
    if (n < 0) return;
    std::string_view text(line, std::min<size_t>(static_cast<size_t>(n), sizeof line - 1));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    log::Write(level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? log::Level::kError : log::Level::kWarn,
               "storage engine", {{"detail", std::string(text)}});
  }
};

class RocksDbKvStore final : public KvStore {
 public:
  RocksDbKvStore(std::unique_ptr<rocksdb::DB> db,
                 std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : db_(std::move(db)), handles_(std::move(handles)) {
    for (auto* h : handles_) by_name_[h->GetName()] = h;
  }

  ~RocksDbKvStore() override {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }

  StatusOr<std::optional<std::string>> Get(std::string_view ns,
                                           std::string_view key) const override {
    auto* cf = Family(ns);
    if (cf == nullptr) return NotFound("kv get: unknown namespace " + std::string(ns));
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return Internal("kv get in " + std::string(ns) + ": " + s.ToString());
    return std::optional<std::string>(std::move(value));
  }

  Status Write(const KvBatch& batch, bool sync) override {
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      auto* cf = Family(op.ns);
      if (cf == nullptr) return NotFound("kv write: unknown namespace " + op.ns);
      rocksdb::Status s = op.is_delete ? wb.Delete(cf, op.key) : wb.Put(cf, op.key, op.value);
      if (!s.ok()) return Internal("kv write: " + s.ToString());
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    rocksdb::Status s = db_->Write(wo, &wb);
    if (!s.ok()) return Internal("kv write: " + s.ToString());
    return Status::Ok();
  }

  Status Sync() override {
    rocksdb::Status s = db_->SyncWAL();
    if (!s.ok()) return Internal("kv sync: " + s.ToString());
    return Status::Ok();
  }

  Status ScanFrom(std::string_view ns, std::string_view prefix, std::string_view start,
                  const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    return ScanAt(nullptr, ns, prefix, start, fn);
  }

  Status ScanBackFrom(std::string_view ns, std::string_view prefix, std::string_view before,
                      const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    auto* cf = Family(ns);
    if (cf == nullptr) return NotFound("kv scan: unknown namespace " + std::string(ns));
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf));
    const std::string bound = BackwardScanBound(prefix, before);
    if (bound.empty()) {
      it->SeekToLast();
    } else {
      it->SeekForPrev(rocksdb::Slice(bound.data(), bound.size()));
      if (it->Valid() && it->key() == rocksdb::Slice(bound.data(), bound.size())) it->Prev();
    }
    for (; it->Valid(); it->Prev()) {
      std::string_view k(it->key().data(), it->key().size());
      if (k.substr(0, prefix.size()) != prefix) break;  // below every key with the prefix
      if (!fn(k, std::string_view(it->value().data(), it->value().size()))) break;
    }
    if (!it->status().ok()) return Internal("kv scan in " + std::string(ns) + ": " + it->status().ToString());
    return Status::Ok();
  }

  std::unique_ptr<KvSnapshot> Snapshot() const override {
    return std::make_unique<View>(this);
  }

  Status PurgeDeleted(std::string_view ns) override {
    auto* cf = Family(ns);
    if (cf == nullptr) return NotFound("kv purge: unknown namespace " + std::string(ns));
    // A compaction keeps every value a live snapshot can see, so a purge
    // under one would report success and leave the deleted values on disk.
    std::unique_lock<std::shared_mutex> no_snapshots(snapshots_mu_);
    // Every family is flushed so that no write-ahead log still holds the old
    // value (a log is kept until every family in it has been flushed).
    rocksdb::FlushOptions fo;
    fo.wait = true;
    rocksdb::Status s = db_->Flush(fo, handles_);
    if (!s.ok()) return Internal("kv purge: flush: " + s.ToString());
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    s = db_->CompactRange(co, cf, nullptr, nullptr);
    if (!s.ok()) return Internal("kv purge: compact " + std::string(ns) + ": " + s.ToString());
    return Status::Ok();
  }

 private:
  // A RocksDB snapshot, released with the view; it holds purges back.
  class View final : public KvSnapshot {
   public:
    explicit View(const RocksDbKvStore* store)
        : store_(store), purges_wait_(store->snapshots_mu_), snapshot_(store->db_->GetSnapshot()) {}
    ~View() override { store_->db_->ReleaseSnapshot(snapshot_); }
    Status ScanFrom(std::string_view ns, std::string_view prefix, std::string_view start,
                    const std::function<bool(std::string_view, std::string_view)>& fn) const override {
      return store_->ScanAt(snapshot_, ns, prefix, start, fn);
    }

   private:
    const RocksDbKvStore* store_;
    std::shared_lock<std::shared_mutex> purges_wait_;  // released after the snapshot
    const rocksdb::Snapshot* snapshot_;
  };

  // ScanFrom, at `snapshot` (null: the latest state).
  Status ScanAt(const rocksdb::Snapshot* snapshot, std::string_view ns, std::string_view prefix,
                std::string_view start, const std::function<bool(std::string_view, std::string_view)>& fn) const {
    auto* cf = Family(ns);
    if (cf == nullptr) return NotFound("kv scan: unknown namespace " + std::string(ns));
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf));
    std::string_view from = std::max(prefix, start);
    for (it->Seek(rocksdb::Slice(from.data(), from.size())); it->Valid(); it->Next()) {
      std::string_view k(it->key().data(), it->key().size());
      if (k.substr(0, prefix.size()) != prefix) break;
      if (!fn(k, std::string_view(it->value().data(), it->value().size()))) break;
    }
    if (!it->status().ok()) return Internal("kv scan in " + std::string(ns) + ": " + it->status().ToString());
    return Status::Ok();
  }

  rocksdb::ColumnFamilyHandle* Family(std::string_view ns) const {
    auto it = by_name_.find(ns);
    return it == by_name_.end() ? nullptr : it->second;
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // Immutable after construction; looked up by string_view without a copy.
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> by_name_;
  // Shared by every live snapshot, exclusive for a purge.
  mutable std::shared_mutex snapshots_mu_;
};

}  // namespace

StatusOr<std::unique_ptr<KvStore>> OpenRocksDbKvStore(const std::string& dir,
                                                      const std::vector<std::string>& namespaces) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.paranoid_checks = true;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  options.info_log = std::make_shared<StorageLogger>();

  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName};
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, dir, &existing).ok()) {
    for (const auto& e : existing)
      if (e != rocksdb::kDefaultColumnFamilyName) names.push_back(e);
  }
  for (const auto& n : namespaces)
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  const auto& ordered = AppendOrderedNamespaces();
  for (const auto& n : names) {
    rocksdb::ColumnFamilyOptions cf(options);
    if (std::find(ordered.begin(), ordered.end(), n) != ordered.end())
      cf.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(2));
    descs.emplace_back(n, cf);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(options), dir, descs, &handles, &raw);
  if (!s.ok()) return Unavailable("open storage at " + dir + ": " + s.ToString());
  return std::unique_ptr<KvStore>(
      std::make_unique<RocksDbKvStore>(std::unique_ptr<rocksdb::DB>(raw), std::move(handles)));
}

}  // namespace geoledger
