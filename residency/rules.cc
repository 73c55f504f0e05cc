#include "residency/rules.h"

#include <algorithm>
#include <array>

namespace geoledger::residency {
namespace {

constexpr std::array<std::string_view, 10> kReasonCodes = {
    "allowed",          "tenant-unknown",     "tenant-suspended",
    "category-unknown", "operation-unknown",  "region-unknown",
    "region-not-allowed", "special-outside-home", "no-transfer-basis",
    "derogation-not-systematic"};
static_assert(kReasonCodes.size() == static_cast<size_t>(Reason::kDerogationNotSystematic) + 1,
              "every Reason has a code");

Decision Deny(Reason reason, const RuleInput& in, const RuleOptions& o) {
  Decision d;
  d.allow = false;
  d.reason = reason;
  d.legal_basis = kBasisNone;
  d.route_region = in.home->index != in.target->index ? in.home->id : std::string_view();
  d.ttl_s = o.deny_ttl_s;
  return d;
}

// An allow is cached no longer than the basis it rests on stays valid: a
// safeguard that ends today must not be served from a cache tomorrow.
Decision Allow(std::string_view basis, const RuleInput& in, const RuleOptions& o,
               Day valid_until = INT32_MAX) {
  Decision d;
  d.allow = true;
  d.reason = Reason::kAllowed;
  d.legal_basis = basis;
  d.route_region = in.target->id;
  d.ttl_s = o.allow_ttl_s;
  if (valid_until != INT32_MAX) {
    const int64_t end = (static_cast<int64_t>(valid_until) + 1) * kSecondsPerDay;
    const int64_t left = std::max<int64_t>(end - in.unix_seconds, 0);
    d.ttl_s = static_cast<uint32_t>(std::min<int64_t>(d.ttl_s, left));
  }
  return d;
}

// Art. 45 first, then Art. 46/47 safeguards in declared order, then Art. 49
// derogations (Art. 49(1): only where neither of the others applies).
Decision TransferBasis(const RuleInput& in, const RuleOptions& o) {
  const Day today = DayOf(in.unix_seconds);
  const CompiledRegion& target = *in.target;
  const CompiledTransferTerms* terms = in.tenant->transfer.get();
  if (const Adequacy* a = target.adequacy;
      a != nullptr && a->InForceOn(today) && (terms == nullptr || !terms->OptedOut(target.country))) {
    const Day decision_until = a->in_force_until ? *a->in_force_until : INT32_MAX;
    // A condition the tenant cannot have declared is unmet: fail closed.
    const std::string& condition = a->requires_declaration;
    if (condition.empty() || (condition == kCertificationDpf && in.tenant->dpf_certified))
      return Allow(target.adequacy_basis, in, o, decision_until);
    if (terms != nullptr) {
      for (const CompiledCertification& c : terms->certifications) {
        if (c.country != target.country || today < c.valid_from || today > c.valid_until) continue;
        return Allow(*c.legal_basis, in, o, std::min(decision_until, c.valid_until));
      }
    }
  }
  const CompiledSafeguard* derogation = nullptr;
  if (terms != nullptr) {
    for (const CompiledSafeguard& s : terms->safeguards) {
      if (s.country != target.country || today < s.valid_from || today > s.valid_until) continue;
      if (s.mechanism == Mechanism::kArt49) {
        if (!derogation) derogation = &s;
        continue;
      }
      return Allow(*s.legal_basis, in, o, s.valid_until);
    }
  }
  if (derogation) {
    // Derogations are for occasional, non-repetitive transfers (Art. 49(1),
    // recitals 111 and 113; EDPB Guidelines 2/2018), so they never justify
    // keeping data at rest in a third country, nor processing it there,
    // which is the region's ordinary workload: only the transfers a request
    // asks for one at a time (read, transfer, support access).
    if (IsResidencyOperation(in.operation) || in.operation == Operation::kProcess)
      return Deny(Reason::kDerogationNotSystematic, in, o);
    return Allow(*derogation->legal_basis, in, o, derogation->valid_until);
  }
  return Deny(Reason::kNoTransferBasis, in, o);
}

}  // namespace

std::string_view ReasonCode(Reason r) { return kReasonCodes[static_cast<size_t>(r)]; }

Decision ApplyRules(const RuleInput& in, const RuleOptions& o) {
  const CompiledTenant& t = *in.tenant;
  if (t.status != TenantStatus::kActive) {
    Decision d = Deny(Reason::kTenantSuspended, in, o);
    d.route_region = {};
    return d;
  }
  const size_t c = static_cast<size_t>(in.category);
  const bool in_allowed = t.allowed[c].test(in.target->index);
  switch (in.category) {
    case Category::kAnonymous:
      return Allow(kBasisNotPersonalData, in, o);
    case Category::kOperational:
      // Not personal data; pinning applies only to data at rest, and only
      // when the tenant asked for it.
      if (!t.operational_pinned || !IsResidencyOperation(in.operation))
        return Allow(kBasisNotPersonalData, in, o);
      if (!in_allowed) return Deny(Reason::kRegionNotAllowed, in, o);
      return Allow(kBasisTenantPinning, in, o);
    case Category::kSpecial:
      if (!in_allowed) return Deny(Reason::kSpecialOutsideHome, in, o);
      break;
    case Category::kPersonal:
    case Category::kPseudonymised:
      if (!in_allowed && IsResidencyOperation(in.operation))
        return Deny(Reason::kRegionNotAllowed, in, o);
      break;
  }
  if (in.target->eea) return Allow(in_allowed ? kBasisTenantPinning : kBasisEea, in, o);
  return TransferBasis(in, o);
}

}  // namespace geoledger::residency
