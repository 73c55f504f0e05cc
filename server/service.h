// geoledgerd as an object: opens storage, loads keys, bootstraps the admin
// token, registers the API and serves it. main() only parses flags and waits
// for a signal.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "audit/ledger.h"
#include "common/kv_store.h"
#include "common/status.h"
#include "crypto/key_source.h"
#include "crypto/keyring.h"
#include "crypto/secret.h"
#include "crypto/signer.h"
#include "server/config.h"
#include "server/audit_routes.h"
#include "server/decision_audit.h"
#include "server/dispatcher.h"
#include "residency/engine.h"
#include "residency/policy_store.h"
#include "server/http_server.h"
#include "server/key_routes.h"
#include "server/metrics.h"
#include "server/token_store.h"

namespace geoledger::server {

class Service {
 public:
  // Starts listening first (so /healthz answers and /readyz says why it is
  // not ready), then opens storage and loads keys. Any failure is returned
  // and nothing keeps running.
  static StatusOr<std::unique_ptr<Service>> Start(const ServerConfig& config);
  ~Service();

  uint16_t port() const { return http_->port(); }
  bool ready() const { return ready_.load(); }

  // SIGTERM: stop taking new work, wait up to drain_timeout for in-flight
  // requests, stop the listener and close storage. Idempotent.
  void Shutdown();

 private:
  explicit Service(const ServerConfig& config);
  Status OpenStorageAndKeys();
  Status VerifyAuditLog();  // --audit-verify-on-start; kDataLoss keeps the service unready
  Status BootstrapAdminToken();
  Status LoadPolicyKeys(const crypto::KeySource& source);
  Status LoadLastKnownGoodPolicy();
  void RegisterRoutes();
  void SetNotReadyReason(std::string reason);
  std::string NotReadyReason() const;

  const ServerConfig config_;
  HttpMetrics metrics_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<audit::Ledger> ledger_;
  std::unique_ptr<residency::Engine> engine_;        // created before listening; empty policy until loaded
  std::unique_ptr<residency::PolicyStore> policy_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<RewrapWorker> rewrap_;
  std::unique_ptr<DecisionAuditor> decision_auditor_;  // set before ready_, with ledger_
  Pseudonymizer pseudonymizer_{&root_key_};
  std::string verifier_key_;  // written before ready_ flips, read only after
  crypto::SecretBytes root_key_;  // wraps tenant keys
  std::optional<crypto::Ed25519Signer> audit_signer_;
  std::optional<crypto::Ed25519Signer> policy_signer_;  // absent: bundle export unavailable
  std::vector<std::string> trusted_policy_keys_;        // set before ready_
  bool ledger_mismatch_ = false;  // the stored log failed an integrity check
  int lock_fd_ = -1;  // flock on DATA_DIR/geoledgerd.lock, held for the service's life
  std::atomic<bool> ready_{false};
  std::atomic<bool> shut_down_{false};
  mutable std::mutex reason_mu_;
  std::string not_ready_reason_ = "starting";  // guarded by reason_mu_; no secrets
};

}  // namespace geoledger::server
