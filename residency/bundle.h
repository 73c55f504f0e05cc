// Signed residency policy bundles: how every regional instance enforces the
// same policy. Format and trust model: compliance-docs/residency-bundles.md.
//
//   bundle  = {"format":"geoledger-residency-bundle/1","key_id":HEX16,
//              "payload":BASE64,"signature":BASE64}
//   payload = canonical JSON {"format":…,"regions":[…],"tenants":[…],"version":N}
//   signature = Ed25519(key, "geoledger-residency-bundle/1\n" || payload)
//
// Verification checks the signature over the exact payload bytes before
// parsing any policy from them, and accepts only canonical payloads, so one
// policy has exactly one signed byte string.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/signer.h"
#include "residency/jurisdictions.h"
#include "residency/model.h"
#include "residency/policy_store.h"

namespace geoledger::residency {

inline constexpr std::string_view kBundleFormat = "geoledger-residency-bundle/1";

// The canonical payload for `doc`: regions and tenants sorted by id, object
// keys sorted, no insignificant whitespace.
std::string CanonicalPolicyJson(const PolicyDocument& doc);

// First 8 bytes of SHA-256(public_key), lowercase hex.
std::string BundleKeyId(std::string_view public_key);

// A signed bundle of `doc`.
std::string SignBundle(const PolicyDocument& doc, const crypto::Ed25519Signer& signer);

// The policy in `bundle` once it is verified against `trusted_public_keys`
// (raw 32-byte Ed25519 keys). kInvalidArgument for a malformed bundle or
// policy; kPermissionDenied when no trusted key signed it.
StatusOr<PolicyDocument> VerifyBundle(std::string_view bundle,
                                      const std::vector<std::string>& trusted_public_keys,
                                      const Jurisdictions& jurisdictions);

// A pending file that a start or an import found: left by an import under
// way when the service stopped, or whose rename failed.
struct PendingImport {
  // The version the file states (nullopt: unreadable).
  std::optional<uint64_t> version;
  enum Outcome {
    kSaved,       // the store holds the import: the file is now the last-known-good file
    kNotStored,   // the import never reached the store: the file was removed
    kSuperseded,  // stored, but the last-known-good file verifies and is as new or newer: removed
    kUnverified,  // no trusted key signed it (altered, or its key was withdrawn): removed
  } outcome = kNotStored;
  // Why, for kUnverified.
  std::string detail;
};
// What happened to the file, for logs: "saved", "not stored",
// "superseded by a last-known-good file as new or newer", or
// "does not verify: <why>".
std::string DescribeOutcome(const PendingImport& pending);

// What an import activated, and whether its last-known-good file was saved.
struct ImportedBundle {
  ChangeRecord change;
  // Not OK (kInternal, saying so) when the bundle is active but its pending
  // file could not be renamed into place: it stays pending, and the next
  // import or start puts it in place.
  Status last_known_good;
  // A pending file an earlier import left, settled before this one.
  std::optional<PendingImport> earlier;
};

// Verifies `bundle`, refuses it unless its version is newer than the store's
// (kFailedPrecondition: rollback), writes it with its audit entry through
// `audit` and activates it atomically through store.Replace, and keeps it
// as the last-known-good file at `lkg_path` (if non-empty). The bundle is
// saved first, as PendingImportPath(lkg_path), and renamed to `lkg_path`
// once active; an import whose bundle cannot be saved is refused (kInternal)
// before anything is written. An error means nothing was activated; but
// when the write that carried the import failed (the store then refuses
// requests, and imports, until reopened), it may still have reached the
// disk: the pending file is then kept, and the next start
// (LoadLastKnownGood) makes it the last-known-good file if the store holds
// the import. If only the rename fails, the import is active, the result
// says the file was not saved, and the next import or start puts the
// pending file in place first.
// Imports run one at a time (activation and file write together), so the
// file always holds the newest activated bundle.
StatusOr<ImportedBundle> ImportBundle(PolicyStore& store, std::string_view bundle,
                                      const std::vector<std::string>& trusted_public_keys,
                                      const std::string& lkg_path, std::string_view actor,
                                      const AuditChange& audit);

// Where ImportBundle keeps a bundle while its import is written:
// `lkg_path` + ".pending".
std::string PendingImportPath(const std::string& lkg_path);

// What LoadLastKnownGood did with the last-known-good file.
struct LastKnownGood {
  // The change, when the file was newer than the stored policy and is now
  // active.
  std::optional<ChangeRecord> activated;
  // Not OK when the file, by the version its payload states, is not newer
  // and does not verify (its signing key was taken off the trusted list, or
  // it was altered): it is left alone and the start goes on; the caller
  // warns.
  Status not_newer_unverified;
  // Set when a pending file was found (and settled) first.
  std::optional<PendingImport> pending;
  // Temporary files a crash while writing either file left beside them
  // (`<file>.tmp.XXXXXX`), removed before anything else.
  size_t temporaries_removed = 0;
};

// At startup: first removes temporary files a crash left, and settles a
// pending file that an interrupted import left (PendingImport), then activates the last-known-good file, audited through
// `audit`, when it is newer than the stored policy (it must verify; an error
// otherwise). The version is read from the end of the payload, where a
// canonical payload states it, so a file that is not newer is never parsed
// (a million tenants take seconds). A file that is absent or not newer is
// left alone: it would not be activated whoever signed it, so a key taken
// off the trusted list after it signed the active bundle does not stop the
// start; whether such a file's signature verifies is reported all the same.
// A file whose stated version cannot be read (truncated, not a bundle, a
// payload that does not end as a canonical one does) counts as newer: it
// must verify in full, or the start stops.
StatusOr<LastKnownGood> LoadLastKnownGood(PolicyStore& store, const std::string& lkg_path,
                                          const std::vector<std::string>& trusted_public_keys,
                                          const AuditChange& audit);

}  // namespace geoledger::residency
