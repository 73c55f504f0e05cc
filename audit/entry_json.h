// An audit entry's fields as JSON: what GET /v1/audit/entries shows of each
// entry and what `geoledger audit verify-inclusion` prints of a verified one.
#pragma once

#include <nlohmann/json.hpp>

#include "geoledger/v1/audit.pb.h"

namespace geoledger::audit {

// index, timestamp_unix_ms, region, tenant, actor, action, resource,
// outcome, subject_pseudonym (base64, when set), details, sealed_key_id
// (when sealed) and prev_entry_hash (base64). Not the sealed ciphertext.
nlohmann::json EntryFieldsJson(const v1::AuditEntry& entry);

}  // namespace geoledger::audit
