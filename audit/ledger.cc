#include "audit/ledger.h"

#include <pthread.h>

#include "audit/export.h"
#include "audit/internal/entry_encoding.h"
#include "audit/internal/ledger_keys.h"
#include "audit/merkle.h"

#include <algorithm>
#include <functional>

#include "common/encoding.h"
#include "common/log.h"
#include "crypto/hash.h"

namespace geoledger::audit {
namespace {

using internal::BigEndian64;
using internal::CheckpointKey;
using internal::EntryKey;
using internal::FromBigEndian64;
using internal::kCheckpointKey;
using internal::kHeadKey;
using internal::SubtreeKey;
constexpr const char* kNs = internal::kLedgerNs;

std::string ToString(const Hash& h) { return std::string(crypto::AsView(h)); }

bool ValidText(const std::string& s, size_t max) { return s.size() <= max; }

}  // namespace

Ledger::Ledger(KvStore* kv, const crypto::Ed25519Signer* signer, const Clock* clock, Options options)
    : kv_(kv), signer_(signer), clock_(clock), options_(std::move(options)),
      origin_("geoledger/" + options_.region) {
  stats_.queue_capacity = options_.max_queued_events;
}

StatusOr<std::unique_ptr<Ledger>> Ledger::Open(KvStore* kv, const crypto::Ed25519Signer* signer,
                                               const Clock* clock, Options options) {
  std::unique_ptr<Ledger> ledger(new Ledger(kv, signer, clock, std::move(options)));
  GL_RETURN_IF_ERROR(ledger->Load());
  ledger->last_checkpoint_at_ = clock->Now();
  // Named for top -H and the benchmarks' per-thread CPU figures.
  ledger->syncer_ = std::thread([l = ledger.get()] {
    pthread_setname_np(pthread_self(), "gl-audit-sync");
    l->SyncerLoop();
  });
  ledger->writer_ = std::thread([l = ledger.get()] {
    pthread_setname_np(pthread_self(), "gl-audit-write");
    l->WriterLoop();
  });
  return ledger;
}

Ledger::~Ledger() { Close().IgnoreError(); }

StatusOr<std::string> Ledger::SubtreeHash(int level, uint64_t index) const {
  GL_ASSIGN_OR_RETURN(auto v, kv_->Get(kNs, SubtreeKey(level, index)));
  if (!v || v->size() != crypto::kSha256Bytes)
    return DataLoss("audit: subtree hash (" + std::to_string(level) + "," + std::to_string(index) + ") missing");
  return *v;
}

Status Ledger::Load() {
  GL_ASSIGN_OR_RETURN(auto head, kv_->Get(kNs, kHeadKey));
  uint64_t size = 0;
  std::string last_hash(crypto::kSha256Bytes, '\0');
  if (head) {
    if (head->size() != 8 + crypto::kSha256Bytes) return DataLoss("audit: tree head is corrupt");
    size = FromBigEndian64(*head);
    last_hash = head->substr(8);
  }
  // The right border of a tree of `size` leaves is one complete subtree per
  // set bit of `size`: O(log n) reads, no scan.
  GL_ASSIGN_OR_RETURN(Frontier frontier, Frontier::Load(size, Getter()));
  GL_ASSIGN_OR_RETURN(auto note, kv_->Get(kNs, kCheckpointKey));
  std::optional<Checkpoint> cp;
  if (note) {
    auto opened = OpenCheckpoint(*note, origin_, signer_->public_key());
    if (!opened.ok()) return DataLoss("audit: stored checkpoint does not verify: " + opened.status().message());
    if (opened->size > size)
      return DataLoss("audit: entries " + std::to_string(size) + " to " + std::to_string(opened->size - 1) +
                      " are missing: the signed checkpoint covers " + std::to_string(opened->size) +
                      " entries but the stored tree has " + std::to_string(size));
    cp = std::move(*opened);
  } else if (size > 0) {
    return DataLoss("audit: entries exist but no signed checkpoint");
  }
  if (size > 0) {
    // The next entry chains to the head's hash: one that is not the last
    // entry's would link the log to an entry it does not hold.
    GL_ASSIGN_OR_RETURN(auto last, kv_->Get(kNs, EntryKey(size - 1)));
    if (!last) return DataLoss("audit: entry " + std::to_string(size - 1) + " missing");
    if (ToString(crypto::Sha256(*last)) != last_hash)
      return DataLoss("audit: entry " + std::to_string(size - 1) +
                      ": its SHA-256 is not the tree head's last hash (the entry or the head was altered)");
  }
  if (cp) {
    // The stored tree must still be the signed one: its root at the
    // checkpoint's size, from the stored subtrees of that border (and the
    // entries under the ones too small to be stored), O(log n) reads. The
    // frontier already holds that border when the checkpoint is the head's.
    Hash root = frontier.Root();
    if (cp->size != size) {
      GL_ASSIGN_OR_RETURN(root, RootFromSubtrees(cp->size, Getter()));
    }
    if (ToString(root) != cp->root_hash)
      return DataLoss("audit: the stored tree of size " + std::to_string(cp->size) +
                      " does not have the signed checkpoint's root (a stored subtree or entry was altered)");
  }
  std::lock_guard<std::mutex> lock(mu_);
  durable_.size = size;
  durable_.last_hash = last_hash;
  stats_.size = size;
  if (cp) {
    checkpoint_note_ = *note;
    durable_.checkpoint_size = cp->size;
    tip_checkpoint_root_ = cp->root_hash;
    stats_.checkpoint_size = cp->size;
  }
  tip_ = durable_;
  tip_frontier_ = std::move(frontier);
  return Status::Ok();
}

SubtreeHashGetter Ledger::Getter() const {
  return [this](const NodeId& id) -> StatusOr<Hash> {
    if (id.level < internal::kLowestStoredLevel) return DerivedSubtreeHash(id);
    GL_ASSIGN_OR_RETURN(std::string bytes, SubtreeHash(static_cast<int>(id.level), id.index));
    return HashFromBytes(bytes);
  };
}

StatusOr<Hash> Ledger::DerivedSubtreeHash(const NodeId& id) const {
  const uint64_t first = id.index << id.level, count = uint64_t{1} << id.level;
  Hash leaves[uint64_t{1} << (internal::kLowestStoredLevel - 1)];
  uint64_t read = 0;
  bool gap = false;
  GL_RETURN_IF_ERROR(kv_->ScanFrom(kNs, "e", EntryKey(first), [&](std::string_view key, std::string_view bytes) {
    if (key != EntryKey(first + read)) {
      gap = true;
      return false;
    }
    leaves[read++] = LeafHash(bytes);
    return read < count;
  }));
  if (gap || read != count) return DataLoss("audit: entry " + std::to_string(first + read) + " missing");
  return RootFromLeafHashes(std::span<const Hash>(leaves, count));
}

// The root of the first `tree_size` leaves, from stored complete subtrees.
StatusOr<std::string> Ledger::RootAt(uint64_t tree_size) const {
  if (tree_size > size()) return InvalidArgument("audit: tree_size is beyond the log");
  GL_ASSIGN_OR_RETURN(Hash root, RootFromSubtrees(tree_size, Getter()));
  return ToString(root);
}

StatusOr<std::vector<std::string>> Ledger::InclusionProof(uint64_t index, uint64_t tree_size) const {
  if (tree_size > size()) return InvalidArgument("audit: tree_size is beyond the log");
  if (index >= tree_size) return InvalidArgument("audit: index must be below tree_size");
  GL_ASSIGN_OR_RETURN(auto proof, audit::InclusionProof(index, tree_size, Getter()));
  std::vector<std::string> out;
  for (const auto& h : proof) out.push_back(ToString(h));
  return out;
}

StatusOr<std::vector<std::string>> Ledger::ConsistencyProof(uint64_t first, uint64_t second) const {
  if (second > size()) return InvalidArgument("audit: second is beyond the log");
  if (first > second) return InvalidArgument("audit: first must not exceed second");
  GL_ASSIGN_OR_RETURN(auto proof, audit::ConsistencyProof(first, second, Getter()));
  std::vector<std::string> out;
  for (const auto& h : proof) out.push_back(ToString(h));
  return out;
}

StatusOr<std::vector<uint64_t>> Ledger::Append(std::vector<AuditEvent> events, AttachedWrites attached) {
  auto done = std::make_shared<std::promise<StatusOr<std::vector<uint64_t>>>>();
  auto future = done->get_future();
  GL_RETURN_IF_ERROR(AppendAsync(
      std::move(events), [done](StatusOr<std::vector<uint64_t>> result) { done->set_value(std::move(result)); },
      Durability::kPrompt, std::move(attached)));
  return future.get();
}

Status Ledger::AppendAsync(std::vector<AuditEvent> events, AppendCallback done, Durability durability,
                           AttachedWrites attached) {
  if (events.empty()) return InvalidArgument("audit: no events");
  if (events.size() > options_.max_batch_events)
    return InvalidArgument("audit: at most " + std::to_string(options_.max_batch_events) + " events per append");
  uint64_t bytes = 0;  // about what the entries take, for the writer's batch bound
  for (const auto& e : events) {
    bytes += e.tenant.size() + e.actor.size() + e.action.size() + e.resource.size() + e.outcome.size() +
             e.subject_pseudonym.size() + e.sealed_key_id.size() + e.sealed_ciphertext.size();
    for (const auto& [k, v] : e.details) bytes += k.size() + v.size();
    if (e.action.empty() || !ValidText(e.action, 128)) return InvalidArgument("audit: action must be 1-128 bytes");
    if (!ValidText(e.tenant, 128) || !ValidText(e.actor, 128) || !ValidText(e.resource, 512) ||
        !ValidText(e.outcome, 128) || !ValidText(e.subject_pseudonym, 64) || e.details.size() > 64 ||
        !ValidText(e.sealed_ciphertext, 64 * 1024) || !ValidText(e.sealed_key_id, 128))
      return InvalidArgument("audit: event field too large");
    if (e.sealed_ciphertext.empty() != e.sealed_key_id.empty())
      return InvalidArgument("audit: sealed details need both key id and ciphertext");
    for (const auto& [k, v] : e.details)
      if (k.empty() || !ValidText(k, 128) || !ValidText(v, 1024)) return InvalidArgument("audit: detail too large");
    // The entry's text fields are protobuf strings: an entry holding anything
    // but UTF-8 would be written yet never parse again.
    bool utf8 = IsValidUtf8(e.tenant) && IsValidUtf8(e.actor) && IsValidUtf8(e.action) && IsValidUtf8(e.resource) &&
                IsValidUtf8(e.outcome) && IsValidUtf8(e.sealed_key_id);
    for (const auto& [k, v] : e.details) utf8 = utf8 && IsValidUtf8(k) && IsValidUtf8(v);
    if (!utf8) return InvalidArgument("audit: event text fields must be UTF-8");
  }
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return Unavailable("audit: ledger is closed");
    if (!healthy_) return Unavailable("audit: ledger storage failed; not accepting appends");
    if (queued_events_ + events.size() > options_.max_queued_events) {
      stats_.rejected += events.size();
      return Unavailable("audit: append queue is full");
    }
    const bool prompt = durability == Durability::kPrompt || options_.lazy_delay.count() <= 0;
    // The writer is woken here for a prompt append or a full lazy batch.
    // The first lazy one into an empty queue starts the lazy deadline and
    // leaves the wake-up to WakeWriter(); later ones join without one.
    wake = prompt || queued_events_ + events.size() >= options_.lazy_batch_events;
    if (queue_.empty()) {
      lazy_since_ = std::chrono::steady_clock::now();
      if (!wake) wake_pending_.store(true, std::memory_order_relaxed);
    }
    queued_events_ += events.size();
    queued_prompt_ += prompt ? 1 : 0;
    stats_.queue_depth = queued_events_;
    queue_.push_back(Pending{std::move(events), std::move(done), prompt, std::move(attached), bytes});
  }
  if (wake) cv_.notify_one();
  return Status::Ok();
}

