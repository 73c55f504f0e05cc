// The stored bytes of one audit entry, written directly: the protobuf wire
// encoding of geoledger.v1.AuditEntry (proto/geoledger/v1/audit.proto) that
// DeterministicSerialize gives for the same fields — fields in number order,
// proto3 defaults (zero, empty) left out, `details` in the event's key order,
// `sealed` present exactly when the event has a sealed key id. The ledger's
// writer builds every entry this way, without filling a message first; the
// tests hold it byte for byte to protobuf's own encoding. Private to audit/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "audit/ledger.h"
#include "geoledger/v1/audit.pb.h"

namespace geoledger::audit::internal {

// Replaces `out` with the entry's bytes.
void EncodeEntry(uint64_t index, int64_t timestamp_unix_ms, std::string_view region, const AuditEvent& event,
                 std::string_view prev_entry_hash, std::string& out);

// The same entry as a protobuf message (`out` is cleared first): the
// reference EncodeEntry is held to, through DeterministicSerialize.
void FillEntryMessage(uint64_t index, int64_t timestamp_unix_ms, std::string_view region, const AuditEvent& event,
                      std::string_view prev_entry_hash, v1::AuditEntry* out);

}  // namespace geoledger::audit::internal
