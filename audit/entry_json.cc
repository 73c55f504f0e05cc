#include "audit/entry_json.h"

#include "common/encoding.h"

namespace geoledger::audit {

nlohmann::json EntryFieldsJson(const v1::AuditEntry& entry) {
  nlohmann::json j = {{"index", entry.index()},       {"timestamp_unix_ms", entry.timestamp_unix_ms()},
                      {"region", entry.region()},     {"tenant", entry.tenant()},
                      {"actor", entry.actor()},       {"action", entry.action()},
                      {"resource", entry.resource()}, {"outcome", entry.outcome()}};
  if (!entry.subject_pseudonym().empty()) j["subject_pseudonym"] = Base64Encode(entry.subject_pseudonym());
  nlohmann::json details = nlohmann::json::object();
  for (const auto& d : entry.details()) details[d.key()] = d.value();
  j["details"] = details;
  if (entry.has_sealed()) j["sealed_key_id"] = entry.sealed().key_id();
  j["prev_entry_hash"] = Base64Encode(entry.prev_entry_hash());
  return j;
}

}  // namespace geoledger::audit
