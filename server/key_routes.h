// Keys and subjects (crypto/keyring.h over HTTP), all scope `keys`:
//   POST /v1/keys/datakey               {"tenant","subject"} → {"key_id","plaintext_key","wrapped_key","audit_index"}
//   POST /v1/keys/unwrap                {"tenant","subject","wrapped_key"} → {"key_id","plaintext_key"}
//   POST /v1/keys/shred                 {"tenant","subject"} → crypto-shreds the subject's data key
//   POST /v1/tenants/{tenant}/keys/rotate   new tenant key version; a background rewrap follows
//   POST /v1/tenants/{tenant}/keys/retire   {"min_decryption_version": n}
//   GET  /v1/tenants/{tenant}/keys          versions and rewrap progress
// datakey and unwrap are refused (403, audit-logged) unless the residency
// policy allows this instance's region to store the tenant's personal data.
// Key events are audit-logged: key.created, key.datakey.issued,
// key.unwrap.refused, key.datakey.refused, key.shredded, key.rotated,
// key.retired and (by the RewrapWorker) key.rewrapped. No entry holds key
// material; subjects appear only as pseudonyms. Shred, rotate, retire and a
// rewrap's last batch are stored in the same write as their entries.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "audit/ledger.h"
#include "crypto/keyring.h"
#include "residency/engine.h"
#include "server/audit_routes.h"
#include "server/dispatcher.h"

namespace geoledger::server {

// Moves subject keys to the newest tenant key version in the background,
// batch by batch (each batch durable with its cursor, so a restart resumes),
// and writes the batch that finishes a tenant with its key.rewrapped entry
// (refused by the ledger, the batch is retried later). Thread-safe.
class RewrapWorker {
 public:
  // `keyring` and `ledger` must outlive the worker (Stop it first).
  RewrapWorker(crypto::Keyring* keyring, audit::Ledger* ledger);
  ~RewrapWorker();
  void Start();
  void Wake();  // a rotation happened
  void Stop();  // returns once the current batch is written; idempotent

  uint64_t rewrapped_total() const { return rewrapped_.load(); }
  uint64_t errors_total() const { return errors_.load(); }
  uint64_t pending_tenants() const { return pending_.load(); }

 private:
  void Loop();
  bool RunOnce();  // false after an error

  crypto::Keyring* keyring_;
  audit::Ledger* ledger_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mu_
  bool woken_ = false;  // guarded by mu_
  std::atomic<uint64_t> rewrapped_{0}, errors_{0}, pending_{0};
  std::thread thread_;
};

struct KeyRouteDeps {
  std::function<crypto::Keyring*()> keyring;
  std::function<audit::Ledger*()> ledger;
  std::function<const residency::Engine*()> engine;
  std::function<RewrapWorker*()> rewrap;
  const Pseudonymizer* pseudonymizer = nullptr;
  std::string region;  // this instance's region
};

void RegisterKeyRoutes(Dispatcher& dispatcher, KeyRouteDeps deps);

// Seals audit events' personal details (POST /v1/audit/events "personal")
// under the subject's data key, after the same residency check as datakey.
// Also registers GET /v1/audit/entries/{index}/personal (scope dsar), which
// opens them again: 410 erased once the subject key is shredded.
PersonalSealer MakePersonalSealer(const KeyRouteDeps& deps);
void RegisterSealedAuditRoutes(Dispatcher& dispatcher, KeyRouteDeps deps);

}  // namespace geoledger::server
