// Where the region's long-lived keys come from.
//
// KeySource is the seam for a KMS or HSM backend: an implementation returns
// the region root key (32 bytes; it keys subject pseudonyms and will wrap tenant keys) and the seed
// of the audit log's Ed25519 signing key. A KMS backend would fetch or unwrap
// them at startup over an authenticated channel and return them in
// SecretBytes; an HSM backend that cannot export keys would instead implement
// the signing and wrapping operations behind the same handles (see
// compliance-docs/key-management.md).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "crypto/secret.h"

namespace geoledger::crypto {

inline constexpr size_t kRootKeyBytes = 32;

class KeySource {
 public:
  virtual ~KeySource() = default;
  // kNotFound when the key does not exist, kPermissionDenied when its
  // protection is too weak, kDataLoss when it is malformed.
  virtual StatusOr<SecretBytes> LoadRootKey() const = 0;
  virtual StatusOr<SecretBytes> LoadAuditSigningSeed() const = 0;
  // Seed of the Ed25519 key that signs exported residency policy bundles.
  // Optional for the service: an instance without it can import bundles
  // signed elsewhere but cannot export.
  virtual StatusOr<SecretBytes> LoadPolicySigningSeed() const = 0;
};

// Keys as files under `keys_dir`: root.key, audit-signing.key and
// policy-signing.key, 32 raw bytes each. Each file must be a regular file owned by the current user with
// mode 0600 (or stricter); anything readable by group or others is refused.
std::unique_ptr<KeySource> NewFileKeySource(const std::string& keys_dir);

// Development only: creates keys_dir (0700) and any missing key file (0600)
// with fresh random bytes. Existing files are left alone. Returns true in
// `*created` when at least one key was generated.
Status GenerateDevKeys(const std::string& keys_dir, bool* created);

}  // namespace geoledger::crypto
