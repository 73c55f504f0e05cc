#include "residency/policy_store.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>

namespace geoledger::residency {
namespace {

// Whether `pre` holds for an entity whose current tag is `current` (none:
// it does not exist). Tags compare exactly (a strong comparison).
Status CheckPrecondition(const Precondition& pre, const std::string& what,
                         const std::optional<std::string>& current) {
  if (pre.if_none_exists && current)
    return PreconditionFailed(what + " already exists (If-None-Match: *)");
  if (pre.if_exists && !current) return PreconditionFailed(what + " does not exist (If-Match: *)");
  if (pre.if_match) {
    if (!current) return PreconditionFailed(what + " does not exist (If-Match)");
    for (const std::string& tag : *pre.if_match)
      if (tag == *current) return Status::Ok();
    return PreconditionFailed(what + " has changed since the version the request names (If-Match); read it again");
  }
  return Status::Ok();
}

constexpr std::string_view kVersionKey = "version";
constexpr std::string_view kRegionPrefix = "region/";
constexpr std::string_view kTenantPrefix = "tenant/";

std::string VersionSuffix(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%020" PRIu64, v);
  return buf;
}

std::string Key(std::string_view prefix, std::string_view id) {
  return std::string(prefix) + std::string(id);
}

// The keys of one entity's history records start with this.
std::string HistoryPrefix(std::string_view kind, std::string_view id) {
  return "history/" + std::string(kind) + "/" + std::string(id) + "/";
}

std::string HistoryKey(std::string_view kind, std::string_view id, uint64_t v) {
  return HistoryPrefix(kind, id) + VersionSuffix(v);
}

// The index of version v's audit entry, one key per version: history
// records are rendered before the entry's index is known (a bundle import
// has one per changed tenant, too many to render on the ledger's writer
// thread), and take it from here when read.
std::string AuditIndexKey(uint64_t v) { return "history/audit/" + VersionSuffix(v); }

// A bundle import's record, one per imported version.
std::string ImportKey(uint64_t v) { return "history/policy/" + VersionSuffix(v); }

// The page of `prefix`'s history records (keys prefix + VersionSuffix(v))
// that `query` selects. Reads at most query.limit + 1 records.
StatusOr<ChangePage> ReadHistory(const KvStore& kv, const std::string& prefix, const ChangeQuery& query) {
  ChangePage page;
  if (query.limit == 0) return page;
  std::vector<std::string> raw;  // as read: ascending forward, descending back
  auto collect = [&](std::string_view, std::string_view v) {
    raw.emplace_back(v);
    return raw.size() <= query.limit;  // one beyond the page tells whether there are more
  };
  if (query.after) {
    if (*query.after == UINT64_MAX || (query.before && *query.before <= *query.after + 1)) return page;
    const std::string stop = query.before ? prefix + VersionSuffix(*query.before) : std::string();
    GL_RETURN_IF_ERROR(kv.ScanFrom(kResidencyNamespace, prefix, prefix + VersionSuffix(*query.after + 1),
                                   [&](std::string_view k, std::string_view v) {
                                     return (stop.empty() || k < stop) && collect(k, v);
                                   }));
  } else {
    const std::string before = query.before ? prefix + VersionSuffix(*query.before) : std::string();
    GL_RETURN_IF_ERROR(kv.ScanBackFrom(kResidencyNamespace, prefix, before, collect));
  }
  page.more = raw.size() > query.limit;
  if (page.more) raw.pop_back();
  if (!query.after) std::reverse(raw.begin(), raw.end());
  for (const std::string& v : raw) {
    StatusOr<nlohmann::json> j = ParseJson(v, "residency history");
    StatusOr<ChangeRecord> r = j.ok() ? ChangeRecordFromJson(*j) : StatusOr<ChangeRecord>(j.status());
    if (!r.ok()) return DataLoss("residency history " + prefix + ": malformed record");
    page.changes.push_back(std::move(r).value());
  }
  for (ChangeRecord& r : page.changes) {
    if (r.audit_index) continue;  // kept in the record itself by earlier versions of the store
    GL_ASSIGN_OR_RETURN(std::optional<std::string> index, kv.Get(kResidencyNamespace, AuditIndexKey(r.version)));
    if (!index) continue;  // a change stored before changes were audited
    char* end = nullptr;
    const unsigned long long parsed = std::strtoull(index->c_str(), &end, 10);
    if (index->empty() || end != index->c_str() + index->size())
      return DataLoss("residency history " + prefix + ": malformed audit index of version " + std::to_string(r.version));
    r.audit_index = parsed;
  }
  return page;
}

// Forms a stored policy may hold, and a bundle may carry, that a change may
// no longer write (compliance-docs/residency-rules.md): the undated DPF
// declaration, which never lapses though a listing must be renewed every
// year, and an Art. 49 derogation without an end, which would make an
// occasional transfer basis a standing one.
Status CheckWritableForms(const Tenant& t) {
  const std::string who = "tenant " + t.id + ": ";
  for (size_t i = 0; i < t.certifications.size(); ++i)
    if (!t.certifications[i].dated())
      return InvalidArgument(who + "certifications[" + std::to_string(i) +
                             "]: the undated \"dpf\" is no longer accepted in a change; declare the DPF "
                             "listing as {\"name\":\"dpf\",\"reference\",\"valid_from\",\"valid_until\"}");
  for (size_t i = 0; i < t.safeguards.size(); ++i)
    if (t.safeguards[i].mechanism == Mechanism::kArt49 && !t.safeguards[i].valid_until)
      return InvalidArgument(who + "safeguards[" + std::to_string(i) +
                             "].valid_until: required for an Art. 49 derogation (the end of the occasion "
                             "it covers)");
  return Status::Ok();
}

}  // namespace

PolicyStore::PolicyStore(KvStore* kv, Engine* engine, const Clock* clock)
    : kv_(kv), engine_(engine), clock_(clock) {}

StatusOr<std::unique_ptr<PolicyStore>> PolicyStore::Open(KvStore* kv, Engine* engine,
                                                         const Clock* clock) {
  std::unique_ptr<PolicyStore> store(new PolicyStore(kv, engine, clock));
  GL_RETURN_IF_ERROR(store->Load());
  return store;
}

Status PolicyStore::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  GL_ASSIGN_OR_RETURN(std::optional<std::string> v, kv_->Get(kResidencyNamespace, kVersionKey));
  if (!v) return Status::Ok();  // nothing stored yet: the engine keeps its empty policy
  char* end = nullptr;
  const unsigned long long parsed = std::strtoull(v->c_str(), &end, 10);
  if (v->empty() || end != v->c_str() + v->size())
    return DataLoss("residency policy: malformed stored version");
  const Jurisdictions& j = engine_->jurisdictions();
  SnapshotBuilder builder = engine_->NewPolicy(parsed);
  Status error;
  auto fail = [&](Status s) {
    error = DataLoss("residency policy load: " + s.message());
    return false;
  };
  GL_RETURN_IF_ERROR(kv_->Scan(kResidencyNamespace, kRegionPrefix,
                               [&](std::string_view key, std::string_view value) {
    const std::string_view id = key.substr(kRegionPrefix.size());
    StatusOr<nlohmann::json> body = ParseJson(value, "stored region");
    if (!body.ok()) return fail(body.status());
    StatusOr<Region> r = RegionFromJson(id, *body, j);
    if (!r.ok()) return fail(r.status());
    Status s = builder.PutRegion(*r);
    if (!s.ok()) return fail(s);
    regions_[r->id] = *r;
    return true;
  }));
  GL_RETURN_IF_ERROR(error);
  GL_RETURN_IF_ERROR(kv_->Scan(kResidencyNamespace, kTenantPrefix,
                               [&](std::string_view key, std::string_view value) {
    const std::string_view id = key.substr(kTenantPrefix.size());
    StatusOr<nlohmann::json> body = ParseJson(value, "stored tenant");
    if (!body.ok()) return fail(body.status());
    StatusOr<Tenant> t = TenantFromJson(id, *body, j);
    if (!t.ok()) return fail(t.status());
    Status s = builder.PutTenant(*t);
    if (!s.ok()) return fail(s);
    return true;
  }));
  GL_RETURN_IF_ERROR(error);
  version_ = parsed;
  if (parsed == 0) return Status::Ok();
  return engine_->Install(std::move(builder).Build());
}

