// Ordered key-value storage with namespaces and atomic batches.
//
// Implementations: RocksDbKvStore (the embedded production store, one column
// family per namespace) and MemoryKvStore (tests). All methods are
// thread-safe. Keys and values are arbitrary bytes.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace geoledger {

// A group of writes applied all-or-nothing by KvStore::Write.
class KvBatch {
 public:
  struct Op {
    bool is_delete;
    std::string ns, key, value;
  };
  void Put(std::string_view ns, std::string_view key, std::string_view value) {
    ops_.push_back({false, std::string(ns), std::string(key), std::string(value)});
  }
  // Put, taking the value's buffer instead of copying it.
  void PutOwned(std::string_view ns, std::string_view key, std::string&& value) {
    ops_.push_back({false, std::string(ns), std::string(key), std::move(value)});
  }
  void Delete(std::string_view ns, std::string_view key) {
    ops_.push_back({true, std::string(ns), std::string(key), {}});
  }
  // Moves every op of `other` to the end of this batch.
  void Append(KvBatch&& other) {
    if (ops_.empty()) {
      ops_.swap(other.ops_);
      return;
    }
    ops_.reserve(ops_.size() + other.ops_.size());
    for (auto& op : other.ops_) ops_.push_back(std::move(op));
    other.ops_.clear();
  }
  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }

 private:
  std::vector<Op> ops_;
};

// A read-only view of a KvStore as it was when the view was taken: every
// Write that returned before, none that started after. Must not outlive its
// store.
class KvSnapshot {
 public:
  virtual ~KvSnapshot() = default;
  // As KvStore::ScanFrom, over the view.
  virtual Status ScanFrom(std::string_view ns, std::string_view prefix, std::string_view start,
                          const std::function<bool(std::string_view, std::string_view)>& fn) const = 0;
  Status Scan(std::string_view ns, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) const {
    return ScanFrom(ns, prefix, prefix, fn);
  }
};

class KvStore {
 public:
  virtual ~KvStore() = default;

  // Returns the value, std::nullopt when the key is absent, or an error
  // (kNotFound only for an unknown namespace; kInternal for I/O failures).
  virtual StatusOr<std::optional<std::string>> Get(std::string_view ns,
                                                   std::string_view key) const = 0;

  // Applies every op or none. With sync=true the call returns OK only once the
  // batch is on stable storage; any failure means nothing may be assumed
  // durable and the caller must not acknowledge the write.
  virtual Status Write(const KvBatch& batch, bool sync) = 0;

  // Makes every Write that returned before this call durable, as if it had
  // been written with sync=true. Lets a writer overlap its next batch with
  // the sync of the last one. A failure means those writes may be lost.
  virtual Status Sync() = 0;

  // Calls fn(key, value) for each key in `ns` starting with `prefix`, in key
  // order, until fn returns false.
  Status Scan(std::string_view ns, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) const {
    return ScanFrom(ns, prefix, prefix, fn);
  }
  // The same, beginning at the first key >= `start` (resumable scans).
  virtual Status ScanFrom(std::string_view ns, std::string_view prefix, std::string_view start,
                          const std::function<bool(std::string_view, std::string_view)>& fn) const = 0;
  // Calls fn(key, value) for each key in `ns` starting with `prefix` and
  // below `before` (every such key when `before` is empty), in descending key
  // order, until fn returns false: the newest records of an ordered log
  // without reading the older ones.
  virtual Status ScanBackFrom(std::string_view ns, std::string_view prefix, std::string_view before,
                              const std::function<bool(std::string_view, std::string_view)>& fn) const = 0;

  // A consistent view for long reads that must not hold up writers (RocksDB:
  // a snapshot, which keeps the versions it sees until it is destroyed).
  // While one lives, PurgeDeleted waits: a compaction must keep every value
  // a live snapshot can see, deleted ones included.
  virtual std::unique_ptr<KvSnapshot> Snapshot() const = 0;

  // Makes deleted values in `ns` leave the live database files: flushes
  // memory tables and compacts, so an overwritten or deleted value is no
  // longer on disk in the store's files (the file system may keep freed
  // blocks). Used after crypto-shredding. Slow; call rarely. Waits until no
  // snapshot (above) lives, and once it runs, new ones wait for it.
  virtual Status PurgeDeleted(std::string_view ns) = 0;
};

// Where a backward scan (KvStore::ScanBackFrom) starts: the exclusive upper
// bound, the lower of `before` and the smallest key above every key that
// starts with `prefix`; empty when there is none (scan from the last key).
inline std::string BackwardScanBound(std::string_view prefix, std::string_view before) {
  std::string past(prefix);
  while (!past.empty() && static_cast<unsigned char>(past.back()) == 0xff) past.pop_back();
  if (!past.empty()) past.back() = static_cast<char>(static_cast<unsigned char>(past.back()) + 1);
  if (before.empty() || (!past.empty() && std::string_view(past) < before)) return past;
  return std::string(before);
}

// The namespaces every store is opened with. Components add theirs here.
inline const std::vector<std::string>& KnownNamespaces() {
  static const std::vector<std::string> kNamespaces = {"meta", "tokens", "audit", "keys", "residency"};
  return kNamespaces;
}

// Namespaces whose keys are written mostly in ascending order under a
// two-byte prefix (the audit ledger's "e"+index and "t"+level+index keys).
// Their memtable inserts start from where the previous insert with the same
// prefix went instead of searching from the top of the skip list.
inline const std::vector<std::string>& AppendOrderedNamespaces() {
  static const std::vector<std::string> kNamespaces = {"audit"};
  return kNamespaces;
}

// Opens (creating if needed) a RocksDB database in `dir` with every namespace
// in `namespaces` as a column family. Fails if another process holds it.
StatusOr<std::unique_ptr<KvStore>> OpenRocksDbKvStore(const std::string& dir,
                                                      const std::vector<std::string>& namespaces);

// An in-memory store for tests. Namespaces are created on first use.
std::unique_ptr<KvStore> NewMemoryKvStore();

}  // namespace geoledger
