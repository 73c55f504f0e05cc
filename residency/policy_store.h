// Durable, versioned residency policy in a KvStore (namespace "residency"),
// kept in step with an Engine.
//
// Every change that alters the policy increments the policy version. The
// change, its history records, the version and the index of the change's
// audit entry are written in the same atomic, synchronous write as that
// entry itself (AuditChange, below); only then is the new
// snapshot installed in the engine. So a change is stored if and only if
// its entry is, whatever crashes or fails; a crash before the snapshot is
// installed loses nothing, as Open rebuilds it from the store. A PUT that
// changes nothing writes nothing, audits nothing and keeps the version.
//
// Layout (keys in namespace "residency"):
//   version                          decimal policy version
//   region/<id>                      RegionToJson
//   tenant/<id>                      TenantToJson
//   history/tenant/<id>/<v:020>      ChangeRecordToJson
//   history/region/<id>/<v:020>      ChangeRecordToJson
//   history/policy/<v:020>           ChangeRecordToJson (bundle imports)
//   history/audit/<v:020>            decimal index of version v's audit entry
//                                    (history records take their audit_index
//                                    from it; earlier records carry their own)
//
// The store must be the engine's only writer. Thread-safe; changes are
// serialised by one mutex, which reads of the store take too (a change's
// write is visible in the KvStore before it is durable), except Export's
// scan of the tenants, which reads a snapshot taken under it; reads of the
// engine never wait for it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/kv_store.h"
#include "common/status.h"
#include "residency/engine.h"
#include "residency/history.h"
#include "residency/model.h"

namespace geoledger::residency {

inline constexpr std::string_view kResidencyNamespace = "residency";

// The highest policy version: 2^53 - 1, the largest integer every JSON reader
// keeps exact. Bundles above it are refused, and a change at it is refused
// (the version would otherwise wrap to 0, which reads as "no policy").
inline constexpr uint64_t kMaxPolicyVersion = (uint64_t{1} << 53) - 1;

// The writes that commit a change, given the index of its audit entry: the
// store adds them to `batch`.
using ChangeWrites = std::function<void(uint64_t audit_index, KvBatch& batch)>;

// Writes a change and its audit entry in one atomic, synchronous write to
// the store's KvStore: the entry for `change`, and the puts and deletes
// `writes` adds to the same batch once the entry's index is known. Called
// under the store's lock once the change is validated and its version is
// set; returns the entry's index once both are durable, and does not use
// `writes` after it returns. When it fails without having called `writes`,
// nothing was written and the change can be retried. When it fails after
// calling `writes`, the change and its entry may or may not have reached the
// disk together (a failed sync can still have persisted them): the change is
// not activated, and the store refuses every later request with
// kUnavailable until it is reopened from the KvStore, which then holds the
// change with its entry or neither.
using AuditChange = std::function<StatusOr<uint64_t>(const ChangeRecord& change, const ChangeWrites& writes)>;

// A caller's precondition on the entity a change replaces (HTTP If-Match /
// If-None-Match), in EntityTag terms. Unset, it always holds.
struct Precondition {
  // The entity must exist (If-Match: *).
  bool if_exists = false;
  // The entity must exist and its tag be one of these (compared exactly; a
  // quoted "*" is a tag like any other, RFC 9110 §13.1.1).
  std::optional<std::vector<std::string>> if_match;
  // The entity must not exist (If-None-Match: *), for a create that must
  // not replace anything.
  bool if_none_exists = false;
};

// Which of an entity's changes to read (PolicyStore::TenantChanges and
// RegionChanges): those whose version lies strictly between `after` and
// `before` (each bound optional), at most `limit` of them: the oldest in that
// range when `after` is given (reading forward from it), else the newest
// (reading back).
struct ChangeQuery {
  std::optional<uint64_t> after = std::nullopt;
  std::optional<uint64_t> before = std::nullopt;
  size_t limit = 1000;
};

struct ChangePage {
  std::vector<ChangeRecord> changes;  // oldest first
  // The range holds changes beyond this page in the direction read: older
  // ones (ask again with `before` = the first version here), or, when
  // reading forward, newer ones (`after` = the last version here).
  bool more = false;
};

class PolicyStore {
 public:
  // Loads the stored policy and installs it in `engine`. kDataLoss when a
  // stored record does not parse or names an unknown region. `kv`, `engine`
  // and `clock` must outlive the store.
  static StatusOr<std::unique_ptr<PolicyStore>> Open(KvStore* kv, Engine* engine,
                                                     const Clock* clock);

