#include "audit/internal/entry_encoding.h"

namespace geoledger::audit::internal {
namespace {

constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

void PutVarint(uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutTag(uint32_t field, uint32_t wire_type, std::string& out) { PutVarint((field << 3) | wire_type, out); }

// A string or bytes field; proto3 leaves an empty one out.
void PutBytes(uint32_t field, std::string_view v, std::string& out) {
  if (v.empty()) return;
  PutTag(field, kLengthDelimited, out);
  PutVarint(v.size(), out);
  out.append(v);
}

// Encoded size of PutBytes(field, v) for fields 1-15 (one-byte tags).
size_t BytesSize(std::string_view v) { return v.empty() ? 0 : 1 + VarintSize(v.size()) + v.size(); }

// A message field of two string/bytes fields 1 and 2 (Detail, SealedDetails).
void PutPair(uint32_t field, std::string_view first, std::string_view second, std::string& out) {
  PutTag(field, kLengthDelimited, out);
  PutVarint(BytesSize(first) + BytesSize(second), out);
  PutBytes(1, first, out);
  PutBytes(2, second, out);
}

}  // namespace

void EncodeEntry(uint64_t index, int64_t timestamp_unix_ms, std::string_view region, const AuditEvent& e,
                 std::string_view prev_entry_hash, std::string& out) {
  // At most 11 bytes of tag and varint per field (one-byte tags, ten-byte
  // varints): the two numbers, ten string fields and the `sealed` wrapper,
  // three per detail. One allocation per entry.
  size_t bound = 2 * 11 + region.size() + e.tenant.size() + e.actor.size() + e.action.size() + e.resource.size() +
                 e.outcome.size() + e.subject_pseudonym.size() + e.sealed_key_id.size() + e.sealed_ciphertext.size() +
                 prev_entry_hash.size() + 11 * 11;
  for (const auto& [key, value] : e.details) bound += key.size() + value.size() + 3 * 11;
  out.clear();
  out.reserve(bound);
  if (index != 0) {
    PutTag(1, kVarint, out);
    PutVarint(index, out);
  }
  if (timestamp_unix_ms != 0) {
    PutTag(2, kVarint, out);
    PutVarint(static_cast<uint64_t>(timestamp_unix_ms), out);  // int64: two's complement, ten bytes if negative
  }
  PutBytes(3, region, out);
  PutBytes(4, e.tenant, out);
  PutBytes(5, e.actor, out);
  PutBytes(6, e.action, out);
  PutBytes(7, e.resource, out);
  PutBytes(8, e.outcome, out);
  PutBytes(9, e.subject_pseudonym, out);
  for (const auto& [key, value] : e.details) PutPair(10, key, value, out);
  if (!e.sealed_key_id.empty()) PutPair(11, e.sealed_key_id, e.sealed_ciphertext, out);
  PutBytes(12, prev_entry_hash, out);
}

void FillEntryMessage(uint64_t index, int64_t timestamp_unix_ms, std::string_view region, const AuditEvent& e,
                      std::string_view prev_entry_hash, v1::AuditEntry* out) {
  out->Clear();
  out->set_index(index);
  out->set_timestamp_unix_ms(timestamp_unix_ms);
  out->set_region(std::string(region));
  out->set_tenant(e.tenant);
  out->set_actor(e.actor);
  out->set_action(e.action);
  out->set_resource(e.resource);
  out->set_outcome(e.outcome);
  out->set_subject_pseudonym(e.subject_pseudonym);
  for (const auto& [key, value] : e.details) {
    auto* d = out->add_details();
    d->set_key(key);
    d->set_value(value);
  }
  if (!e.sealed_key_id.empty()) {
    out->mutable_sealed()->set_key_id(e.sealed_key_id);
    out->mutable_sealed()->set_ciphertext(e.sealed_ciphertext);
  }
  out->set_prev_entry_hash(std::string(prev_entry_hash));
}

}  // namespace geoledger::audit::internal
