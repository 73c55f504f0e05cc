#include "residency/history.h"

#include <algorithm>
#include <set>

namespace geoledger::residency {
namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ",";
    out += s;
  }
  return out;
}

std::string RenderSafeguard(const Safeguard& s) {
  std::string out = s.jurisdiction + "/" + std::string(MechanismName(s.mechanism)) + "/" +
                    s.reference + "/" + FormatDate(s.valid_from) + "..";
  if (s.valid_until) out += FormatDate(*s.valid_until);
  return out;
}

std::string RenderCertification(const Certification& c) {
  if (!c.dated()) return c.name;
  return c.name + "/" + c.reference + "/" + FormatDate(c.valid_from) + ".." + FormatDate(c.valid_until);
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

void Add(std::vector<FieldChange>* out, std::string field, std::string from, std::string to) {
  if (from != to) out->push_back({std::move(field), std::move(from), std::move(to)});
}

}  // namespace

std::vector<FieldChange> DiffRegion(const std::optional<Region>& before, const Region& after) {
  std::vector<FieldChange> out;
  Add(&out, "country", before ? before->country : "", after.country);
  Add(&out, "name", before ? before->name : "", after.name);
  return out;
}

std::vector<FieldChange> DiffTenant(const std::optional<Tenant>& before, const Tenant& after) {
  std::vector<FieldChange> out;
  Add(&out, "home_region", before ? before->home_region : "", after.home_region);
  Add(&out, "status", before ? std::string(TenantStatusName(before->status)) : "",
      std::string(TenantStatusName(after.status)));
  for (Category c : kAllCategories) {
    auto render = [c](const std::optional<Tenant>& t) -> std::string {
      if (!t) return "";
      auto it = t->allowed_regions.find(c);
      return it == t->allowed_regions.end() ? "(default)" : "[" + Join(Sorted(it->second)) + "]";
    };
    std::string from = render(before), to = render(after);
    if (!before && to == "(default)") continue;
    Add(&out, "allowed_regions." + std::string(CategoryName(c)), from, to);
  }
  // Safeguards as a set: report what was removed and what was added.
  std::set<std::string> old_set, new_set;
  if (before)
    for (const auto& s : before->safeguards) old_set.insert(RenderSafeguard(s));
  for (const auto& s : after.safeguards) new_set.insert(RenderSafeguard(s));
  std::vector<std::string> removed, added;
  std::set_difference(old_set.begin(), old_set.end(), new_set.begin(), new_set.end(),
                      std::back_inserter(removed));
  std::set_difference(new_set.begin(), new_set.end(), old_set.begin(), old_set.end(),
                      std::back_inserter(added));
  if (!removed.empty() || !added.empty()) {
    out.push_back({"safeguards", Join(removed), Join(added)});
  } else {
    // The same safeguards in another order (or repeated) are a change too:
    // the first active one for a country is the legal basis a transfer names.
    std::vector<std::string> old_list, new_list;
    if (before)
      for (const auto& s : before->safeguards) old_list.push_back(RenderSafeguard(s));
    for (const auto& s : after.safeguards) new_list.push_back(RenderSafeguard(s));
    if (old_list != new_list) out.push_back({"safeguards.order", Join(old_list), Join(new_list)});
  }
  // Compared as lists, in declared order: the first dated declaration that
  // covers a day is the basis a transfer names. Compared field by field, not
  // as rendered text, which a reference holding ',' or '/' could make equal.
  if ((before ? before->certifications : std::vector<Certification>{}) != after.certifications) {
    auto certifications = [](const Tenant& t) {
      std::vector<std::string> items;
      for (const Certification& c : t.certifications) items.push_back(RenderCertification(c));
      return Join(items);
    };
    out.push_back({"certifications", before ? certifications(*before) : "", certifications(after)});
  }
  Add(&out, "adequacy_opt_out", before ? Join(Sorted(before->adequacy_opt_out)) : "",
      Join(Sorted(after.adequacy_opt_out)));
  return out;
}

nlohmann::json ChangeRecordToJson(const ChangeRecord& r) {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : r.changes) changes.push_back({{"field", c.field}, {"from", c.from}, {"to", c.to}});
  nlohmann::json j = {{"version", r.version}, {"time_ms", r.unix_millis}, {"actor", r.actor},
                      {"kind", r.kind},       {"id", r.id},               {"created", r.created},
                      {"changes", std::move(changes)}};
  if (r.audit_index) j["audit_index"] = *r.audit_index;
  if (r.actor_tenant) j["actor_tenant"] = *r.actor_tenant;
  return j;
}

StatusOr<ChangeRecord> ChangeRecordFromJson(const nlohmann::json& j) {
  try {
    ChangeRecord r;
    r.version = j.at("version").get<uint64_t>();
    r.unix_millis = j.at("time_ms").get<int64_t>();
    r.actor = j.at("actor").get<std::string>();
    r.kind = j.at("kind").get<std::string>();
    r.id = j.at("id").get<std::string>();
    r.created = j.at("created").get<bool>();
    for (const auto& c : j.at("changes"))
      r.changes.push_back({c.at("field").get<std::string>(), c.at("from").get<std::string>(),
                           c.at("to").get<std::string>()});
    if (j.contains("audit_index")) r.audit_index = j.at("audit_index").get<uint64_t>();
    if (j.contains("actor_tenant")) r.actor_tenant = j.at("actor_tenant").get<std::string>();
    return r;
  } catch (const nlohmann::json::exception&) {
    return DataLoss("residency history: malformed record");
  }
}

}  // namespace geoledger::residency
