#include "residency/model.h"

#include <algorithm>
#include <set>

#include "common/encoding.h"
#include "crypto/hash.h"

namespace geoledger::residency {
namespace {

constexpr std::array<std::string_view, kCategoryCount> kCategoryNames = {
    "personal", "special", "pseudonymised", "anonymous", "operational"};
constexpr std::array<std::string_view, kOperationCount> kOperationNames = {
    "store", "process", "read", "replicate", "backup", "transfer", "support_access"};
constexpr std::array<std::string_view, 2> kStatusNames = {"active", "suspended"};
constexpr std::array<std::string_view, 3> kMechanismNames = {"scc", "bcr", "art49"};

template <typename E, size_t N>
std::optional<E> Lookup(const std::array<std::string_view, N>& names, std::string_view name) {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == name) return static_cast<E>(i);
  return std::nullopt;
}

template <size_t N>
std::string Choices(const std::array<std::string_view, N>& names) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i) out += i + 1 == N ? " or " : ", ";
    out += names[i];
  }
  return out;
}

bool IsIdChar(char c, bool allow_upper_dot_underscore) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') return true;
  return allow_upper_dot_underscore && ((c >= 'A' && c <= 'Z') || c == '.' || c == '_');
}

bool IsValidId(std::string_view id, bool tenant) {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  if (!IsIdChar(id[0], tenant) || id[0] == '-' || id[0] == '.' || id[0] == '_') return false;
  return std::all_of(id.begin(), id.end(), [&](char c) { return IsIdChar(c, tenant); });
}

// Error text for a JSON value that came from the caller, bounded in size.
std::string Quote(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

Status CheckKeys(const nlohmann::json& obj, std::initializer_list<std::string_view> allowed,
                 const std::string& who, const std::string& path) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      return InvalidArgument(who + "unknown field \"" + path + key + "\"");
  }
  return Status::Ok();
}

StatusOr<std::string> StringField(const nlohmann::json& obj, const char* field,
                                  const std::string& who, const std::string& path,
                                  size_t max_bytes) {
  auto it = obj.find(field);
  if (it == obj.end()) return InvalidArgument(who + path + field + ": required");
  if (!it->is_string()) return InvalidArgument(who + path + field + ": must be a string");
  const std::string& s = it->get_ref<const std::string&>();
  if (s.empty()) return InvalidArgument(who + path + field + ": must not be empty");
  if (s.size() > max_bytes)
    return InvalidArgument(who + path + field + ": longer than " + std::to_string(max_bytes) +
                           " bytes");
  return s;
}

Status CheckCountry(const std::string& code, const Jurisdictions& j, const std::string& who,
                    const std::string& field) {
  if (!j.IsCountry(code))
    return InvalidArgument(who + field + ": \"" + code +
                           "\" is not an ISO 3166-1 alpha-2 country code");
  return Status::Ok();
}

StatusOr<Day> DateField(const nlohmann::json& obj, const char* field, const std::string& who,
                        const std::string& path) {
  GL_ASSIGN_OR_RETURN(std::string text, StringField(obj, field, who, path, 10));
  std::optional<Day> d = ParseDate(text);
  if (!d) return InvalidArgument(who + path + field + ": bad date \"" + text + "\" (want YYYY-MM-DD)");
  return *d;
}

// A reference names a contract, an approval or an organisation: printable,
// because legal bases that quote it travel in headers and log lines.
StatusOr<std::string> ReferenceField(const nlohmann::json& v, const std::string& who, const std::string& p) {
  GL_ASSIGN_OR_RETURN(std::string ref, StringField(v, "reference", who, p, kMaxReferenceBytes));
  for (char c : ref) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return InvalidArgument(who + p + "reference: control characters are not allowed");
  }
  return ref;
}