Status PolicyStore::Commit(const AuditChange& audit, ChangeRecord& rec, KvBatch batch,
                           const std::vector<std::pair<std::string, ChangeRecord>>& history,
                           std::shared_ptr<const Snapshot> snapshot) {
  if (!audit) return Internal("residency policy: a change must be audited");
  // Rendered here, not in `writes`, which runs on the ledger's writer thread
  // and holds up every other append while it runs.
  for (const auto& [key, record] : history)
    batch.Put(kResidencyNamespace, key, DumpJson(ChangeRecordToJson(record)));
  batch.Put(kResidencyNamespace, kVersionKey, std::to_string(rec.version));
  bool handed_over = false;
  const ChangeWrites writes = [&](uint64_t audit_index, KvBatch& out) {
    handed_over = true;
    out.Append(std::move(batch));
    out.Put(kResidencyNamespace, AuditIndexKey(rec.version), std::to_string(audit_index));
  };
  StatusOr<uint64_t> index = audit(rec, writes);
  if (!index.ok()) {
    if (handed_over) unsettled_ = true;
    return index.status();
  }
  if (!handed_over) return Internal("residency policy: the audit hook did not write the change");
  rec.audit_index = *index;
  version_ = rec.version;
  // Cannot fail while this store is the engine's only writer: the snapshot
  // was built on the active version under mu_. If it did, the store and the
  // engine would disagree: fail closed until a reopen.
  Status installed = engine_->Install(std::move(snapshot));
  if (!installed.ok()) unsettled_ = true;
  return installed;
}

