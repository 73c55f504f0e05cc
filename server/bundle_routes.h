// Signed residency policy bundles over HTTP (residency/bundle.h), scope
// `admin`, unrestricted tokens only:
//   GET  /v1/policy/bundle   the active policy, signed with this instance's
//                            policy-signing key; 503 when the instance has
//                            no such key (an import-only instance)
//   POST /v1/policy/bundle   body: a bundle. Verified against the trusted
//                            keys, refused when not newer than the active
//                            policy (409), activated atomically, saved as
//                            the last-known-good file, audit-logged
//                            (policy.bundle.imported; a bundle read and
//                            refused: policy.bundle.refused)
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "audit/ledger.h"
#include "crypto/signer.h"
#include "residency/policy_store.h"
#include "server/dispatcher.h"

namespace geoledger::server {

struct BundleRouteDeps {
  std::function<residency::PolicyStore*()> policy;
  std::function<audit::Ledger*()> ledger;
  // The policy-signing key, or null when this instance has none.
  std::function<const crypto::Ed25519Signer*()> signer;
  // Raw 32-byte Ed25519 public keys trusted for imports (set before ready).
  std::function<const std::vector<std::string>*()> trusted_keys;
  std::string last_known_good_path;
};

void RegisterBundleRoutes(Dispatcher& dispatcher, BundleRouteDeps deps);

// The audit details of a whole-policy change (a bundle import, or the
// last-known-good bundle loaded at start): policy_version, previous_version,
// then each of the change's other fields ("regions", "tenants": "N set, M
// removed"; the bundle's key_id and payload_sha256) with its new value.
std::map<std::string, std::string> BundleChangeDetails(const residency::ChangeRecord& change);

// Parses a trusted-keys file: one base64 raw 32-byte Ed25519 public key per
// line; blank lines and lines starting with '#' are ignored.
// kInvalidArgument naming the line for anything else.
StatusOr<std::vector<std::string>> ParseTrustedKeys(const std::string& text);

}  // namespace geoledger::server