StatusOr<Safeguard> ParseSafeguard(const nlohmann::json& v, const Jurisdictions& j,
                                   const std::string& who, const std::string& path) {
  if (!v.is_object()) return InvalidArgument(who + path + ": must be an object");
  GL_RETURN_IF_ERROR(CheckKeys(
      v, {"jurisdiction", "mechanism", "reference", "valid_from", "valid_until"}, who, path + "."));
  Safeguard s;
  const std::string p = path + ".";
  GL_ASSIGN_OR_RETURN(s.jurisdiction, StringField(v, "jurisdiction", who, p, 2));
  GL_RETURN_IF_ERROR(CheckCountry(s.jurisdiction, j, who, p + "jurisdiction"));
  if (j.IsEea(s.jurisdiction))
    return InvalidArgument(who + p + "jurisdiction: " + s.jurisdiction +
                           " is in the EEA, where no transfer safeguard applies");
  GL_ASSIGN_OR_RETURN(std::string mechanism, StringField(v, "mechanism", who, p, 16));
  std::optional<Mechanism> m = ParseMechanism(mechanism);
  if (!m)
    return InvalidArgument(who + p + "mechanism: unknown mechanism \"" + mechanism + "\" (want " +
                           Choices(kMechanismNames) + ")");
  s.mechanism = *m;
  GL_ASSIGN_OR_RETURN(s.reference, ReferenceField(v, who, p));
  GL_ASSIGN_OR_RETURN(s.valid_from, DateField(v, "valid_from", who, p));
  if (v.contains("valid_until") && !v["valid_until"].is_null()) {
    GL_ASSIGN_OR_RETURN(Day until, DateField(v, "valid_until", who, p));
    if (until < s.valid_from)
      return InvalidArgument(who + p + "valid_until: before valid_from");
    s.valid_until = until;
  }
  return s;
}

// "dpf" (undated) or {"name":"dpf","reference":...,"valid_from":...,
// "valid_until":...}: valid_until is required, at most kMaxCertificationDays
// after valid_from, because a listing must be renewed every year.
StatusOr<Certification> ParseCertification(const nlohmann::json& v, const std::string& who,
                                           const std::string& path) {
  Certification c;
  if (v.is_string()) {
    if (v.get_ref<const std::string&>() != kCertificationDpf)
      return InvalidArgument(who + path + ": unknown certification " + Quote(v) + " (want dpf)");
    c.name = std::string(kCertificationDpf);
    return c;
  }
  if (!v.is_object()) return InvalidArgument(who + path + ": must be \"dpf\" or an object");
  GL_RETURN_IF_ERROR(CheckKeys(v, {"name", "reference", "valid_from", "valid_until"}, who, path + "."));
  const std::string p = path + ".";
  GL_ASSIGN_OR_RETURN(c.name, StringField(v, "name", who, p, 16));
  if (c.name != kCertificationDpf)
    return InvalidArgument(who + p + "name: unknown certification \"" + c.name + "\" (want dpf)");
  GL_ASSIGN_OR_RETURN(c.reference, ReferenceField(v, who, p));
  GL_ASSIGN_OR_RETURN(c.valid_from, DateField(v, "valid_from", who, p));
  GL_ASSIGN_OR_RETURN(c.valid_until, DateField(v, "valid_until", who, p));
  if (c.valid_until < c.valid_from) return InvalidArgument(who + p + "valid_until: before valid_from");
  if (c.valid_until - c.valid_from >= kMaxCertificationDays)
    return InvalidArgument(who + p + "valid_until: more than a year after valid_from (a listing is renewed yearly)");
  return c;
}

StatusOr<std::vector<std::string>> RegionList(const nlohmann::json& v, const std::string& who,
                                              const std::string& path) {
  if (!v.is_array()) return InvalidArgument(who + path + ": must be an array of region ids");
  if (v.size() > kMaxRegions)
    return InvalidArgument(who + path + ": too many entries (" + std::to_string(v.size()) +
                           " > " + std::to_string(kMaxRegions) + ")");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string at = path + "[" + std::to_string(i) + "]";
    if (!v[i].is_string() || !IsValidRegionId(v[i].get_ref<const std::string&>()))
      return InvalidArgument(who + at + ": bad region id " + Quote(v[i]));
    const std::string& id = v[i].get_ref<const std::string&>();
    if (!seen.insert(id).second) return InvalidArgument(who + at + ": duplicate region \"" + id + "\"");
    out.push_back(id);
  }
  return out;
}

}  // namespace

std::string_view CategoryName(Category c) { return kCategoryNames[static_cast<size_t>(c)]; }
std::string_view OperationName(Operation o) { return kOperationNames[static_cast<size_t>(o)]; }
std::string_view TenantStatusName(TenantStatus s) { return kStatusNames[static_cast<size_t>(s)]; }
std::string_view MechanismName(Mechanism m) { return kMechanismNames[static_cast<size_t>(m)]; }
std::optional<Category> ParseCategory(std::string_view n) { return Lookup<Category>(kCategoryNames, n); }
std::optional<Operation> ParseOperation(std::string_view n) { return Lookup<Operation>(kOperationNames, n); }
std::optional<TenantStatus> ParseTenantStatus(std::string_view n) { return Lookup<TenantStatus>(kStatusNames, n); }
std::optional<Mechanism> ParseMechanism(std::string_view n) { return Lookup<Mechanism>(kMechanismNames, n); }

