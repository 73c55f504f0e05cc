// The audit ledger: an append-only, hash-chained log whose entries are the
// leaves of an RFC 9162 Merkle tree, kept in a KvStore (namespace "audit").
//
// Appends from many threads are group-committed: the writer thread takes
// every queued event (up to a batch limit), assigns indexes, chains and
// hashes them, and writes entries, the hashes of newly completed subtrees of
// 16 leaves or more, and the tree head in one KvBatch. Smaller subtrees are
// hashed from their entries when a proof needs them (at most 15 entries per
// proof), which keeps the stored keys near one per entry. A second thread,
// the syncer, then makes every batch written so far durable with one
// KvStore::Sync() and only then publishes the new size and calls the
// appenders back, in commit order.
// The writer prepares and writes the next batch while the syncer waits for
// the disk, so one fsync's latency no longer stalls the CPU work. Nothing
// beyond the durable size is ever read, proven or acknowledged. Append
// returns only after its batch is durable. The queue is bounded: when it is
// full, Append fails at once with kUnavailable (the caller answers 503 +
// Retry-After); nothing is dropped. A failed write or sync is never
// acknowledged: the ledger turns unhealthy and refuses every later append.
//
// An append may carry writes of its own (AttachedWrites): they go into the
// same KvBatch as its entries, so the caller's data and the entries that
// record it reach the store together or not at all.
//
// Appends that need not be durable at once (Durability::kLazy: decisions
// audited in async mode, whose answers do not wait) may wait up to
// Options::lazy_delay to be written, and as long again to be synced, so that
// many of them share one write and one sync; a full batch of them
// (Options::lazy_batch_events) goes at once. A prompt append is never held
// back by them: it is written and synced at once, with whatever lazy ones are
// queued or written by then.
//
// A signed checkpoint (audit/checkpoint.h) is written in the same batch at
// least once per `checkpoint_interval` while entries arrive, and by Close().
// Before signing, the new tree is checked to extend the previous checkpoint.
//
// Thread-safe unless noted.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "common/clock.h"
#include "common/kv_store.h"
#include "common/status.h"
#include "crypto/signer.h"

namespace geoledger::audit {

// What a caller records. Everything here is non-personal or pseudonymised;
// personal details go in `sealed_ciphertext` under the subject's data key.
struct AuditEvent {
  std::string tenant;
  std::string actor;
  std::string action;
  std::string resource;
  std::string outcome;
  std::string subject_pseudonym;  // raw bytes (HMAC-SHA256), may be empty
  std::map<std::string, std::string> details;
  std::string sealed_key_id;
  std::string sealed_ciphertext;
};

struct StoredEntry {
  uint64_t index = 0;
  std::string bytes;      // the deterministic AuditEntry serialization (the leaf)
  std::string leaf_hash;  // SHA-256(0x00 || bytes)
};

struct LedgerStats {
  uint64_t size = 0;
  uint64_t queue_depth = 0;      // events waiting for the writer
  uint64_t queue_capacity = 0;   // Options::max_queued_events
  uint64_t batches = 0;          // committed batches
  uint64_t last_batch_events = 0;
  uint64_t rejected = 0;         // appends refused because the queue was full
  double last_commit_seconds = 0;
  uint64_t checkpoint_size = 0;
  bool healthy = true;
};

// How soon an append's events must be made durable.
enum class Durability {
  kPrompt,  // written and synced as soon as the writer and the disk allow
  kLazy,    // may wait for others, within Ledger::Options::lazy_delay twice
};

class Ledger {
 public:
  struct Options {
    std::string region;                        // origin is "geoledger/<region>"
    size_t max_queued_events = 100000;         // back-pressure bound
    size_t max_batch_events = 8192;
    // Event bytes one write takes (more when a single append is larger).
    uint64_t max_batch_bytes = 32ull << 20;
    std::chrono::milliseconds checkpoint_interval{1000};
    // Lazy appends wait at most this long to be written, and as long again
    // to be synced; fewer when lazy_batch_events are queued first. Zero
    // makes them prompt.
    std::chrono::microseconds lazy_delay{2000};
    size_t lazy_batch_events = 256;
    // Entry bytes one export may hold (the file is built in memory).
    uint64_t max_export_bytes = 256ull << 20;
    // A checkpoint is also signed once this many entries, or entry bytes,
    // follow the last one, however fast they come. A checkpoint is due at
    // most once per batch, so consecutive ones are at most one batch beyond
    // these apart: within one export's reach (kMaxExportEntries,
    // max_export_bytes) as long as a single append stays under
    // max_export_bytes - checkpoint_every_bytes (the HTTP body limit, at
    // most 64 MiB, keeps it there).
    uint64_t checkpoint_every_entries = 50000;
    uint64_t checkpoint_every_bytes = 64ull << 20;
  };

