// The compiled form of the policy that decisions read: region ids interned
// to small integers, per-category region bitsets, safeguards reduced to what
// the rules compare. Built by SnapshotBuilder (snapshot.h); immutable once
// published. Not for use outside residency/.
#pragma once

#include <algorithm>
#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "residency/jurisdictions.h"
#include "residency/model.h"

namespace geoledger::residency {

using RegionIndex = uint8_t;
static_assert(kMaxRegions <= 256, "RegionIndex is 8 bits");
using RegionMask = std::bitset<kMaxRegions>;

// Two ASCII letters packed into 16 bits, so jurisdiction checks compare ints.
inline uint16_t CountryKey(std::string_view code) {
  return code.size() == 2 ? static_cast<uint16_t>((static_cast<uint8_t>(code[0]) << 8) |
                                                  static_cast<uint8_t>(code[1]))
                          : 0;
}

struct CompiledRegion {
  RegionIndex index = 0;
  std::string id;
  uint16_t country = 0;          // CountryKey
  bool eea = false;
  const Adequacy* adequacy = nullptr;  // owned by the Jurisdictions table
  std::string_view adequacy_basis;     // "gdpr:art45:<CC>", in the Jurisdictions table
};

// A legal basis string, shared by every compiled tenant that declares it
// (StringPool, snapshot.h).
using SharedString = std::shared_ptr<const std::string>;

struct CompiledSafeguard {
  uint16_t country = 0;
  Mechanism mechanism = Mechanism::kScc;
  Day valid_from = 0;
  Day valid_until = INT32_MAX;   // inclusive
  SharedString legal_basis;      // "gdpr:art46:scc:<ref>" etc.
};

// A dated certification, for one jurisdiction whose adequacy decision
// requires it (the undated form is CompiledTenant::dpf_certified).
struct CompiledCertification {
  uint16_t country = 0;
  Day valid_from = 0;
  Day valid_until = 0;           // inclusive
  SharedString legal_basis;      // "gdpr:art45:<CC>:dpf:<ref>"
};

// What a tenant declared for transfers outside the EEA.
struct CompiledTransferTerms {
  std::vector<CompiledSafeguard> safeguards;  // in declared order
  std::vector<CompiledCertification> certifications;  // in declared order
  std::vector<uint16_t> adequacy_opt_out;     // CountryKey, sorted
  bool OptedOut(uint16_t country) const {
    return std::binary_search(adequacy_opt_out.begin(), adequacy_opt_out.end(), country);
  }
};

// Field order puts what every decision reads next to the tenant id in the
// hash table slot, so a lookup touches as few cache lines as possible.
struct CompiledTenant {
  RegionIndex home = 0;
  TenantStatus status = TenantStatus::kActive;
  bool dpf_certified = false;  // the undated declaration
  bool operational_pinned = false;  // tenant listed allowed_regions.operational
  // Regions each category may be stored in; the home region's bit is always
  // set, and absent categories carry their defaults (rules doc).
  std::array<RegionMask, kCategoryCount> allowed;
  std::shared_ptr<const CompiledTransferTerms> transfer;  // null when it declared none
};

}  // namespace geoledger::residency