void Ledger::WakeWriter() {
  // The queue was changed under mu_ before the flag was set, and the writer
  // checks the queue under mu_ before it waits: no wake-up is lost.
  if (wake_pending_.exchange(false, std::memory_order_relaxed)) cv_.notify_one();
}

void Ledger::Fail(std::vector<Pending>& pending, const Status& result) {
  for (auto& p : pending) p.done(result);
}

void Ledger::WriterLoop() {
  while (true) {
    std::vector<Pending> batch;
    bool closing;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.checkpoint_interval, [this] { return !queue_.empty() || closing_; });
      // Only lazy appends queued: let others join them until the first has
      // waited lazy_delay or a batch is full.
      auto go = [this] {
        return closing_ || !healthy_ || queued_prompt_ > 0 || queued_events_ >= options_.lazy_batch_events;
      };
      if (!queue_.empty()) cv_.wait_until(lock, lazy_since_ + options_.lazy_delay, go);
      size_t taken = 0;
      uint64_t taken_bytes = 0;
      // Bounded by bytes too, so that a checkpoint (due at most once per
      // batch) follows every Options::checkpoint_every_bytes closely.
      while (!queue_.empty() &&
             (batch.empty() || (taken + queue_.front().events.size() <= options_.max_batch_events &&
                                taken_bytes + queue_.front().bytes <= options_.max_batch_bytes))) {
        taken += queue_.front().events.size();
        taken_bytes += queue_.front().bytes;
        queued_prompt_ -= queue_.front().prompt ? 1 : 0;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (!queue_.empty()) lazy_since_ = std::chrono::steady_clock::now();
      queued_events_ -= taken;
      stats_.queue_depth = queued_events_;
      closing = closing_ && queue_.empty();
      if (!healthy_) {
        lock.unlock();
        Fail(batch, Unavailable("audit: ledger storage failed"));
        if (closing) return;
        continue;
      }
    }
    bool due = clock_->Now() - last_checkpoint_at_ >= options_.checkpoint_interval;
    Status st = Commit(batch, due || closing);
    if (!st.ok()) {
      MarkUnhealthy(st);
      Fail(batch, Unavailable("audit: ledger storage failed"));
    }
    if (closing) return;
  }
}