StatusOr<bool> PolicyStore::ImportedAt(uint64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
  GL_ASSIGN_OR_RETURN(std::optional<std::string> rec,
                      kv_->Get(kResidencyNamespace, ImportKey(version)));
  return rec.has_value();
}

Status PolicyStore::CheckNewerLocked(uint64_t version) const {
  if (version <= version_)
    return FailedPrecondition("residency policy: version " + std::to_string(version) +
                              " is not newer than the active version " + std::to_string(version_));
  return Status::Ok();
}

Status PolicyStore::CheckNewer(uint64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckNewerLocked(version);
}

Status PolicyStore::Usable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckUsable();
}

Status PolicyStore::CheckUsable() const {
  if (unsettled_)
    return Unavailable("residency policy: a change's audited write failed (it may or may not be on disk) or "
                       "could not be activated; restart geoledgerd to reload the policy");
  return Status::Ok();
}

Status PolicyStore::CheckEditable() const {
  GL_RETURN_IF_ERROR(CheckUsable());
  if (engine_->version() != version_)
    return FailedPrecondition("residency policy: the engine was changed outside the store");
  if (version_ >= kMaxPolicyVersion)
    return FailedPrecondition("residency policy: version " + std::to_string(version_) +
                              " is the highest there is; no further change can be versioned");
  return Status::Ok();
}

StatusOr<ChangeRecord> PolicyStore::PutRegion(const Actor& actor, const Region& region,
                                              const AuditChange& audit, const Precondition& pre, Region* as_stored) {
  GL_RETURN_IF_ERROR(RegionFromJson(region.id, RegionToJson(region), engine_->jurisdictions()).status());
  std::lock_guard<std::mutex> lock(mu_);
  GL_RETURN_IF_ERROR(CheckUsable());
  std::optional<Region> before;
  if (auto it = regions_.find(region.id); it != regions_.end()) before = it->second;
  GL_RETURN_IF_ERROR(CheckPrecondition(pre, "region " + region.id,
                                       before ? std::optional<std::string>(EntityTag(RegionToJson(*before)))
                                              : std::nullopt));
  ChangeRecord rec{version_, clock_->UnixMillis(), actor.name, "region", region.id,
                   !before, DiffRegion(before, region), std::nullopt, actor.tenant};
  if (rec.changes.empty()) {
    if (as_stored != nullptr && before) *as_stored = *before;
    return rec;
  }
  GL_RETURN_IF_ERROR(CheckEditable());
  SnapshotBuilder builder = engine_->EditCurrent();
  GL_RETURN_IF_ERROR(builder.PutRegion(region));
  rec.version = builder.version();
  KvBatch batch;
  batch.Put(kResidencyNamespace, Key(kRegionPrefix, region.id), DumpJson(RegionToJson(region)));
  GL_RETURN_IF_ERROR(Commit(audit, rec, std::move(batch), {{HistoryKey("region", region.id, rec.version), rec}},
                            std::move(builder).Build()));
  regions_[region.id] = region;
  if (as_stored != nullptr) *as_stored = region;
  return rec;
}