bool IsValidRegionId(std::string_view id) { return IsValidId(id, false); }
bool IsValidTenantId(std::string_view id) { return IsValidId(id, true); }

StatusOr<Region> RegionFromJson(std::string_view id, const nlohmann::json& body,
                                const Jurisdictions& j) {
  if (!IsValidRegionId(id))
    return InvalidArgument("region: bad id (want 1-64 of a-z, 0-9 and '-')");
  const std::string who = "region " + std::string(id) + ": ";
  if (!body.is_object()) return InvalidArgument(who + "body must be a JSON object");
  GL_RETURN_IF_ERROR(CheckKeys(body, {"id", "country", "name"}, who, ""));
  if (body.contains("id") && (!body["id"].is_string() || body["id"].get<std::string>() != id))
    return InvalidArgument(who + "id: does not match the path");
  Region r;
  r.id = std::string(id);
  GL_ASSIGN_OR_RETURN(r.country, StringField(body, "country", who, "", 2));
  GL_RETURN_IF_ERROR(CheckCountry(r.country, j, who, "country"));
  GL_ASSIGN_OR_RETURN(r.name, StringField(body, "name", who, "", kMaxNameBytes));
  return r;
}

nlohmann::json RegionToJson(const Region& r) {
  return {{"id", r.id}, {"country", r.country}, {"name", r.name}};
}

StatusOr<Tenant> TenantFromJson(std::string_view id, const nlohmann::json& body,
                                const Jurisdictions& j) {
  if (!IsValidTenantId(id))
    return InvalidArgument("tenant: bad id (want 1-64 of A-Z, a-z, 0-9, '.', '_' and '-')");
  const std::string who = "tenant " + std::string(id) + ": ";
  if (!body.is_object()) return InvalidArgument(who + "body must be a JSON object");
  GL_RETURN_IF_ERROR(CheckKeys(
      body, {"id", "home_region", "status", "allowed_regions", "safeguards", "certifications", "adequacy_opt_out"},
      who, ""));
  if (body.contains("id") && (!body["id"].is_string() || body["id"].get<std::string>() != id))
    return InvalidArgument(who + "id: does not match the path");
  Tenant t;
  t.id = std::string(id);
  GL_ASSIGN_OR_RETURN(t.home_region, StringField(body, "home_region", who, "", kMaxIdBytes));
  if (!IsValidRegionId(t.home_region))
    return InvalidArgument(who + "home_region: bad region id \"" + t.home_region + "\"");
  GL_ASSIGN_OR_RETURN(std::string status, StringField(body, "status", who, "", 16));
  std::optional<TenantStatus> st = ParseTenantStatus(status);
  if (!st)
    return InvalidArgument(who + "status: unknown status \"" + status + "\" (want active or suspended)");
  t.status = *st;

  if (auto it = body.find("allowed_regions"); it != body.end()) {
    if (!it->is_object()) return InvalidArgument(who + "allowed_regions: must be an object");
    for (const auto& [name, list] : it->items()) {
      std::optional<Category> c = ParseCategory(name);
      if (!c)
        return InvalidArgument(who + "allowed_regions: unknown category \"" + name + "\" (want " +
                               Choices(kCategoryNames) + ")");
      if (*c == Category::kAnonymous)
        return InvalidArgument(who + "allowed_regions.anonymous: anonymous data is not pinned");
      GL_ASSIGN_OR_RETURN(t.allowed_regions[*c], RegionList(list, who, "allowed_regions." + name));
    }
  }
  if (auto it = body.find("safeguards"); it != body.end()) {
    if (!it->is_array()) return InvalidArgument(who + "safeguards: must be an array");
    if (it->size() > kMaxSafeguards)
      return InvalidArgument(who + "safeguards: too many entries (" + std::to_string(it->size()) +
                             " > " + std::to_string(kMaxSafeguards) + ")");
    for (size_t i = 0; i < it->size(); ++i) {
      GL_ASSIGN_OR_RETURN(Safeguard s,
                          ParseSafeguard((*it)[i], j, who, "safeguards[" + std::to_string(i) + "]"));
      t.safeguards.push_back(std::move(s));
    }
  }
  if (auto it = body.find("certifications"); it != body.end()) {
    if (!it->is_array()) return InvalidArgument(who + "certifications: must be an array");
    if (it->size() > kMaxCertifications)
      return InvalidArgument(who + "certifications: too many entries (" + std::to_string(it->size()) + " > " +
                             std::to_string(kMaxCertifications) + ")");
    bool undated = false;
    for (size_t i = 0; i < it->size(); ++i) {
      GL_ASSIGN_OR_RETURN(Certification c,
                          ParseCertification((*it)[i], who, "certifications[" + std::to_string(i) + "]"));
      // The undated form applies on every day, so a dated one beside it
      // would promise an end that never comes: refuse the mix.
      if (!t.certifications.empty() && c.dated() != t.certifications.front().dated())
        return InvalidArgument(who + "certifications[" + std::to_string(i) +
                               "]: the undated \"dpf\" and dated declarations cannot be combined");
      if (!c.dated()) {
        if (undated) continue;  // repeated: one is the same declaration
        undated = true;
      }
      t.certifications.push_back(std::move(c));
    }
  }
  if (auto it = body.find("adequacy_opt_out"); it != body.end()) {
    if (!it->is_array()) return InvalidArgument(who + "adequacy_opt_out: must be an array");
    if (it->size() > kMaxAdequacyOptOuts)
      return InvalidArgument(who + "adequacy_opt_out: too many entries (" + std::to_string(it->size()) + " > " +
                             std::to_string(kMaxAdequacyOptOuts) + ")");
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string p = "adequacy_opt_out[" + std::to_string(i) + "]";
      const auto& v = (*it)[i];
      if (!v.is_string()) return InvalidArgument(who + p + ": must be a country code");
      const std::string& code = v.get_ref<const std::string&>();
      GL_RETURN_IF_ERROR(CheckCountry(code, j, who, p));
      // Any other country: the table's adequacy decisions change over time,
      // and an opt-out stays valid (and fails closed) whichever apply.
      if (j.IsEea(code)) return InvalidArgument(who + p + ": " + code + " is in the EEA, where no transfer applies");
      t.adequacy_opt_out.push_back(code);
    }
    std::sort(t.adequacy_opt_out.begin(), t.adequacy_opt_out.end());
    t.adequacy_opt_out.erase(std::unique(t.adequacy_opt_out.begin(), t.adequacy_opt_out.end()),
                             t.adequacy_opt_out.end());
  }
  return t;
}