void Ledger::MarkUnhealthy(const Status& cause) {
  log::Error("audit ledger write failed; refusing further appends", {{"error", cause.ToString()}});
  std::vector<Pending> queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    healthy_ = false;
    stats_.healthy = false;
    for (auto& p : queue_) queued.push_back(std::move(p));
    queue_.clear();
    queued_events_ = 0;
    queued_prompt_ = 0;
    stats_.queue_depth = 0;
  }
  Fail(queued, Unavailable("audit: ledger storage failed"));
}

void Ledger::SyncerLoop() {
  while (true) {
    std::deque<Written> work;
    {
      std::unique_lock<std::mutex> lock(sync_mu_);
      sync_cv_.wait(lock, [this] { return !written_.empty() || writer_exited_; });
      if (written_.empty()) return;  // the writer has exited and everything is synced
      // Only lazy appends written: let later batches share this sync until
      // the first has waited lazy_delay.
      sync_cv_.wait_until(lock, written_.front().written + options_.lazy_delay,
                          [this] { return sync_now_ || writer_exited_; });
      work.swap(written_);
      sync_now_ = false;
    }
    // One sync covers every batch written before it starts.
    Status st = healthy() ? kv_->Sync() : Unavailable("audit: ledger storage failed");
    if (!st.ok()) {
      if (healthy()) MarkUnhealthy(st);
      for (auto& w : work) Fail(w.batch, Unavailable("audit: ledger storage failed"));
      continue;
    }
    const auto synced = clock_->Now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& w : work) {
        if (w.head.size > durable_.size) {
          stats_.batches++;
          stats_.last_batch_events = w.head.size - durable_.size;
          stats_.last_commit_seconds = std::chrono::duration<double>(synced - w.started).count();
        }
        durable_ = std::move(w.head);
        if (!w.note.empty()) checkpoint_note_ = std::move(w.note);
      }
      stats_.size = durable_.size;
      stats_.checkpoint_size = durable_.checkpoint_size;
    }
    for (auto& w : work)
      for (size_t b = 0; b < w.batch.size(); ++b) w.batch[b].done(std::move(w.indexes[b]));
  }
}

