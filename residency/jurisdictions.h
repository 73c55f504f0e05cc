// The jurisdiction table: which ISO 3166-1 countries are in the EEA, which
// have an EU adequacy decision (with dates and scope), and, by elimination,
// which are third countries. The table is data (residency/data/
// jurisdictions.yaml, compiled into the library) so that a legal change is a
// reviewed data edit with a cited source, not a code change.
//
// Immutable after construction; safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "residency/date.h"

namespace geoledger::residency {

// An Art. 45 adequacy decision as the engine applies it.
struct Adequacy {
  std::string code;            // ISO 3166-1 alpha-2
  std::string name;
  std::string decision;        // legal reference, e.g. "Commission Implementing Decision (EU) 2019/419"
  Day date = 0;                // date of the decision
  Day in_force_from = 0;
  std::optional<Day> in_force_until;
  std::string scope;           // "full", "commercial-organisations", "certified-organisations", ...
  std::string requires_declaration;  // non-empty: the tenant must declare this (e.g. "dpf")
  std::string source;          // EUR-Lex URL
  std::string legal_basis;     // "gdpr:art45:<code>"

  bool InForceOn(Day d) const {
    return d >= in_force_from && (!in_force_until || d <= *in_force_until);
  }
};

class Jurisdictions {
 public:
  // Parses the YAML table. kInvalidArgument names the first bad entry.
  static StatusOr<std::shared_ptr<const Jurisdictions>> Parse(std::string_view yaml);

  // True for an officially assigned ISO 3166-1 alpha-2 code (upper case).
  bool IsCountry(std::string_view code) const;
  // True for an EU/EEA state or a separately coded territory where the GDPR
  // applies as part of a member state.
  bool IsEea(std::string_view code) const;
  // The adequacy decision for `code`, or nullptr (EEA states have none).
  const Adequacy* FindAdequacy(std::string_view code) const;

  // The 30 EEA states (27 EU + IS, LI, NO), in file order.
  const std::vector<std::string>& eea_states() const { return eea_states_; }
  const std::vector<Adequacy>& adequacy() const { return adequacy_; }
  size_t country_count() const { return countries_.size(); }

 private:
  Jurisdictions() = default;
  std::unordered_set<std::string> countries_;
  std::unordered_set<std::string> eea_;  // states and territories
  std::vector<std::string> eea_states_;
  std::vector<Adequacy> adequacy_;
  std::unordered_map<std::string, size_t> adequacy_index_;
};

// The table compiled into the library, parsed on first use and then shared.
// Fails only if the embedded file is malformed (a build defect, caught by
// tests/residency/jurisdictions_test.cc).
StatusOr<std::shared_ptr<const Jurisdictions>> BuiltinJurisdictions();

// The raw embedded YAML (for diagnostics and tests).
std::string_view BuiltinJurisdictionsYaml();

}  // namespace geoledger::residency
