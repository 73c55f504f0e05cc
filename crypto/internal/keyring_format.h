// Storage keys, associated data and wire formats of the key hierarchy.
// Private to crypto/; compliance-docs/key-management.md §3 is the normative
// description.
#pragma once

#include <sodium.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/kv_store.h"
#include "common/status.h"
#include "crypto/aead.h"
#include "crypto/secret.h"
#include "geoledger/v1/keys.pb.h"

namespace geoledger::crypto::keyring_internal {

inline constexpr char kNs[] = "keys";
inline constexpr char kRootWrapLabel[] = "geoledger/kek-wrap/v1";
// Wire format tags: version 1, then 'D' (wrapped data key) or 'R' (record).
inline constexpr char kDataKeyTag[] = "\x01" "D";
inline constexpr char kRecordTag[] = "\x01" "R";
inline constexpr size_t kMaxRecordIdBytes = 256;

inline std::string Be32(uint32_t v) {
  std::string out(4, '\0');
  for (int i = 3; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}
inline uint32_t FromBe32(std::string_view s) {
  uint32_t v = 0;
  for (char c : s.substr(0, 4)) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// Storage keys. Tenant ids hold no '/' (CheckTenant), so prefixes are exact.
inline std::string StateKey(std::string_view t) { return "t/" + std::string(t) + "/state"; }
inline std::string KekKey(std::string_view t, uint32_t v) { return "t/" + std::string(t) + "/v/" + Be32(v); }
inline std::string SubjectPrefix(std::string_view t) { return "s/" + std::string(t) + "/"; }
inline std::string SubjectKey(std::string_view t, std::string_view p) { return SubjectPrefix(t) + std::string(p); }
inline std::string TombstoneKey(std::string_view t, std::string_view p, std::string_view key_id) {
  return "x/" + std::string(t) + "/" + std::string(p) + std::string(key_id);
}
// A purge owed for a deletion, named by a key unique to it (a shred's
// tombstone, a retirement's last retired version): written with the
// deletion, removed once the deleted values have left the database files.
inline constexpr char kPurgePrefix[] = "p/";
inline std::string PurgeKey(std::string_view owed) { return kPurgePrefix + std::string(owed); }

// Associated data: a label, then each field as be32(length) || bytes.
inline void Field(std::string& ad, std::string_view f) {
  ad += Be32(static_cast<uint32_t>(f.size()));
  ad.append(f);
}
inline std::string KekAd(std::string_view region, std::string_view tenant, uint32_t version) {
  std::string ad = "geoledger/kek/v1";
  Field(ad, region);
  Field(ad, tenant);
  Field(ad, Be32(version));
  return ad;
}
inline std::string DekAd(std::string_view region, std::string_view tenant, std::string_view pseudonym,
                         uint32_t kek_version, std::string_view key_id) {
  std::string ad = "geoledger/dek/v1";
  Field(ad, region);
  Field(ad, tenant);
  Field(ad, pseudonym);
  Field(ad, Be32(kek_version));
  Field(ad, key_id);
  return ad;
}
inline std::string DataKeyAd(std::string_view region, std::string_view tenant, std::string_view pseudonym,
                             std::string_view subject_key_id, std::string_view data_key_id) {
  std::string ad = "geoledger/datakey/v1";
  Field(ad, region);
  Field(ad, tenant);
  Field(ad, pseudonym);
  Field(ad, subject_key_id);
  Field(ad, data_key_id);
  return ad;
}
inline std::string RecordAd(std::string_view region, std::string_view tenant, std::string_view pseudonym,
                            std::string_view key_id, uint32_t kek_version, std::string_view record_id) {
  std::string ad = "geoledger/record/v1";
  Field(ad, region);
  Field(ad, tenant);
  Field(ad, pseudonym);
  Field(ad, key_id);
  Field(ad, Be32(kek_version));
  Field(ad, record_id);
  return ad;
}

inline Status CheckTenant(std::string_view t) {
  if (t.empty() || t.size() > 64 || t.find('/') != std::string_view::npos || t.find('\0') != std::string_view::npos)
    return InvalidArgument("keyring: tenant id must be 1-64 bytes without '/'");
  return Status::Ok();
}
inline Status CheckPseudonym(std::string_view p) {
  if (p.size() != 32) return InvalidArgument("keyring: subject pseudonym must be 32 bytes");
  return Status::Ok();
}

// Moves decrypted key bytes into guarded memory and wipes the heap copy.
inline SecretBytes TakeSecret(std::string&& plain) {
  SecretBytes out = SecretBytes::CopyFrom(plain);
  sodium_memzero(plain.data(), plain.size());
  return out;
}
inline std::string_view View(const SecretBytes& s) {
  return {reinterpret_cast<const char*>(s.Reveal(SecretAccess::Grant())), s.size()};
}

inline StatusOr<std::optional<v1::TenantKeyState>> LoadState(const KvStore& kv, std::string_view tenant) {
  GL_ASSIGN_OR_RETURN(auto stored, kv.Get(kNs, StateKey(tenant)));
  if (!stored) return std::optional<v1::TenantKeyState>();
  v1::TenantKeyState state;
  if (!state.ParseFromString(*stored))
    return DataLoss("keyring: key state of tenant " + std::string(tenant) + " is corrupt");
  return std::optional<v1::TenantKeyState>(std::move(state));
}

// Adds a fresh random KEK `version` for `tenant`, wrapped by `root_wrap`.
inline Status PutNewKek(KvBatch& batch, const Aead& root_wrap, std::string_view region, std::string_view tenant,
                        uint32_t version, int64_t now_ms) {
  SecretBytes kek = SecretBytes::Random(kAeadKeyBytes);
  GL_ASSIGN_OR_RETURN(std::string wrapped, root_wrap.Encrypt(View(kek), KekAd(region, tenant, version)));
  v1::WrappedTenantKey record;
  record.set_version(version);
  record.set_wrapped(std::move(wrapped));
  record.set_created_unix_ms(now_ms);
  batch.Put(kNs, KekKey(tenant, version), record.SerializeAsString());
  return Status::Ok();
}

}  // namespace geoledger::crypto::keyring_internal
