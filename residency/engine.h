// The residency decision engine: holds the active policy snapshot and
// answers decisions against it.
//
// Publication: writers build a new immutable Snapshot (snapshot.h) and
// Install it; installation is one atomic swap, so a decision sees either the
// whole old policy or the whole new one, never a mix.
//
// Reading without locks: each reader thread keeps a thread-local
// shared_ptr to the snapshot it last used, tagged with the engine's id and
// the publication generation. A decision does one acquire load of the
// engine's generation counter; when it matches the cached tag (the steady
// state) the cached snapshot is used directly, with no lock and no reference
// count traffic. Only after a publication does a thread take the engine's
// mutex once to copy the new pointer. A thread's cache keeps its last
// snapshot alive until that thread next decides (on any engine) or exits.
//
// Releasing replaced snapshots: freeing a large one takes long (about 0.17 s
// for a million tenants), so no decision thread may be the one that drops
// the last reference. Install keeps each replaced snapshot on a retired list
// (one reference), and the engine's release thread frees a retired snapshot
// once that is the only reference left, outside the mutex. A snapshot that is
// no longer active can gain no reference (only the active one is handed
// out), so once its count is one it stays one. A thread cache still holding
// one after the engine is destroyed frees it itself. (A builder from
// EditCurrent shares the active snapshot's shards; one dropped after a full
// replacement frees those it alone still holds on its own thread. The
// policy store builds and installs under its lock, so none outlives one.)
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

class Engine {
 public:
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

  // Lock-free (see above); string_views in the result stay valid for the
  // engine's lifetime. `unix_seconds` is the decision time (UTC).
  Decision Decide(std::string_view tenant, std::string_view category,
                  std::string_view operation, std::string_view region,
                  int64_t unix_seconds) const;
  Decision Decide(const DecisionRequest& r, int64_t unix_seconds) const {
    return Decide(r.tenant, r.category, r.operation, r.region, unix_seconds);
  }
  // Answers every request against one snapshot, so a batch never straddles
  // a policy change. `out` must be as long as `requests`.
  void DecideBatch(std::span<const DecisionRequest> requests, int64_t unix_seconds,
                   std::span<Decision> out) const;

  // The snapshot this thread decides against: lock-free as above. The
  // reference stays valid until this thread's next call to Reader, Decide or
  // DecideBatch on this engine; a caller that decides and then looks
  // something up (which of a request's values the policy knows) uses it for
  // both, so the two never straddle a policy change.
  const Snapshot& Reader() const { return Acquire(); }

  // The active snapshot (takes the mutex; one reference-count increment).
  std::shared_ptr<const Snapshot> Current() const;
  uint64_t version() const;
  // True once a policy with at least one tenant or region is active (/readyz).
  bool loaded() const;

  // Frees, on the calling thread, every retired snapshot that only the
  // engine still holds; returns how many remain retired (still held by a
  // thread's cache or a Current() copy). The release thread calls it.
  size_t ReleaseRetired();
  const Jurisdictions& jurisdictions() const { return *jurisdictions_; }

 private:
  explicit Engine(Options options);
  const Snapshot& Acquire() const;
  void ReleaseLoop();

  const uint64_t id_;  // distinguishes engines in thread-local caches
  const RuleOptions rules_;
  std::shared_ptr<const Jurisdictions> jurisdictions_;
  std::shared_ptr<StringPool> pool_;

  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;  // guarded by mu_
  // Replaced snapshots, one reference each, until only that one is left.
  std::vector<std::shared_ptr<const Snapshot>> retired_;  // guarded by mu_
  bool stopping_ = false;                                  // guarded by mu_
  std::condition_variable retired_cv_;                    // signals retired_ and stopping_
  // Bumped (release) after current_ changes; readers compare it (acquire).
  std::atomic<uint64_t> generation_{1};
  std::thread releaser_;  // absent without release_in_background
};

}  // namespace geoledger::residency