  // Opens the ledger in `kv` (namespace "audit"): loads the tree head in
  // O(log n) reads, checks it against the last signed checkpoint and starts
  // the writer. `kv`, `signer` and `clock` must outlive the ledger.
  // kDataLoss when the stored tree disagrees with the signed checkpoint: the
  // checkpoint does not verify, covers more entries than the head, or its
  // root differs from the one recomputed from the stored subtrees at its
  // size (the entries under subtrees too small to be stored are hashed);
  // also when the head's hash is not the SHA-256 of the last entry. Other
  // entries and subtrees are not read here: Verify() checks them.
  static StatusOr<std::unique_ptr<Ledger>> Open(KvStore* kv, const crypto::Ed25519Signer* signer,
                                                const Clock* clock, Options options);
  ~Ledger();  // Close()

  // A caller's writes that must be committed with its entries. Called at
  // most once, on the writer thread, with the index the first event gets,
  // before the batch is written; it adds puts and deletes to `batch`, which
  // goes to the store in the same atomic write as the entries. Not called
  // when the append fails before its events are given indexes. It must not
  // block, and must not touch namespace "audit": such a write is refused as
  // a storage failure (the ledger turns unhealthy and the append fails).
  // When the append fails after it was called, the caller cannot tell
  // whether the write reached the disk (a sync that failed may still have
  // persisted it): its entries and its writes then share one fate.
  using AttachedWrites = std::function<void(uint64_t first_index, KvBatch& batch)>;

  // Appends `events` in order and returns their indexes once durable, with
  // `attached` (optional) committed in the same write.
  // kInvalidArgument for an empty list or malformed event; kUnavailable when
  // the queue is full, the ledger is closed, or storage failed.
  StatusOr<std::vector<uint64_t>> Append(std::vector<AuditEvent> events, AttachedWrites attached = nullptr);

  // Called once with the appended events' indexes when they are durable, or
  // with kUnavailable when the write failed or the ledger closed first.
  using AppendCallback = std::function<void(StatusOr<std::vector<uint64_t>>)>;
  // Non-blocking Append. Returns an error at once (and never calls `done`)
  // for the same reasons Append fails before queueing: invalid events, a full
  // queue, a closed or unhealthy ledger. Otherwise returns OK and calls
  // `done` exactly once, on the ledger's syncer thread, after the batch
  // holding the events is durable; callbacks run in commit order. `done`
  // must not block for long (it delays the next sync) and may call
  // AppendAsync, never the blocking Append (which would wait for this very
  // thread). With Durability::kLazy, `done` may come up to twice
  // Options::lazy_delay later than it would otherwise (see the top), and the
  // append does not wake the writer itself unless it fills a lazy batch:
  // waking a thread costs the caller several microseconds (an interrupt to
  // another CPU), so the caller calls WakeWriter() once its own
  // latency-critical work (sending its answer) is done. Without that, lazy
  // appends wait for the writer's periodic wake (checkpoint_interval).
  Status AppendAsync(std::vector<AuditEvent> events, AppendCallback done,
                     Durability durability = Durability::kPrompt, AttachedWrites attached = nullptr);
  // Wakes the writer for lazy appends queued without waking it. Cheap when
  // there are none. Thread-safe.
  void WakeWriter();

  // Entries [start, end), end exclusive and at most size().
  StatusOr<std::vector<StoredEntry>> Entries(uint64_t start, uint64_t end) const;

  // Root hash of the first `tree_size` entries (tree_size <= size()).
  StatusOr<std::string> RootAt(uint64_t tree_size) const;
  // RFC 9162 inclusion proof of leaf `index` in the tree of `tree_size`.
  StatusOr<std::vector<std::string>> InclusionProof(uint64_t index, uint64_t tree_size) const;
  // RFC 9162 consistency proof between tree sizes first <= second.
  StatusOr<std::vector<std::string>> ConsistencyProof(uint64_t first, uint64_t second) const;

  // An export file (compliance-docs/audit-log-format.md) of entries
  // [start, end), where `end` must be a tree size that was checkpointed. At
  // most kMaxExportEntries entries and Options::max_export_bytes of entry bytes
  // (kInvalidArgument beyond, naming the furthest checkpoint that fits).
  // Without `end`: up to the furthest checkpoint within both bounds (the
  // file's checkpoint names it), so a log is exported from 0 export by
  // export, each starting where the last ended.
  static constexpr uint64_t kMaxExportEntries = 100000;
  StatusOr<std::string> Export(uint64_t start, std::optional<uint64_t> end) const;