StatusOr<ChangeRecord> PolicyStore::PutTenant(const Actor& actor, const Tenant& tenant,
                                              const AuditChange& audit, const Precondition& pre, Tenant* as_stored) {
  const Jurisdictions& j = engine_->jurisdictions();
  GL_RETURN_IF_ERROR(TenantFromJson(tenant.id, TenantToJson(tenant), j).status());
  GL_RETURN_IF_ERROR(CheckWritableForms(tenant));
  std::lock_guard<std::mutex> lock(mu_);
  GL_RETURN_IF_ERROR(CheckUsable());
  GL_RETURN_IF_ERROR(CheckTenantReferences(
      tenant, [&](const std::string& id) { return regions_.count(id) != 0; }));
  GL_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                      kv_->Get(kResidencyNamespace, Key(kTenantPrefix, tenant.id)));
  std::optional<Tenant> before;
  if (stored) {
    GL_ASSIGN_OR_RETURN(nlohmann::json body, ParseJson(*stored, "stored tenant"));
    StatusOr<Tenant> t = TenantFromJson(tenant.id, body, j);
    if (!t.ok()) return DataLoss("residency policy: stored tenant " + tenant.id + " is malformed");
    before = std::move(t).value();
  }
  GL_RETURN_IF_ERROR(CheckPrecondition(pre, "tenant " + tenant.id,
                                       before ? std::optional<std::string>(EntityTag(TenantToJson(*before)))
                                              : std::nullopt));
  // Whether a tenant exists at all, and its suspension, are the operator's:
  // a token bound to the tenant (which may administer the tenant's own
  // policy) can neither create it (bring back one the operator removed, or
  // one never admitted) nor lift or impose a suspension.
  if (!actor.tenant.empty()) {
    if (!before)
      return PermissionDenied("a token bound to a tenant cannot create it (tenant " + tenant.id +
                              " does not exist); an operator's token can");
    if (tenant.status != before->status)
      return PermissionDenied("a token bound to a tenant cannot change its status (" +
                              std::string(TenantStatusName(before->status)) + "); an operator's token can");
  }
  ChangeRecord rec{version_, clock_->UnixMillis(), actor.name, "tenant", tenant.id,
                   !before, DiffTenant(before, tenant), std::nullopt, actor.tenant};
  if (rec.changes.empty()) {
    if (as_stored != nullptr && before) *as_stored = *before;
    return rec;
  }
  GL_RETURN_IF_ERROR(CheckEditable());
  SnapshotBuilder builder = engine_->EditCurrent();
  GL_RETURN_IF_ERROR(builder.PutTenant(tenant));
  rec.version = builder.version();
  KvBatch batch;
  batch.Put(kResidencyNamespace, Key(kTenantPrefix, tenant.id), DumpJson(TenantToJson(tenant)));
  GL_RETURN_IF_ERROR(Commit(audit, rec, std::move(batch), {{HistoryKey("tenant", tenant.id, rec.version), rec}},
                            std::move(builder).Build()));
  if (as_stored != nullptr) *as_stored = tenant;
  return rec;
}

StatusOr<std::optional<Region>> PolicyStore::GetRegion(std::string_view id) const {
  std::lock_guard<std::mutex> lock(mu_);
  GL_RETURN_IF_ERROR(CheckUsable());
  auto it = regions_.find(std::string(id));
  if (it == regions_.end()) return std::optional<Region>();
  return std::optional<Region>(it->second);
}

