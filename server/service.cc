#include "server/service.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "common/encoding.h"
#include "common/files.h"
#include "crypto/key_source.h"
#include "residency/bundle.h"
#include "server/admin_routes.h"
#include "server/bundle_routes.h"
#include "server/decision_routes.h"
#include "server/policy_routes.h"
#include "server/problem.h"

namespace geoledger::server {
namespace {

// Room in the audit ledger's queue beyond what decisions may take.
constexpr size_t kAuditQueueBeyondDecisions = 100000;

Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return Internal("cannot create directory " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

Service::Service(const ServerConfig& config) : config_(config) {}

StatusOr<std::unique_ptr<Service>> Service::Start(const ServerConfig& config) {
  std::unique_ptr<Service> s(new Service(config));
  Dispatcher::Options dopts;
  dopts.access_log = config.access_log;
  dopts.tenant_limit = {config.tenant_rate, config.tenant_burst, 100000};
  dopts.token_limit = {config.token_rate, config.token_burst, 100000};
  s->dispatcher_ = std::make_unique<Dispatcher>(dopts, &SystemClock::Get(), &s->metrics_);
  GL_ASSIGN_OR_RETURN(s->engine_, residency::Engine::Create({}));
  s->RegisterRoutes();

  GL_RETURN_IF_ERROR(MakeDir(config.data_dir, 0700));
  struct stat dir_stat {};
  if (::stat(config.data_dir.c_str(), &dir_stat) != 0 || !S_ISDIR(dir_stat.st_mode))
    return FailedPrecondition("data dir " + config.data_dir + " is not a directory");
  if ((dir_stat.st_mode & 077) != 0)
    return FailedPrecondition("data dir " + config.data_dir + " must not be accessible by group or others (chmod 700)");
  // One instance per data dir, decided before any file in it is touched.
  int lock_fd = ::open((config.data_dir + "/geoledgerd.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd >= 0) ::close(lock_fd);
    return FailedPrecondition("another geoledgerd is using data dir " + config.data_dir);
  }
  s->lock_fd_ = lock_fd;
  ::unlink((config.data_dir + "/listen.addr").c_str());
  HttpServerOptions hopts;
  hopts.host = config.listen_host;
  hopts.port = config.listen_port;
  hopts.threads = config.threads;
  hopts.max_header_bytes = config.max_header_bytes;
  hopts.max_body_bytes = config.max_body_bytes;
  hopts.header_timeout = config.header_timeout;
  hopts.body_timeout = config.body_timeout;
  hopts.keepalive_timeout = config.keepalive_timeout;
  hopts.tls_cert = config.tls_cert;
  hopts.tls_key = config.tls_key;
  hopts.tls_client_ca = config.tls_client_ca;
  hopts.metrics = &s->metrics_;
  rlimit files{};
  hopts.max_connections = EffectiveMaxConnections(
      config.max_connections, ::getrlimit(RLIMIT_NOFILE, &files) == 0 ? files.rlim_cur : 1024);
  hopts.max_connections_per_client = config.max_connections_per_client;
  GL_ASSIGN_OR_RETURN(s->http_, HttpServer::Start(hopts, s->dispatcher_.get()));
  std::string addr = config.listen_host + ":" + std::to_string(s->http_->port());
  log::Info("listening", {{"address", addr}, {"tls", config.tls_enabled()}, {"max_connections", hopts.max_connections},
                          {"max_connections_per_client", hopts.max_connections_per_client},
                          {"mtls", !config.tls_client_ca.empty()}, {"region", config.region}});

  Status st = s->OpenStorageAndKeys();
  if (st.code() == StatusCode::kDataLoss && s->ledger_mismatch_) {
    log::Warn("serving health and readiness only", {{"address", addr}});
    return s;  // not ready; every /v1 call answers 503
  }
  if (st.ok()) st = s->BootstrapAdminToken();
  if (!st.ok()) {
    s->Shutdown();
    return st;
  }
  s->dispatcher_->SetTokenStore(s->tokens_.get());
  s->SetNotReadyReason("");
  s->ready_.store(true);
  // Written last, so its presence means the service is ready (used by scripts and tests).
  GL_RETURN_IF_ERROR(WriteFileAtomically(config.data_dir + "/listen.addr", addr + "\n", 0644));
  log::Info("ready", {{"address", addr}});
  return s;
}

Status Service::OpenStorageAndKeys() {
  const std::string keys_dir = config_.data_dir + "/keys";
  if (config_.dev) {
    bool created = false;
    GL_RETURN_IF_ERROR(crypto::GenerateDevKeys(keys_dir, &created));
    if (created) {
      log::Warn("DEVELOPMENT KEYS GENERATED: the region root key and audit signing key under " +
                    keys_dir +
                    " were created by --dev. They are plain files on this disk. Never use --dev "
                    "for real personal data; provision keys as described in "
                    "compliance-docs/key-management.md.",
                {{"keys_dir", keys_dir}});
    }
  }
  SetNotReadyReason("loading keys");
  auto source = crypto::NewFileKeySource(keys_dir);
  auto root = source->LoadRootKey();
  if (!root.ok()) return FailedPrecondition("region root key: " + root.status().message() +
                                            (config_.dev ? "" : " (start with --dev to generate development keys)"));
  root_key_ = std::move(*root);
  auto seed = source->LoadAuditSigningSeed();
  if (!seed.ok()) return FailedPrecondition("audit signing key: " + seed.status().message());
  GL_ASSIGN_OR_RETURN(auto signer, crypto::Ed25519Signer::FromSeed(*seed));
  audit_signer_.emplace(std::move(signer));

  GL_RETURN_IF_ERROR(LoadPolicyKeys(*source));

  const std::string origin = "geoledger/" + config_.region;
  GL_RETURN_IF_ERROR(WriteFileAtomically(config_.data_dir + "/audit-public.key",
                                     crypto::NoteVerifierKey(origin, audit_signer_->public_key()) + "\n", 0644));
  GL_RETURN_IF_ERROR(WriteFileAtomically(config_.data_dir + "/audit-public.key.bin", audit_signer_->public_key(), 0644));

  SetNotReadyReason("opening storage");
  GL_RETURN_IF_ERROR(MakeDir(config_.data_dir + "/db", 0700));
  GL_ASSIGN_OR_RETURN(kv_, OpenRocksDbKvStore(config_.data_dir + "/db", KnownNamespaces()));
  GL_ASSIGN_OR_RETURN(tokens_, TokenStore::Open(kv_.get(), &SystemClock::Get()));
  GL_ASSIGN_OR_RETURN(policy_, residency::PolicyStore::Open(kv_.get(), engine_.get(), &SystemClock::Get()));
  crypto::KeyringOptions kopts;
  kopts.region = config_.region;
  GL_ASSIGN_OR_RETURN(keyring_, crypto::Keyring::Open(kv_.get(), root_key_, &SystemClock::Get(), kopts));
  verifier_key_ = crypto::NoteVerifierKey(origin, audit_signer_->public_key());

  SetNotReadyReason("opening the audit log");
  audit::Ledger::Options lopts;
  lopts.region = config_.region;
  lopts.lazy_delay = std::chrono::milliseconds(config_.decision_audit_async_linger_ms);
  // Decisions hold at most --decision-audit-queue events in the ledger's
  // queue (the DecisionAuditor's bound); the room beyond it is kept for
  // every other audit write (events, policy and key changes), which a
  // backlog of decisions therefore never refuses.
  lopts.max_queued_events = config_.decision_audit_queue + kAuditQueueBeyondDecisions;
  auto ledger = audit::Ledger::Open(kv_.get(), &*audit_signer_, &SystemClock::Get(), lopts);
  if (!ledger.ok()) {
    if (ledger.status().code() == StatusCode::kDataLoss) {
      // Fail closed but stay observable: /readyz says why, /v1 answers 503.
      log::Error("audit log does not match its signed checkpoint; not ready", {{"error", ledger.status().ToString()}});
      SetNotReadyReason("audit log does not match its signed checkpoint: " + ledger.status().message());
      ledger_mismatch_ = true;
      return Status(StatusCode::kDataLoss, ledger.status().message());
    }
    return ledger.status();
  }
  ledger_ = std::move(*ledger);
  const bool async_audit = config_.decision_audit == "async";
  decision_auditor_ = std::make_unique<DecisionAuditor>(
      async_audit ? DecisionAuditMode::kAsync : DecisionAuditMode::kSync,
      config_.decision_audit_queue,
      // Async answers do not wait for their entries, which may then share
      // writes and syncs (Durability::kLazy).
      [ledger = ledger_.get(), durability = async_audit ? audit::Durability::kLazy : audit::Durability::kPrompt](
          std::vector<audit::AuditEvent> events, audit::Ledger::AppendCallback done) {
        return ledger->AppendAsync(std::move(events), std::move(done), durability);
      },
      [ledger = ledger_.get()] { ledger->WakeWriter(); });
  log::Info("decision audit", {{"mode", config_.decision_audit},
                               {"queue", config_.decision_audit_queue},
                               {"async_linger_ms", config_.decision_audit_async_linger_ms}});
  if (config_.audit_verify_on_start) GL_RETURN_IF_ERROR(VerifyAuditLog());
  GL_RETURN_IF_ERROR(LoadLastKnownGoodPolicy());
  // Resumes any rewrap a previous run left unfinished.
  rewrap_ = std::make_unique<RewrapWorker>(keyring_.get(), ledger_.get());
  rewrap_->Start();
  return Status::Ok();
}

Status Service::LoadPolicyKeys(const crypto::KeySource& source) {
  auto seed = source.LoadPolicySigningSeed();
  if (seed.ok()) {
    GL_ASSIGN_OR_RETURN(auto signer, crypto::Ed25519Signer::FromSeed(*seed));
    policy_signer_.emplace(std::move(signer));
    trusted_policy_keys_.push_back(policy_signer_->public_key());
    GL_RETURN_IF_ERROR(WriteFileAtomically(config_.data_dir + "/policy-public.key",
                                       Base64Encode(policy_signer_->public_key()) + "\n", 0644));
  } else if (seed.status().code() == StatusCode::kNotFound) {
    log::Warn("no policy-signing key: GET /v1/policy/bundle answers 503; imports still verify against "
              "--policy-trusted-keys",
              {{"keys_dir", config_.data_dir + "/keys"}});
  } else {
    return FailedPrecondition("policy signing key: " + seed.status().message());
  }
  if (!config_.policy_trusted_keys.empty()) {
    // Whoever can write this file decides which policies this instance
    // accepts: like the key files, it must be the service user's (or
    // root's), and nobody else's to write.
    struct stat st {};
    StatusOr<std::optional<std::string>> text = ReadRegularFile(config_.policy_trusted_keys, &st);
    if (!text.ok() || !*text)
      return FailedPrecondition("cannot read --policy-trusted-keys " + config_.policy_trusted_keys);
    if ((st.st_mode & 022) != 0)
      return FailedPrecondition("--policy-trusted-keys " + config_.policy_trusted_keys +
                                " is writable by group or others; chmod go-w it");
    if (st.st_uid != ::geteuid() && st.st_uid != 0)
      return FailedPrecondition("--policy-trusted-keys " + config_.policy_trusted_keys +
                                " is owned by neither the service user nor root");
    auto keys = ParseTrustedKeys(**text);
    if (!keys.ok()) return FailedPrecondition(config_.policy_trusted_keys + ": " + keys.status().message());
    trusted_policy_keys_.insert(trusted_policy_keys_.end(), keys->begin(), keys->end());
  }
  std::string ids;
  for (const auto& k : trusted_policy_keys_) ids += (ids.empty() ? "" : ",") + residency::BundleKeyId(k);
  log::Info("policy bundle keys", {{"export", policy_signer_.has_value()}, {"trusted_key_ids", ids}});
  return Status::Ok();
}

Status Service::LoadLastKnownGoodPolicy() {
  PolicyChangeAudit audit(ledger_.get(), [](const residency::ChangeRecord& change) {
    audit::AuditEvent event;
    event.actor = "geoledgerd";
    event.action = "policy.bundle.loaded";
    event.resource = "policy";
    event.outcome = "ok";
    event.details = BundleChangeDetails(change);  // an import's details
    event.details["source"] = "last-known-good";
    return event;
  });
  auto loaded = residency::LoadLastKnownGood(*policy_, config_.data_dir + "/policy-bundle.json", trusted_policy_keys_,
                                             audit.Hook());
  if (!loaded.ok())
    return FailedPrecondition("last-known-good policy bundle " + config_.data_dir +
                              "/policy-bundle.json: " + loaded.status().message());
  if (loaded->temporaries_removed > 0)
    log::Warn("removed temporary policy bundle files a crash left in the data dir",
              {{"files", loaded->temporaries_removed}});
  if (const auto& pending = loaded->pending) {
    const std::string version = pending->version ? std::to_string(*pending->version) : "unreadable";
    if (pending->outcome == residency::PendingImport::kSaved)
      log::Warn("an interrupted policy bundle import is stored; its bundle is now the last-known-good file",
                {{"bundle_version", version}});
    else
      log::Warn("an interrupted policy bundle import's saved bundle was removed",
                {{"bundle_version", version}, {"reason", residency::DescribeOutcome(*pending)}});
  }
  if (!loaded->not_newer_unverified.ok())
    log::Warn("last-known-good policy bundle does not verify; it is not newer than the stored policy, "
              "so it is left alone",
              {{"policy_version", policy_->version()}, {"error", loaded->not_newer_unverified.ToString()}});
  if (!loaded->activated) return Status::Ok();
  log::Info("last-known-good policy bundle activated", {{"policy_version", loaded->activated->version}});
  return Status::Ok();
}

Status Service::VerifyAuditLog() {
  SetNotReadyReason("verifying the audit log");
  log::Info("verifying the whole audit log", {{"entries", ledger_->size()}});
  auto report = ledger_->Verify([](uint64_t done, uint64_t total) {
    log::Info("audit log verification progress", {{"done", done}, {"total", total}});
  });
  if (!report.ok()) {
    log::Error("audit log verification failed; not ready", {{"error", report.status().ToString()}});
    SetNotReadyReason("audit log verification failed: " + report.status().message());
    ledger_mismatch_ = true;
    return report.status();
  }
  log::Info("audit log verified", {{"entries", report->entries}, {"checkpoints", report->checkpoints}});
  return Status::Ok();
}

void Service::SetNotReadyReason(std::string reason) {
  std::lock_guard<std::mutex> lock(reason_mu_);
  not_ready_reason_ = std::move(reason);
}

std::string Service::NotReadyReason() const {
  std::lock_guard<std::mutex> lock(reason_mu_);
  return not_ready_reason_;
}

Status Service::BootstrapAdminToken() {
  if (!tokens_->empty()) return Status::Ok();
  GL_ASSIGN_OR_RETURN(auto issued, tokens_->Create("bootstrap-admin", AllScopes(), "", "geoledgerd"));
  // The file first: a token that exists must be reachable by its operator.
  const std::string path = config_.data_dir + "/admin.token";
  GL_RETURN_IF_ERROR(WriteFileAtomically(path, issued.token + "\n", 0600));
  audit::AuditEvent event;
  event.actor = "geoledgerd";
  event.action = "token.created";
  event.resource = "token/" + issued.principal.id;
  event.outcome = "ok";
  event.details = {{"name", issued.principal.name}, {"bootstrap", "true"}};
  GL_RETURN_IF_ERROR(ledger_->Append({event}).status());
  log::Warn("bootstrap admin token written; create named tokens with POST /v1/admin/tokens and "
            "revoke this one",
            {{"path", path}, {"token_id", issued.principal.id}});
  return Status::Ok();
}

void Service::RegisterRoutes() {
  Dispatcher& d = *dispatcher_;
  d.AddRoute("GET", "/healthz", Access::kPublic, "", [](RequestContext&) -> StatusOr<HttpResponse> {
    return JsonResponse(200, {{"status", "ok"}});
  });
  d.AddRoute("GET", "/readyz", Access::kPublic, "", [this](RequestContext& ctx) -> StatusOr<HttpResponse> {
    if (dispatcher_->draining()) return Unavailable("draining for shutdown");
    if (!ready_.load()) return Unavailable("not ready: " + NotReadyReason());
    if (!ledger_->healthy()) return Unavailable("not ready: audit log storage failed");
    // For the load balancer in front of gateway checks: without a policy
    // every decision is a denial (fail closed), so such a pool should not
    // send traffic to this instance yet. The service itself is ready.
    if (auto require = ctx.request.query.find("require"); require != ctx.request.query.end()) {
      if (require->second != "policy") return InvalidArgument("require: the only value is 'policy'");
      if (!engine_->loaded()) return Unavailable("not ready: no residency policy loaded");
    }
    return JsonResponse(200, {{"status", "ready"}, {"region", config_.region}, {"storage", "open"}, {"keys", "loaded"},
                              {"policy_loaded", engine_->loaded()}, {"policy_version", engine_->version()}});
  });
  d.AddRoute("GET", "/metrics", Access::kPublic, "", [this](RequestContext&) -> StatusOr<HttpResponse> {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.Render();
    bool ready = ready_.load() && !dispatcher_->draining() && ledger_->healthy();
    AppendMetric(r.body, "geoledger_ready", "gauge", "1 when the service is ready to serve.", uint64_t{ready ? 1u : 0u});
    return r;
  });
  RegisterAdminRoutes(d, [this]() { return tokens_.get(); }, [this]() { return ledger_.get(); });

  RegisterPolicyRoutes(d, [this]() { return policy_.get(); }, [this]() { return ledger_.get(); });
  RegisterDecisionRoutes(d, {[this]() -> const residency::Engine* { return engine_.get(); },
                             [this]() { return decision_auditor_.get(); }});
  BundleRouteDeps bundles;
  bundles.policy = [this]() { return policy_.get(); };
  bundles.ledger = [this]() { return ledger_.get(); };
  bundles.signer = [this]() -> const crypto::Ed25519Signer* { return policy_signer_ ? &*policy_signer_ : nullptr; };
  bundles.trusted_keys = [this]() { return &trusted_policy_keys_; };
  bundles.last_known_good_path = config_.data_dir + "/policy-bundle.json";
  RegisterBundleRoutes(d, std::move(bundles));
  KeyRouteDeps keys;
  keys.keyring = [this]() { return keyring_.get(); };
  keys.ledger = [this]() { return ledger_.get(); };
  keys.engine = [this]() -> const residency::Engine* { return engine_.get(); };
  keys.rewrap = [this]() { return rewrap_.get(); };
  keys.pseudonymizer = &pseudonymizer_;
  keys.region = config_.region;
  RegisterAuditRoutes(d, [this]() { return ledger_.get(); }, &pseudonymizer_, [this]() -> StatusOr<std::string> {
    if (!ready_.load()) return Unavailable("service is starting");
    return verifier_key_;
  }, MakePersonalSealer(keys));
  RegisterSealedAuditRoutes(d, keys);
  RegisterKeyRoutes(d, std::move(keys));
  metrics_.AddCollector([](std::string& out) {
    AppendMetric(out, "geoledger_log_lines_dropped_total", "counter",
                 "Log lines not written whole: stderr (a pipe or socket) was not being read, or a write failed.", log::DroppedLines());
  });
  metrics_.AddCollector([this](std::string& out) {
    if (!ready_.load()) return;
    AppendMetric(out, "geoledger_keys_rewrapped_total", "counter",
                 "Subject keys moved to a newer tenant key version.", rewrap_->rewrapped_total());
    AppendMetric(out, "geoledger_keys_rewrap_pending_tenants", "gauge",
                 "Tenants whose subject keys are being rewrapped.", rewrap_->pending_tenants());
    AppendMetric(out, "geoledger_keys_rewrap_errors_total", "counter",
                 "Rewrap passes that failed and will be retried.", rewrap_->errors_total());
    AppendMetric(out, "geoledger_decision_audit_outstanding", "gauge",
                 "Decision audit events accepted and not yet durable.", decision_auditor_->outstanding());
    AppendMetric(out, "geoledger_decisions_audited_total", "counter", "Decisions whose audit entry is durable.",
                 decision_auditor_->audited_total());
    AppendMetric(out, "geoledger_decision_audit_rejected_total", "counter",
                 "Decisions refused (503) because their audit entry could not be queued.",
                 decision_auditor_->rejected_total());
    AppendMetric(out, "geoledger_decision_audit_failed_total", "counter",
                 "Accepted decision audit entries whose write failed.", decision_auditor_->failed_total());
    AppendMetric(out, "geoledger_policy_version", "gauge", "Active residency policy version.", engine_->version());
  });
  metrics_.AddCollector([this](std::string& out) {
    if (!ready_.load()) return;
    audit::LedgerStats st = ledger_->Stats();
    AppendMetric(out, "geoledger_audit_entries", "gauge", "Entries in the audit log.", st.size);
    AppendMetric(out, "geoledger_audit_checkpoint_size", "gauge", "Tree size of the latest signed checkpoint.",
                 st.checkpoint_size);
    AppendMetric(out, "geoledger_audit_queue_depth", "gauge", "Events waiting for the group-commit writer.",
                 st.queue_depth);
    AppendMetric(out, "geoledger_audit_queue_capacity", "gauge",
                 "Events the writer's queue holds before appends get 503 (--decision-audit-queue + 100000).",
                 st.queue_capacity);
    AppendMetric(out, "geoledger_audit_batches_total", "counter", "Committed (fsynced) batches.", st.batches);
    AppendMetric(out, "geoledger_audit_last_batch_events", "gauge", "Events in the last committed batch.",
                 st.last_batch_events);
    AppendMetric(out, "geoledger_audit_last_commit_seconds", "gauge",
                 "Time from the start of the last batch's write until the sync that made it durable returned.",
                 st.last_commit_seconds);
    AppendMetric(out, "geoledger_audit_rejected_total", "counter",
                 "Events refused because the append queue was full.", st.rejected);
    AppendMetric(out, "geoledger_audit_healthy", "gauge", "0 once a ledger write failed.",
                 uint64_t{st.healthy ? 1u : 0u});
  });
}

void Service::Shutdown() {
  if (shut_down_.exchange(true)) return;
  dispatcher_->BeginDrain();
  log::Info("draining", {{"in_flight", dispatcher_->in_flight()}});
  auto deadline = std::chrono::steady_clock::now() + config_.drain_timeout;
  while (dispatcher_->in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (dispatcher_->in_flight() > 0)
    log::Warn("drain timeout: requests still in flight", {{"in_flight", dispatcher_->in_flight()}});
  ready_.store(false);
  // Before the ledger, keys and policy that their handlers use are closed.
  dispatcher_->StopBlockingWorkers();
  if (rewrap_) rewrap_->Stop();  // its last batch is durable; the next start resumes
  if (ledger_) {
    // Commits what is queued and signs a final checkpoint. Before the
    // listener stops: deferred answers still waiting for their audit entry
    // (only after a drain timeout) are sent from the ledger's callbacks and
    // need the transport.
    Status closed = ledger_->Close();
    if (!closed.ok()) log::Error("audit log close failed", {{"error", closed.ToString()}});
    else log::Info("audit log closed", {{"size", ledger_->size()}});
  }
  if (http_) {
    // Answers already produced, to clients still reading them: the rest of
    // the drain time (at least a second).
    const size_t cut = http_->WaitForQueuedWrites(std::max(deadline, std::chrono::steady_clock::now() +
                                                                           std::chrono::seconds(1)));
    if (cut > 0)
      log::Warn("stopping with answers that clients have not finished reading; their connections are closed",
                {{"connections", cut}});
    http_->Stop();
  }
  dispatcher_->SetTokenStore(nullptr);
  rewrap_.reset();
  ledger_.reset();
  keyring_.reset();
  policy_.reset();
  tokens_.reset();
  kv_.reset();  // closes RocksDB
  if (lock_fd_ >= 0) {  // only the instance that owns the data dir touches its files
    ::unlink((config_.data_dir + "/listen.addr").c_str());
    ::close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
  log::Info("stopped");
}

Service::~Service() { Shutdown(); }

}  // namespace geoledger::server
