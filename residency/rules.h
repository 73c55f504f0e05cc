// The residency rules: one pure function from (tenant, category, operation,
// destination region, date) to a Decision. The rules, their order and every
// reason code are written out in compliance-docs/residency-rules.md; keep the
// two in step.
//
// Decide allocates nothing: every string in a Decision is static or points
// into the policy snapshot that produced it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "residency/compiled.h"
#include "residency/model.h"

namespace geoledger::residency {

// Stable reason codes (wire names via ReasonCode). Never renumber or rename:
// gateways and dashboards match on them.
enum class Reason : uint8_t {
  kAllowed,
  kTenantUnknown,
  kTenantSuspended,
  kCategoryUnknown,
  kOperationUnknown,
  kRegionUnknown,
  kRegionNotAllowed,        // store/replicate/backup outside the category's allowed regions
  kSpecialOutsideHome,      // special-category data outside its allowed regions (home by default)
  kNoTransferBasis,         // outside the EEA with no adequacy decision or active safeguard
  kDerogationNotSystematic, // only an Art. 49 derogation, which covers neither storage nor processing
};
std::string_view ReasonCode(Reason r);

// Static legal-basis strings; safeguard and adequacy bases are built per entry.
inline constexpr std::string_view kBasisNone = "";
inline constexpr std::string_view kBasisEea = "eea";
inline constexpr std::string_view kBasisTenantPinning = "tenant-pinning";
inline constexpr std::string_view kBasisNotPersonalData = "not-personal-data";

// The strings of a Decision are static or point into the snapshot that made
// it: valid while that snapshot lives, which a caller of the engine ensures
// by holding its Engine::Read. OwnedDecision keeps them beyond.
struct Decision {
  bool allow = false;
  Reason reason = Reason::kTenantUnknown;
  // Why the answer is lawful (allow), or the basis that failed to apply
  // (deny: empty). E.g. "gdpr:art45:JP", "gdpr:art46:scc:<ref>".
  std::string_view legal_basis;
  // Allow: the target region. Deny: the tenant's home region as a hint when
  // it differs from the target, else empty. A hint is not a decision.
  std::string_view route_region;
  uint64_t policy_version = 0;
  uint32_t ttl_s = 0;  // how long a gateway may cache this answer
};

// A Decision that owns its strings.
struct OwnedDecision {
  OwnedDecision() = default;
  explicit OwnedDecision(const Decision& d)
      : allow(d.allow), reason(d.reason), legal_basis(d.legal_basis), route_region(d.route_region),
        policy_version(d.policy_version), ttl_s(d.ttl_s) {}
  bool allow = false;
  Reason reason = Reason::kTenantUnknown;
  std::string legal_basis;
  std::string route_region;
  uint64_t policy_version = 0;
  uint32_t ttl_s = 0;
};

struct RuleOptions {
  uint32_t allow_ttl_s = 60;
  uint32_t deny_ttl_s = 5;
};

// Inputs already resolved against a snapshot. `tenant` and `target` are
// non-null; `home` is the tenant's home region.
struct RuleInput {
  const CompiledTenant* tenant;
  const CompiledRegion* target;
  const CompiledRegion* home;
  Category category;
  Operation operation;
  int64_t unix_seconds;
};

// Applies the rules for a known, active-or-suspended tenant and a known
// region. Unknown tenants, categories, operations and regions are answered
// by the snapshot before it calls this (they need no lookups).
Decision ApplyRules(const RuleInput& in, const RuleOptions& options);

// True for operations that put data at rest in the destination.
inline bool IsResidencyOperation(Operation op) {
  return op == Operation::kStore || op == Operation::kReplicate || op == Operation::kBackup;
}

}  // namespace geoledger::residency