StatusOr<std::optional<Tenant>> PolicyStore::GetTenant(std::string_view id, uint64_t* version) const {
  if (!IsValidTenantId(id)) return std::optional<Tenant>();
  std::lock_guard<std::mutex> lock(mu_);
  GL_RETURN_IF_ERROR(CheckUsable());
  // Changes install under this lock, so the version matches what is read.
  if (version != nullptr) *version = engine_->version();
  GL_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                      kv_->Get(kResidencyNamespace, Key(kTenantPrefix, id)));
  if (!stored) return std::optional<Tenant>();
  GL_ASSIGN_OR_RETURN(nlohmann::json body, ParseJson(*stored, "stored tenant"));
  StatusOr<Tenant> t = TenantFromJson(id, body, engine_->jurisdictions());
  if (!t.ok()) return DataLoss("residency policy: stored tenant " + std::string(id) + " is malformed");
  return std::optional<Tenant>(std::move(t).value());
}

StatusOr<ChangePage> PolicyStore::Changes(std::string_view kind, std::string_view id, const ChangeQuery& query) const {
  std::lock_guard<std::mutex> lock(mu_);
  GL_RETURN_IF_ERROR(CheckUsable());
  return ReadHistory(*kv_, HistoryPrefix(kind, id), query);
}

StatusOr<ChangePage> PolicyStore::TenantChanges(std::string_view tenant, const ChangeQuery& query) const {
  if (!IsValidTenantId(tenant)) return InvalidArgument("tenant history: bad tenant id");
  return Changes("tenant", tenant, query);
}

StatusOr<ChangePage> PolicyStore::RegionChanges(std::string_view region, const ChangeQuery& query) const {
  if (!IsValidRegionId(region)) return InvalidArgument("region history: bad region id");
  return Changes("region", region, query);
}

StatusOr<PolicyDocument> PolicyStore::Export() const {
  PolicyDocument doc;
  std::unique_ptr<KvSnapshot> snapshot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    GL_RETURN_IF_ERROR(CheckUsable());
    // Every change is written and made durable under mu_, so the store holds
    // exactly version_'s policy now; the tenants are read from this view
    // without the lock (a million take seconds, and changes go on meanwhile).
    snapshot = kv_->Snapshot();
    doc.version = version_;
    for (const auto& [id, r] : regions_) doc.regions.push_back(r);
  }
  Status error;
  const Jurisdictions& j = engine_->jurisdictions();
  GL_RETURN_IF_ERROR(snapshot->Scan(kResidencyNamespace, kTenantPrefix,
                               [&](std::string_view key, std::string_view value) {
    StatusOr<nlohmann::json> body = ParseJson(value, "stored tenant");
    StatusOr<Tenant> t = body.ok() ? TenantFromJson(key.substr(kTenantPrefix.size()), *body, j)
                                   : StatusOr<Tenant>(body.status());
    if (!t.ok()) {
      error = DataLoss("residency policy export: stored tenant is malformed");
      return false;
    }
    doc.tenants.push_back(std::move(t).value());
    return true;
  }));
  GL_RETURN_IF_ERROR(error);
  return doc;
}