nlohmann::json TenantToJson(const Tenant& t) {
  nlohmann::json allowed = nlohmann::json::object();
  for (const auto& [c, regions] : t.allowed_regions) allowed[std::string(CategoryName(c))] = regions;
  nlohmann::json safeguards = nlohmann::json::array();
  for (const auto& s : t.safeguards) {
    nlohmann::json o = {{"jurisdiction", s.jurisdiction},
                        {"mechanism", MechanismName(s.mechanism)},
                        {"reference", s.reference},
                        {"valid_from", FormatDate(s.valid_from)}};
    if (s.valid_until) o["valid_until"] = FormatDate(*s.valid_until);
    safeguards.push_back(std::move(o));
  }
  nlohmann::json out = {{"id", t.id},
                        {"home_region", t.home_region},
                        {"status", TenantStatusName(t.status)},
                        {"allowed_regions", std::move(allowed)},
                        {"safeguards", std::move(safeguards)}};
  if (!t.certifications.empty()) {
    nlohmann::json certs = nlohmann::json::array();
    for (const Certification& c : t.certifications) {
      if (!c.dated()) {
        certs.push_back(c.name);
        continue;
      }
      certs.push_back({{"name", c.name},
                       {"reference", c.reference},
                       {"valid_from", FormatDate(c.valid_from)},
                       {"valid_until", FormatDate(c.valid_until)}});
    }
    out["certifications"] = std::move(certs);
  }
  // Absent when empty, so the canonical form (and a bundle's signed bytes)
  // of a tenant without it is what it was before the field existed.
  if (!t.adequacy_opt_out.empty()) {
    // Sorted and without duplicates whoever built the tenant, as the parser
    // keeps it: the canonical form a bundle signs.
    std::vector<std::string> codes = t.adequacy_opt_out;
    std::sort(codes.begin(), codes.end());
    codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
    out["adequacy_opt_out"] = std::move(codes);
  }
  return out;
}

std::string EntityTag(const nlohmann::json& entity) {
  const crypto::Sha256Digest d = crypto::Sha256(DumpJson(entity));
  return HexEncode(crypto::AsView(d));
}

StatusOr<nlohmann::json> ParseJson(std::string_view text, std::string_view what) {
  nlohmann::json v = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return InvalidArgument(std::string(what) + ": malformed JSON");
  return v;
}

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace geoledger::residency
