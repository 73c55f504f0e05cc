// Field-level change summaries for the residency policy history
// (GET /v1/tenants/{t}/history) and for the audit entry the server writes on
// every change. Summaries name fields and policy values (region ids, status,
// safeguard jurisdiction/mechanism/reference) and never personal data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "residency/model.h"

namespace geoledger::residency {

struct FieldChange {
  std::string field;  // "home_region", "allowed_regions.personal", "safeguards", ...
  std::string from;   // rendered old value ("" when the entity is new)
  std::string to;
  bool operator==(const FieldChange&) const = default;
};

// Who makes a change through PolicyStore::PutRegion or PutTenant: a token's
// name, and the tenant it is bound to ("" for an unbound token).
struct Actor {
  Actor(const char* name) : name(name) {}  // NOLINT: an unbound token's name
  Actor(std::string_view name, std::string_view tenant = {}) : name(name), tenant(tenant) {}  // NOLINT
  std::string name;
  std::string tenant;
};

// One policy change as stored in the history and returned to the server.
struct ChangeRecord {
  uint64_t version = 0;        // policy version the change produced
  int64_t unix_millis = 0;
  std::string actor;           // token name or "bundle:<key id>"
  std::string kind;            // "region", "tenant" or "bundle"
  std::string id;              // region or tenant id ("" for bundles)
  bool created = false;
  std::vector<FieldChange> changes;
  // The audit entry written together with the change
  // (residency/policy_store.h). Stored records leave it out and the store
  // fills it in from the version's index key when it reads them; absent for
  // changes stored before changes were audited.
  std::optional<uint64_t> audit_index;
  // The tenant the actor's token is bound to ("" for an unbound token), for
  // changes made through PutRegion and PutTenant; absent for bundle changes
  // and for changes stored before it was recorded.
  std::optional<std::string> actor_tenant;
};

// The differences between `before` (absent for a new entity) and `after`.
std::vector<FieldChange> DiffRegion(const std::optional<Region>& before, const Region& after);
std::vector<FieldChange> DiffTenant(const std::optional<Tenant>& before, const Tenant& after);

nlohmann::json ChangeRecordToJson(const ChangeRecord& r);
StatusOr<ChangeRecord> ChangeRecordFromJson(const nlohmann::json& j);

}  // namespace geoledger::residency