StatusOr<ChangeRecord> PolicyStore::Replace(std::string_view actor, const PolicyDocument& doc,
                                            const AuditChange& audit,
                                            const std::vector<std::pair<std::string, std::string>>& provenance) {
  std::lock_guard<std::mutex> lock(mu_);
  GL_RETURN_IF_ERROR(CheckUsable());
  if (doc.version > kMaxPolicyVersion)
    return InvalidArgument("residency policy: version " + std::to_string(doc.version) + " is above the highest, " +
                           std::to_string(kMaxPolicyVersion));
  GL_RETURN_IF_ERROR(CheckNewerLocked(doc.version));
  SnapshotBuilder builder = engine_->NewPolicy(doc.version);
  for (const Region& r : doc.regions) GL_RETURN_IF_ERROR(builder.PutRegion(r));
  for (const Tenant& t : doc.tenants) GL_RETURN_IF_ERROR(builder.PutTenant(t));

  const Jurisdictions& j = engine_->jurisdictions();
  const int64_t now = clock_->UnixMillis();
  ChangeRecord summary{doc.version, now, std::string(actor), "bundle", "", false, {}, std::nullopt, std::nullopt};
  KvBatch batch;
  // History records, written with the import's audit entry, which names their index.
  std::vector<std::pair<std::string, ChangeRecord>> history;
  // The summary counts; per-entity detail is in each entity's history.
  size_t regions_set = 0, regions_removed = 0, tenants_set = 0, tenants_removed = 0;
  // Regions: history for each change, deletions for regions the bundle drops.
  std::set<std::string> kept_regions;
  for (const Region& r : doc.regions) {
    kept_regions.insert(r.id);
    std::optional<Region> before;
    if (auto it = regions_.find(r.id); it != regions_.end()) before = it->second;
    ChangeRecord rec{doc.version, now, std::string(actor), "region", r.id, !before,
                     DiffRegion(before, r), std::nullopt, std::nullopt};
    if (rec.changes.empty()) continue;
    batch.Put(kResidencyNamespace, Key(kRegionPrefix, r.id), DumpJson(RegionToJson(r)));
    history.emplace_back(HistoryKey("region", r.id, doc.version), std::move(rec));
    ++regions_set;
  }
  for (const auto& [id, r] : regions_) {
    if (kept_regions.count(id)) continue;
    ChangeRecord rec{doc.version, now, std::string(actor), "region", id, false, {{"region", "set", "deleted"}}, std::nullopt, std::nullopt};
    batch.Delete(kResidencyNamespace, Key(kRegionPrefix, id));
    history.emplace_back(HistoryKey("region", id, doc.version), std::move(rec));
    ++regions_removed;
  }
  // Tenants: compare with what is stored.
  std::map<std::string, std::string> stored;
  GL_RETURN_IF_ERROR(kv_->Scan(kResidencyNamespace, kTenantPrefix,
                               [&](std::string_view key, std::string_view value) {
    stored.emplace(std::string(key.substr(kTenantPrefix.size())), std::string(value));
    return true;
  }));
  for (const Tenant& t : doc.tenants) {
    const std::string rendered = DumpJson(TenantToJson(t));
    std::optional<Tenant> before;
    if (auto it = stored.find(t.id); it != stored.end()) {
      if (it->second == rendered) {
        stored.erase(it);
        continue;
      }
      StatusOr<nlohmann::json> body = ParseJson(it->second, "stored tenant");
      if (body.ok()) {
        StatusOr<Tenant> old = TenantFromJson(t.id, *body, j);
        if (old.ok()) before = std::move(old).value();
      }
      stored.erase(it);
    }
    ChangeRecord rec{doc.version, now, std::string(actor), "tenant", t.id, !before,
                     DiffTenant(before, t), std::nullopt, std::nullopt};
    batch.Put(kResidencyNamespace, Key(kTenantPrefix, t.id), rendered);
    history.emplace_back(HistoryKey("tenant", t.id, doc.version), std::move(rec));
    ++tenants_set;
  }
  for (const auto& [id, value] : stored) {  // tenants the bundle no longer has
    ChangeRecord rec{doc.version, now, std::string(actor), "tenant", id, false,
                     {{"tenant", "set", "deleted"}}, std::nullopt, std::nullopt};
    batch.Delete(kResidencyNamespace, Key(kTenantPrefix, id));
    history.emplace_back(HistoryKey("tenant", id, doc.version), std::move(rec));
    ++tenants_removed;
  }
  summary.changes = {
      {"version", std::to_string(version_), std::to_string(doc.version)},  // read under mu_: the one replaced
      {"regions", "", std::to_string(regions_set) + " set, " + std::to_string(regions_removed) + " removed"},
      {"tenants", "", std::to_string(tenants_set) + " set, " + std::to_string(tenants_removed) + " removed"}};
  for (const auto& [field, value] : provenance) summary.changes.push_back({field, "", value});
  history.emplace_back(ImportKey(doc.version), summary);
  GL_RETURN_IF_ERROR(Commit(audit, summary, std::move(batch), history, std::move(builder).Build()));
  regions_.clear();
  for (const Region& r : doc.regions) regions_[r.id] = r;
  return summary;
}

uint64_t PolicyStore::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

}  // namespace geoledger::residency
