// The residency policy model: regions, tenants, data categories, operations
// and transfer safeguards, with strict JSON parsing (the bodies of
// PUT /v1/regions/{region} and PUT /v1/tenants/{tenant}) and rendering.
//
// Parsing never throws and never partially succeeds: a body is either fully
// valid or rejected with kInvalidArgument naming the field, the entity id and
// what was wrong. Policy fields are not personal data, so messages may quote
// them (ids, region names, safeguard references).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "residency/date.h"
#include "residency/jurisdictions.h"

namespace geoledger::residency {

enum class Category : uint8_t { kPersonal, kSpecial, kPseudonymised, kAnonymous, kOperational };
inline constexpr size_t kCategoryCount = 5;
inline constexpr std::array<Category, kCategoryCount> kAllCategories = {
    Category::kPersonal, Category::kSpecial, Category::kPseudonymised, Category::kAnonymous,
    Category::kOperational};

enum class Operation : uint8_t {
  kStore, kProcess, kRead, kReplicate, kBackup, kTransfer, kSupportAccess
};
inline constexpr size_t kOperationCount = 7;

enum class TenantStatus : uint8_t { kActive, kSuspended };
enum class Mechanism : uint8_t { kScc, kBcr, kArt49 };

// Wire names: "personal", "special", "pseudonymised", "anonymous",
// "operational"; "store", "process", "read", "replicate", "backup",
// "transfer", "support_access"; "active", "suspended"; "scc", "bcr", "art49".
std::string_view CategoryName(Category c);
std::string_view OperationName(Operation o);
std::string_view TenantStatusName(TenantStatus s);
std::string_view MechanismName(Mechanism m);
std::optional<Category> ParseCategory(std::string_view name);
std::optional<Operation> ParseOperation(std::string_view name);
std::optional<TenantStatus> ParseTenantStatus(std::string_view name);
std::optional<Mechanism> ParseMechanism(std::string_view name);

// Limits. kMaxRegions bounds the compiled per-category region bitsets.
inline constexpr size_t kMaxRegions = 128;
inline constexpr size_t kMaxSafeguards = 32;
inline constexpr size_t kMaxCertifications = 8;
inline constexpr size_t kMaxAdequacyOptOuts = 32;
inline constexpr size_t kMaxIdBytes = 64;
inline constexpr size_t kMaxNameBytes = 128;
inline constexpr size_t kMaxReferenceBytes = 200;

// Region ids: 1..64 of [a-z0-9-], starting with a letter or digit
// ("eu-west-1"). Tenant ids: 1..64 of [A-Za-z0-9._-], starting with a letter
// or digit. Neither may contain '/', which the store uses as a separator.
bool IsValidRegionId(std::string_view id);
bool IsValidTenantId(std::string_view id);

struct Region {
  std::string id;
  std::string country;  // ISO 3166-1 alpha-2, upper case
  std::string name;
  bool operator==(const Region&) const = default;
};

struct Safeguard {
  std::string jurisdiction;  // ISO 3166-1 alpha-2 of the destination, never an EEA state
  Mechanism mechanism = Mechanism::kScc;
  std::string reference;     // contract / BCR approval / derogation reference
  Day valid_from = 0;
  std::optional<Day> valid_until;  // inclusive; none = open-ended
  bool operator==(const Safeguard&) const = default;
  bool ActiveOn(Day d) const { return d >= valid_from && (!valid_until || d <= *valid_until); }
};

// Declarations a tenant can make about recipients. "dpf": the organisation
// operating the tenant's US regions is certified under the EU-US Data
// Privacy Framework, which the DPF adequacy decision requires.
inline constexpr std::string_view kCertificationDpf = "dpf";
// A certification lasts a year before it must be renewed (DPF Principles,
// supplemental principle 6), so a dated declaration covers at most this.
inline constexpr Day kMaxCertificationDays = 366;

// A declared certification. The dated form names the certified organisation
// as listed and the period its listing covers (JSON: {"name":"dpf",
// "reference":..., "valid_from":..., "valid_until":...}); the undated form
// (JSON: the string "dpf", reference empty) is what policies written before
// the dated one hold, and applies on every day.
struct Certification {
  std::string name;       // kCertificationDpf
  std::string reference;  // empty: the undated form
  Day valid_from = 0;     // dated form only
  Day valid_until = 0;    // dated form only, inclusive
  bool operator==(const Certification&) const = default;
  bool dated() const { return !reference.empty(); }
  bool ActiveOn(Day d) const { return !dated() || (d >= valid_from && d <= valid_until); }
};

struct Tenant {
  std::string id;
  std::string home_region;
  TenantStatus status = TenantStatus::kActive;
  // Regions a category may be stored in, beyond the home region (which is
  // always allowed). A category absent here uses its default
  // (compliance-docs/residency-rules.md).
  std::map<Category, std::vector<std::string>> allowed_regions;
  std::vector<Safeguard> safeguards;
  // Either one undated declaration or dated ones in declared order, never
  // both.
  std::vector<Certification> certifications;
  // Countries whose adequacy decision the tenant does not rely on (its data
  // falls outside the decision's scope, e.g. the Korean decision's
  // exclusions): sorted, no duplicates. A destination there needs a
  // safeguard, as in a third country.
  std::vector<std::string> adequacy_opt_out;
  bool operator==(const Tenant&) const = default;
};

// A whole policy: what bundles carry and what the store rebuilds from.
struct PolicyDocument {
  uint64_t version = 0;
  std::vector<Region> regions;  // sorted by id
  std::vector<Tenant> tenants;  // sorted by id
};

// Body of PUT /v1/regions/{id}: {"country":"IE","name":"Ireland"}.
StatusOr<Region> RegionFromJson(std::string_view id, const nlohmann::json& body,
                                const Jurisdictions& jurisdictions);
nlohmann::json RegionToJson(const Region& region);  // {"id","country","name"}

// Body of PUT /v1/tenants/{id}. Checks syntax, enums, dates, limits and
// country codes; region references are checked by CheckTenantReferences.
StatusOr<Tenant> TenantFromJson(std::string_view id, const nlohmann::json& body,
                                const Jurisdictions& jurisdictions);
nlohmann::json TenantToJson(const Tenant& tenant);  // includes "id"

// kInvalidArgument unless exists(id) holds for the home region and every
// allowed region (a predicate, so callers can check against any container).
template <typename RegionExists>
Status CheckTenantReferences(const Tenant& tenant, const RegionExists& exists);

// An entity's tag: the SHA-256 (hex) of its canonical JSON (DumpJson of
// RegionToJson or TenantToJson): what the store keeps and a bundle signs.
// The audit entry of a change names it, and GET answers it as the ETag.
std::string EntityTag(const nlohmann::json& entity);

// Parses a JSON text without throwing; kInvalidArgument on malformed input.
StatusOr<nlohmann::json> ParseJson(std::string_view text, std::string_view what);
// Compact JSON (object keys sorted); invalid UTF-8 is replaced, never thrown.
std::string DumpJson(const nlohmann::json& value);

// ---- implementation of the template ----
template <typename RegionExists>
Status CheckTenantReferences(const Tenant& tenant, const RegionExists& exists) {
  const std::string who = "tenant " + tenant.id + ": ";
  if (!exists(tenant.home_region))
    return InvalidArgument(who + "home_region: unknown region \"" + tenant.home_region + "\"");
  for (const auto& [category, regions] : tenant.allowed_regions) {
    for (size_t i = 0; i < regions.size(); ++i) {
      if (!exists(regions[i]))
        return InvalidArgument(who + "allowed_regions." + std::string(CategoryName(category)) +
                               "[" + std::to_string(i) + "]: unknown region \"" + regions[i] +
                               "\"");
    }
  }
  return Status::Ok();
}

}  // namespace geoledger::residency
