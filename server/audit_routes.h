// The audit API over the ledger:
//   POST /v1/audit/events                         audit:write — indexes once durable
//   GET  /v1/audit/entries?start=&end=            audit:read  — end exclusive, at most 1000
//   GET  /v1/audit/checkpoint                     audit:read  — text/plain signed note
//   GET  /v1/audit/proof/inclusion?index=&tree_size=
//   GET  /v1/audit/proof/consistency?first=&second=
//   GET  /v1/audit/export?start=&end=             audit:read  — export file; end defaults to the latest checkpoint
//   GET  /v1/audit/public-key                     public      — C2SP verifier key
#pragma once

#include <functional>
#include <string>

#include "audit/ledger.h"
#include "crypto/secret.h"
#include "server/dispatcher.h"

namespace geoledger::server {

// Subject pseudonyms: HMAC-SHA256(tenant key, subject id), where the tenant
// key is HMAC-SHA256(region root key, "geoledger/pseudonym/v1/" || tenant).
class Pseudonymizer {
 public:
  // `root_key` must outlive the pseudonymizer.
  explicit Pseudonymizer(const crypto::SecretBytes* root_key) : root_key_(root_key) {}
  std::string Pseudonym(const std::string& tenant, const std::string& subject) const;

 private:
  const crypto::SecretBytes* root_key_;
};

// Builds the ledger event for a call the service itself audits. Its tenant
// is ctx.tenant only when the route's path names it or the token is bound to
// it; otherwise none (a caller's X-Tenant-Id or ?tenant= never files it).
audit::AuditEvent ServiceEvent(const RequestContext& ctx, std::string action, std::string resource,
                               std::string outcome, std::map<std::string, std::string> details = {});

// An event's personal details, encrypted under the subject's data key.
struct SealedPersonal {
  std::string key_id;      // hex id of the subject data key
  std::string ciphertext;  // crypto/keyring.h record format
  std::string record_id;   // bound into the ciphertext; kept in the entry's details
  bool key_created = false;  // the subject's data key's creation is to be audited (crypto::IssuedDataKey)
};
// Sealing of events' personal details (server/key_routes.h).
struct PersonalSealer {
  // OK when this region may hold the tenant's personal data, otherwise
  // kPermissionDenied naming why. Changes nothing.
  std::function<Status(const std::string& tenant)> allowed;
  // Seals `plaintext` for (tenant, pseudonym), making the subject's data key
  // if it has none; kPermissionDenied as `allowed`.
  std::function<StatusOr<SealedPersonal>(const RequestContext& ctx, const std::string& tenant,
                                         const std::string& pseudonym, const std::string& plaintext)>
      seal;
  // Called once the key.created entry for a sealed event's key (key_id as
  // in SealedPersonal) is durable; see crypto::Keyring::ConfirmCreationAudited.
  std::function<void(const std::string& tenant, const std::string& pseudonym, const std::string& key_id)>
      creation_audited;
};

// `ledger` returns the live ledger (non-null whenever the dispatcher lets an
// authenticated request through). `verifier_key` returns the C2SP key text,
// or kUnavailable before the keys are loaded. `sealer` seals an event's
// optional "personal" details.
void RegisterAuditRoutes(Dispatcher& dispatcher, std::function<audit::Ledger*()> ledger,
                         const Pseudonymizer* pseudonymizer,
                         std::function<StatusOr<std::string>()> verifier_key, PersonalSealer sealer);

}  // namespace geoledger::server