Status Ledger::Commit(std::vector<Pending>& batch, bool force_checkpoint) {
  auto started = clock_->Now();
  const uint64_t tip_before = tip_.size;
  uint64_t size = tip_.size;
  std::string last_hash = tip_.last_hash;
  Frontier frontier = tip_frontier_;
  const uint64_t cp_size = tip_.checkpoint_size;
  const std::string& cp_root = tip_checkpoint_root_;
  KvBatch kv;
  std::vector<std::vector<uint64_t>> indexes(batch.size());
  int64_t now_ms = clock_->UnixMillis();
  std::vector<Subtree> completed;
  std::vector<std::pair<std::string, std::string>> subtrees;  // written after the entries, in key order
  std::string bytes;
  uint64_t bytes_since_checkpoint = tip_bytes_since_checkpoint_;
  KvBatch attached;  // the appenders' own writes, after the ledger's keys
  for (size_t b = 0; b < batch.size(); ++b) {
    if (batch[b].attached) {
      KvBatch theirs;
      batch[b].attached(size, theirs);
      for (const auto& op : theirs.ops())
        if (op.ns == kNs) return Internal("audit: an append's attached writes touch the audit namespace");
      attached.Append(std::move(theirs));
    }
    for (auto& e : batch[b].events) {
      internal::EncodeEntry(size, now_ms, options_.region, e, last_hash, bytes);
      last_hash = std::string(crypto::AsView(crypto::Sha256(bytes)));
      // Fold the new leaf into the right border, persisting each subtree it completes.
      completed.clear();
      GL_RETURN_IF_ERROR(frontier.Append(LeafHash(bytes), &completed));
      bytes_since_checkpoint += bytes.size();
      kv.PutOwned(kNs, EntryKey(size), std::move(bytes));
      for (const auto& t : completed)
        if (t.id.level >= internal::kLowestStoredLevel)
          subtrees.emplace_back(SubtreeKey(static_cast<int>(t.id.level), t.id.index), ToString(t.hash));
      indexes[b].push_back(size);
      ++size;
    }
  }
  // Keys in ascending order keep RocksDB's memtable inserts sequential;
  // interleaving "e" and "t" keys made every insert search from scratch.
  std::sort(subtrees.begin(), subtrees.end());
  for (auto& [key, hash] : subtrees) kv.Put(kNs, key, hash);
  std::string note;
  std::string new_root;
  // Also after Options::checkpoint_every_entries entries or _bytes of them,
  // however fast they come: an export ends at a checkpoint, so every entry
  // must lie between two that one export can span.
  bool checkpoint = size > cp_size && (force_checkpoint || cp_size == 0 ||
                                       size - cp_size >= options_.checkpoint_every_entries ||
                                       bytes_since_checkpoint >= options_.checkpoint_every_bytes);
  if (checkpoint) {
    new_root = ToString(frontier.Root());
    // Never sign a head that does not extend the previous checkpoint: the
    // previous root must be recomputable from the subtrees we build on.
    if (cp_size > 0) {
      // Not RootAt(): the last checkpoint may be written and not yet synced.
      GL_ASSIGN_OR_RETURN(Hash old_root, RootFromSubtrees(cp_size, Getter()));
      if (ToString(old_root) != cp_root) return DataLoss("audit: tree no longer matches the last checkpoint");
    }
    note = SignCheckpoint(Checkpoint{origin_, size, new_root}, *signer_);
    kv.Put(kNs, kCheckpointKey, note);
    kv.Put(kNs, CheckpointKey(size), note);  // every checkpoint stays exportable
  }
  if (kv.empty()) return Status::Ok();
  kv.Put(kNs, kHeadKey, BigEndian64(size) + last_hash);
  kv.Append(std::move(attached));
  GL_RETURN_IF_ERROR(kv_->Write(kv, /*sync=*/false));  // the syncer makes it durable
  if (checkpoint) last_checkpoint_at_ = clock_->Now();
  tip_.size = size;
  tip_.last_hash = std::move(last_hash);
  tip_frontier_ = std::move(frontier);
  tip_bytes_since_checkpoint_ = checkpoint ? 0 : bytes_since_checkpoint;
  if (checkpoint) {
    tip_.checkpoint_size = size;
    tip_checkpoint_root_ = std::move(new_root);
  }
  Written w;
  w.batch = std::move(batch);
  w.indexes = std::move(indexes);
  w.head = tip_;
  w.note = std::move(note);
  w.started = started;
  w.written = std::chrono::steady_clock::now();
  // A batch holding a prompt append, or a full batch of lazy ones, is
  // synced at once.
  bool urgent = w.head.size - tip_before >= options_.lazy_batch_events;
  for (const auto& p : w.batch) urgent = urgent || p.prompt;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    // A lazy batch behind others needs no wake-up: the syncer is syncing or
    // already waiting for the first one's deadline.
    wake = urgent || written_.empty();
    sync_now_ = sync_now_ || urgent;
    written_.push_back(std::move(w));
  }
  if (wake) sync_cv_.notify_one();
  return Status::Ok();
}