  // Full O(n) check of the stored log: the entries [0, size()) present when
  // the call starts (appends may continue meanwhile; later entries are not
  // examined). Each entry must be present and parse, its index field must be
  // its position and its prev_entry_hash the SHA-256 of the entry before;
  // every stored complete subtree hash (subtrees of 16 leaves and more; the
  // smaller ones are never stored) must equal the one recomputed from the
  // entries; every stored signed checkpoint must verify
  // and its root equal the recomputed root at its size; the tree head must
  // name the last entry. kDataLoss at the first problem, with a message that
  // names the entry index ("audit verify: entry 37: ..."). `progress`
  // (optional) gets (entries done, total) every 65536 entries and at the end.
  struct VerifyReport {
    uint64_t entries = 0;      // entries checked
    uint64_t checkpoints = 0;  // signed checkpoints checked
  };
  StatusOr<VerifyReport> Verify(
      const std::function<void(uint64_t done, uint64_t total)>& progress = {}) const;

  // The latest signed checkpoint note (empty before the first entry).
  std::string LatestCheckpoint() const;
  const std::string& origin() const { return origin_; }

  uint64_t size() const;
  bool healthy() const;
  LedgerStats Stats() const;

  // Stops taking appends, commits what is queued, writes a final checkpoint
  // and stops the writer. Idempotent.
  Status Close();

 private:
  struct Pending {
    std::vector<AuditEvent> events;
    AppendCallback done;
    bool prompt = true;
    AttachedWrites attached;  // may be empty
    uint64_t bytes = 0;       // the events' field bytes
  };
  // The log's head after some batch: how many entries, the hash the next
  // entry chains to, and the size of the latest signed checkpoint.
  struct Head {
    uint64_t size = 0;
    std::string last_hash;  // SHA-256 of entry size-1; 32 zero bytes when empty
    uint64_t checkpoint_size = 0;
  };
  // A batch written (not yet synced) by the writer, and the head it leads
  // to; published by the syncer once durable.
  struct Written {
    std::vector<Pending> batch;
    std::vector<std::vector<uint64_t>> indexes;  // one list per Pending
    Head head;
    std::string note;  // the checkpoint signed in this batch, if any
    std::chrono::steady_clock::time_point started;  // clock_
    std::chrono::steady_clock::time_point written;  // real time, for the lazy deadline
  };
  // Calls every callback in `pending` with `result` (outside mu_).
  static void Fail(std::vector<Pending>& pending, const Status& result);
  Ledger(KvStore* kv, const crypto::Ed25519Signer* signer, const Clock* clock, Options options);
  Status Load();
  void WriterLoop();
  void SyncerLoop();
  // Turns the ledger unhealthy and fails every queued append.
  void MarkUnhealthy(const Status& cause);
  // Writes `batch` (may be empty: checkpoint only) without syncing and hands
  // it to the syncer. Called by the writer; on error `batch` is untouched.
  Status Commit(std::vector<Pending>& batch, bool force_checkpoint);
  StatusOr<std::string> SubtreeHash(int level, uint64_t index) const;
  // The largest checkpointed tree size <= `size` (0 when none).
  StatusOr<uint64_t> CheckpointAtOrBelow(uint64_t size) const;
  SubtreeHashGetter Getter() const;
  // A subtree below internal::kLowestStoredLevel, hashed from its entries.
  StatusOr<Hash> DerivedSubtreeHash(const NodeId& id) const;

  KvStore* kv_;
  const crypto::Ed25519Signer* signer_;
  const Clock* clock_;
  const Options options_;
  const std::string origin_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;       // guarded by mu_
  size_t queued_events_ = 0;        // guarded by mu_
  size_t queued_prompt_ = 0;        // guarded by mu_: prompt appends in queue_
  std::chrono::steady_clock::time_point lazy_since_;  // guarded by mu_: when queue_ last became non-empty
  std::atomic<bool> wake_pending_{false};  // lazy appends were queued without waking the writer
  bool closing_ = false;            // guarded by mu_
  bool healthy_ = true;             // guarded by mu_
  Head durable_;                    // guarded by mu_: nothing beyond it is read or acknowledged
  std::string checkpoint_note_;     // guarded by mu_: the latest durable signed checkpoint
  LedgerStats stats_;               // guarded by mu_
  // The tip: the head after the last batch written, durable or not, with
  // what the next batch builds on. Writer thread only (set by Load before
  // it starts).
  Head tip_;
  Frontier tip_frontier_;            // right border of the tree of tip_.size leaves
  uint64_t tip_bytes_since_checkpoint_ = 0;  // entry bytes after tip_.checkpoint_size (writer thread)
  std::string tip_checkpoint_root_;  // root signed at tip_.checkpoint_size
  std::chrono::steady_clock::time_point last_checkpoint_at_;  // writer thread only
  std::thread writer_;

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::deque<Written> written_;  // guarded by sync_mu_: written, not yet synced
  bool sync_now_ = false;        // guarded by sync_mu_: written_ holds a prompt append or a full lazy batch
  bool writer_exited_ = false;   // guarded by sync_mu_
  std::thread syncer_;
};

}  // namespace geoledger::audit
