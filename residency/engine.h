// The residency decision engine: holds the active policy snapshot and
// answers decisions against it.
//
// Publication: writers build a new immutable Snapshot (snapshot.h) and
// Install it; installation is one atomic swap, so a decision sees either the
// whole old policy or the whole new one, never a mix.
//
// Reading without locks (epoch-based reclamation): each thread that reads
// an engine owns a slot in the engine's slot list. A read pins the active
// snapshot: it publishes, in its slot, the publication generation it started
// in, then loads the active snapshot's address; when the read ends the slot
// goes back to quiescent. A decision is one such read: a few loads and
// stores to the thread's own slot, with no lock and no reference-count
// traffic (a thread's first read of an engine registers its slot, under the
// engine's mutex, once). A thread that is not reading holds nothing, so an
// idle thread never keeps a replaced policy in memory.
//
// Releasing replaced snapshots: freeing a large one takes long (about 0.17 s
// for a million tenants), so no decision thread may be the one that drops
// the last reference. Install keeps each replaced snapshot on a retired list,
// tagged with the generation that replaced it, and the engine's release
// thread frees it once every slot is quiescent or published a later
// generation (no read can still see it) and no Current() copy holds it.
// (A builder from EditCurrent shares the active snapshot's shards; one
// dropped after a full replacement frees those it alone still holds on its
// own thread. The policy store builds and installs under its lock, so none
// outlives one.)
//
// Thread-safety: every method is safe to call concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "residency/jurisdictions.h"
#include "residency/rules.h"
#include "residency/snapshot.h"

namespace geoledger::residency {
namespace internal {
struct ReaderSlot;
}  // namespace internal

class Engine {
 public:
  // A pinned read of the active snapshot (above): the snapshot stays valid
  // while the Read lives. Reads nest, on one engine or several. Keep it on
  // the stack of the thread that made it, and short: while it lives, no
  // snapshot replaced after it began can be freed.
  class Read {
   public:
    ~Read();
    Read(const Read&) = delete;
    Read& operator=(const Read&) = delete;
    const Snapshot& operator*() const { return *snapshot_; }
    const Snapshot* operator->() const { return snapshot_; }

   private:
    friend class Engine;
    Read(internal::ReaderSlot* slot, const Snapshot* snapshot) : slot_(slot), snapshot_(snapshot) {}
    internal::ReaderSlot* slot_;
    const Snapshot* snapshot_;
  };

  struct Options {
    RuleOptions rules;
    // Jurisdiction table; null means the built-in one.
    std::shared_ptr<const Jurisdictions> jurisdictions;
    // Whether a thread of the engine's own frees retired snapshots (above).
    // Tests turn it off and call ReleaseRetired themselves.
    bool release_in_background = true;
  };

  // An engine with the empty policy at version 0 (every decision denies
  // with tenant-unknown). Fails only if the built-in table is malformed.
  static StatusOr<std::unique_ptr<Engine>> Create(Options options);
  ~Engine();

  // A builder for a complete replacement policy at `version`.
  SnapshotBuilder NewPolicy(uint64_t version) const;
  // A builder for the current policy plus changes (version + 1).
  SnapshotBuilder EditCurrent() const;

  // Activates `snapshot` atomically. kFailedPrecondition, leaving the active
  // policy untouched, when an incremental snapshot was not built on the
  // active version (a concurrent change won) or when a full snapshot's
  // version is not newer than the active one (rollback).
  Status Install(std::shared_ptr<const Snapshot> snapshot);

  // One decision (a read, above) whose strings are copied out, so they
  // stay valid after the read. `unix_seconds` is the decision time (UTC).
  // Callers that decide and use the answer within a Read decide on its
  // snapshot instead, without the copies.
  OwnedDecision Decide(std::string_view tenant, std::string_view category,
                       std::string_view operation, std::string_view region,
                       int64_t unix_seconds) const;
  OwnedDecision Decide(const DecisionRequest& r, int64_t unix_seconds) const {
    return Decide(r.tenant, r.category, r.operation, r.region, unix_seconds);
  }

  // Pins the active snapshot (lock-free, above). A caller that decides and
  // then looks something up (which of a request's values the policy knows)
  // uses one Read for both, so the two never straddle a policy change.
  Read Pin() const;

  // The active snapshot (takes the mutex; one reference-count increment).
  std::shared_ptr<const Snapshot> Current() const;
  uint64_t version() const;
  // True once a policy with at least one tenant or region is active (/readyz).
  bool loaded() const;

  // Frees, on the calling thread, every retired snapshot that no read can
  // still see and only the engine holds; returns how many remain retired
  // (still seen by a read, or held by a Current() copy). The release thread
  // calls it.
  size_t ReleaseRetired();
  // Reader slots (above): at most the threads that have read this engine
  // at once, as a thread that exits leaves its slot to the next.
  size_t reader_slots() const;
  const Jurisdictions& jurisdictions() const { return *jurisdictions_; }

 private:
  struct Retired {
    std::shared_ptr<const Snapshot> snapshot;
    uint64_t replaced_at;  // the generation that replaced it
  };

  explicit Engine(Options options);
  // This thread's slot on this engine, registered on first use.
  internal::ReaderSlot* Slot() const;
  internal::ReaderSlot* RegisterSlot() const;
  void ReleaseLoop();

  const uint64_t id_;  // distinguishes engines in thread-local slot lists
  const RuleOptions rules_;
  std::shared_ptr<const Jurisdictions> jurisdictions_;
  std::shared_ptr<StringPool> pool_;

  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;  // guarded by mu_
  // current_'s address, for reads (stored under mu_, before generation_).
  std::atomic<const Snapshot*> active_{nullptr};
  // Replaced snapshots, one reference each, until no read can see them.
  std::vector<Retired> retired_;  // guarded by mu_
  // Every thread's slot; a thread that exits leaves its slot for the next.
  mutable std::vector<std::shared_ptr<internal::ReaderSlot>> slots_;  // guarded by mu_
  bool stopping_ = false;                                  // guarded by mu_
  std::condition_variable retired_cv_;                    // signals retired_ and stopping_
  // Bumped (release) after active_ changes; reads publish it (acquire).
  std::atomic<uint64_t> generation_{1};
  std::thread releaser_;  // absent without release_in_background
};

}  // namespace geoledger::residency