  // Creates or replaces a region, written with its audit entry through
  // `audit`. Returns the change (version, fields, audit index); a change that
  // changes nothing is returned with no changes, without calling `audit`.
  // kPreconditionFailed, changing nothing, when `pre` does not hold for the
  // region as it is (checked under the store's lock, with the change).
  // `as_stored` (optional) receives the region as stored once the call returns:
  // `region`, or, when nothing changed, the stored one (equal as policy,
  // perhaps not as sent).
  StatusOr<ChangeRecord> PutRegion(const Actor& actor, const Region& region, const AuditChange& audit,
                                   const Precondition& pre = {}, Region* as_stored = nullptr);
  // Creates or replaces a tenant, the same way; kInvalidArgument when it
  // names a region that does not exist, or holds a form that stored policies
  // and bundles may hold but a change may no longer write (an undated DPF
  // declaration, an Art. 49 derogation without valid_until).
  // kPermissionDenied when an actor bound to a tenant would create it (it
  // does not exist: never admitted, or removed by a bundle import) or change
  // its status.
  StatusOr<ChangeRecord> PutTenant(const Actor& actor, const Tenant& tenant, const AuditChange& audit,
                                   const Precondition& pre = {}, Tenant* as_stored = nullptr);

  StatusOr<std::optional<Region>> GetRegion(std::string_view id) const;
  // `version`, when given, receives the active policy version, read under
  // the same lock as the tenant, so the two always belong together.
  StatusOr<std::optional<Tenant>> GetTenant(std::string_view id, uint64_t* version = nullptr) const;

  // A page of the tenant's or the region's changes (ChangeQuery). Reads at
  // most query.limit + 1 records, however long the history.
  StatusOr<ChangePage> TenantChanges(std::string_view tenant, const ChangeQuery& query) const;
  StatusOr<ChangePage> RegionChanges(std::string_view region, const ChangeQuery& query) const;

  // The whole policy (for bundle export), as of one version. Reads the
  // tenants from a KvStore snapshot, without the store's lock: changes made
  // meanwhile are neither held up nor seen. (Taking the snapshot waits, under
  // the lock, for a storage purge that is running: KvStore::PurgeDeleted.)
  StatusOr<PolicyDocument> Export() const;

  // Replaces the whole policy with `doc` at doc.version (bundle import).
  // kFailedPrecondition unless doc.version is newer than version();
  // kInvalidArgument when doc is inconsistent. Records one history entry per
  // changed tenant and region, and one for the import, all naming (through
  // the version's index key) the one audit entry that `audit` writes for the
  // import. Holds the store's lock while it compares, renders and writes
  // (seconds for a few hundred thousand tenants). The
  // import's record (the result) lists "version" (from the version it
  // replaced to the new one), "regions" and "tenants" ("N set, M removed"),
  // then `provenance` (where the policy came from: a bundle's key id and
  // payload digest), each as a field set to its value.
  StatusOr<ChangeRecord> Replace(std::string_view actor, const PolicyDocument& doc, const AuditChange& audit,
                                 const std::vector<std::pair<std::string, std::string>>& provenance = {});

  // Whether a bundle import (Replace) is stored at `version`: its
  // history/policy record is there. Answers while the store refuses other
  // requests, so a start can tell whether an import that failed reached the
  // disk.
  StatusOr<bool> ImportedAt(uint64_t version) const;
  // kUnavailable once an audited write failed after it was handed to the
  // store: until a reopen, whether that change is stored is unknown, and
  // every request is refused with this status.
  Status Usable() const;
  // kFailedPrecondition, as Replace answers it, unless `version` is newer
  // than the active one (versions only grow, so a refusal stays one).
  Status CheckNewer(uint64_t version) const;

  uint64_t version() const;
  const Jurisdictions& jurisdictions() const { return engine_->jurisdictions(); }

 private:
  PolicyStore(KvStore* kv, Engine* engine, const Clock* clock);
  Status Load();
  // Under mu_: writes `batch`, the history records `history` (keyed), the
  // version of `rec` and the index of its audit entry together with that
  // entry, through `audit`; keeps the entry's index in `rec`, and installs
  // `snapshot`.
  Status Commit(const AuditChange& audit, ChangeRecord& rec, KvBatch batch,
                const std::vector<std::pair<std::string, ChangeRecord>>& history,
                std::shared_ptr<const Snapshot> snapshot);
  // Under mu_: kUnavailable once an audited write failed after it was handed
  // to the store (its outcome is known only after a reopen).
  Status CheckUsable() const;
  // TenantChanges and RegionChanges once the id is checked: a page of the
  // history records of `kind` `id`. Takes mu_.
  StatusOr<ChangePage> Changes(std::string_view kind, std::string_view id, const ChangeQuery& query) const;
  // Under mu_: an incremental change may be built on the active version.
  Status CheckEditable() const;
  Status CheckNewerLocked(uint64_t version) const;

  KvStore* const kv_;
  Engine* const engine_;
  const Clock* const clock_;

  mutable std::mutex mu_;
  uint64_t version_ = 0;                   // guarded by mu_
  std::map<std::string, Region> regions_;  // guarded by mu_
  bool unsettled_ = false;                 // guarded by mu_: see CheckUsable
};

}  // namespace geoledger::residency