StatusOr<std::vector<StoredEntry>> Ledger::Entries(uint64_t start, uint64_t end) const {
  uint64_t n = size();
  if (start > end || end > n) return InvalidArgument("audit: range must satisfy start <= end <= size");
  std::vector<StoredEntry> out;
  out.reserve(end - start);
  for (uint64_t i = start; i < end; ++i) {
    GL_ASSIGN_OR_RETURN(auto bytes, kv_->Get(kNs, EntryKey(i)));
    if (!bytes) return DataLoss("audit: entry " + std::to_string(i) + " missing");
    out.push_back({i, *bytes, ToString(LeafHash(*bytes))});
  }
  return out;
}

StatusOr<uint64_t> Ledger::CheckpointAtOrBelow(uint64_t size) const {
  uint64_t found = 0;
  // "c" be64(size) keys only: "checkpoint" sorts above every bound here.
  GL_RETURN_IF_ERROR(kv_->ScanBackFrom(kNs, "c", CheckpointKey(size + 1), [&](std::string_view key, std::string_view) {
    if (key.size() != 9) return true;
    found = internal::FromBigEndian64(key.substr(1));
    return false;
  }));
  return found;
}

StatusOr<std::string> Ledger::Export(uint64_t start, std::optional<uint64_t> end) const {
  uint64_t latest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    latest = durable_.checkpoint_size;
  }
  if (latest == 0) return NotFound("audit: nothing to export yet (no checkpoint)");
  uint64_t stop;
  if (end) {
    stop = *end;
    if (start > stop) return InvalidArgument("audit: start must not exceed end");
    if (stop - start > kMaxExportEntries)
      return InvalidArgument("audit: at most " + std::to_string(kMaxExportEntries) +
                             " entries per export (without end, an export stops at the last checkpoint it can reach)");
  } else {
    if (start > latest)
      return InvalidArgument("audit: start is past the latest checkpoint (" + std::to_string(latest) + ")");
    // The furthest checkpoint one export can reach from `start`.
    GL_ASSIGN_OR_RETURN(stop, CheckpointAtOrBelow(std::min(latest, start + kMaxExportEntries)));
    // None past `start` within reach (a log checkpointed only by time): an
    // empty export would never advance.
    if (stop < start || (stop == start && start < latest))
      return InvalidArgument("audit: no signed checkpoint within " + std::to_string(kMaxExportEntries) +
                             " entries after " + std::to_string(start) + "; give end");
  }
  GL_ASSIGN_OR_RETURN(auto note, kv_->Get(kNs, CheckpointKey(stop)));
  if (!note) return InvalidArgument("audit: no signed checkpoint at tree size " + std::to_string(stop) +
                                    "; end must be a checkpointed size (latest: " + std::to_string(latest) + ")");
  // Read in slices, bounded by Options::max_export_bytes: past it, an export without
  // `end` stops at the furthest checkpoint within the bound instead.
  std::vector<StoredEntry> entries;
  uint64_t bytes = 0;
  for (uint64_t i = start; i < stop;) {
    uint64_t j = std::min(stop, i + 1024);
    GL_ASSIGN_OR_RETURN(auto slice, Entries(i, j));
    for (auto& e : slice) {
      if (bytes + e.bytes.size() > options_.max_export_bytes) {
        const uint64_t reached = start + entries.size();  // entries [start, reached) fit
        GL_ASSIGN_OR_RETURN(uint64_t fits, CheckpointAtOrBelow(reached));
        const bool some = fits > start;
        const std::string advice = some ? "; the furthest checkpoint within it is " + std::to_string(fits)
                                        : "; the entries up to the next checkpoint exceed it";
        if (end || !some)
          return InvalidArgument("audit: the export would exceed " + std::to_string(options_.max_export_bytes) +
                                 " bytes of entries" + advice);
        stop = fits;
        entries.resize(stop - start);
        GL_ASSIGN_OR_RETURN(note, kv_->Get(kNs, CheckpointKey(stop)));
        if (!note) return Internal("audit: the checkpoint at " + std::to_string(stop) + " vanished");
        j = stop;  // ends the outer loop
        break;
      }
      bytes += e.bytes.size();
      entries.push_back(std::move(e));
    }
    i = j;
  }
  GL_ASSIGN_OR_RETURN(Frontier prefix, Frontier::Load(start, Getter()));
  std::string prev(crypto::kSha256Bytes, '\0');
  if (start > 0) {
    GL_ASSIGN_OR_RETURN(auto before, Entries(start - 1, start));
    prev = ToString(crypto::Sha256(before[0].bytes));
  }
  return BuildExport(origin_, start, prefix.border(), prev, entries, *note);
}

std::string Ledger::LatestCheckpoint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return checkpoint_note_;
}

uint64_t Ledger::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_.size;
}

bool Ledger::healthy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return healthy_;
}

LedgerStats Ledger::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Status Ledger::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_ && !writer_.joinable()) return Status::Ok();
    closing_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    writer_exited_ = true;
  }
  sync_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  std::lock_guard<std::mutex> lock(mu_);
  return healthy_ ? Status::Ok() : Unavailable("audit: ledger storage failed");
}

}  // namespace geoledger::audit
