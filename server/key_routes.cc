#include "server/key_routes.h"

#include <charconv>
#include <chrono>

#include "common/clock.h"
#include "common/encoding.h"
#include "common/log.h"
#include "server/json_fields.h"
#include "geoledger/v1/audit.pb.h"
#include "server/problem.h"

namespace geoledger::server {
namespace {

std::string Reveal(const crypto::SecretBytes& s) {
  return std::string(reinterpret_cast<const char*>(s.Reveal(crypto::SecretAccess::Grant())), s.size());
}

struct SubjectRequest {
  std::string tenant, subject, pseudonym;
};

// {"tenant","subject",...}: validated, tenant-bound tokens held to their tenant.
StatusOr<SubjectRequest> ReadSubject(const RequestContext& ctx, const Pseudonymizer& pseudonymizer,
                                     std::initializer_list<const char*> fields) {
  GL_RETURN_IF_ERROR(OnlyFields(ctx.body, fields));
  SubjectRequest r;
  GL_ASSIGN_OR_RETURN(r.tenant, StringField(ctx.body, "tenant", true, 64));
  if (!IsValidName(r.tenant)) return InvalidArgument("tenant must be 1-64 characters of [A-Za-z0-9._:-]");
  if (!ctx.principal->tenant.empty() && r.tenant != ctx.principal->tenant)
    return PermissionDenied("token is restricted to another tenant");
  GL_ASSIGN_OR_RETURN(r.subject, StringField(ctx.body, "subject", true, 256));
  r.pseudonym = pseudonymizer.Pseudonym(r.tenant, r.subject);
  return r;
}

audit::AuditEvent KeyEvent(const RequestContext& ctx, const std::string& tenant, std::string action,
                           std::string resource, std::string outcome, const std::string& pseudonym,
                           std::map<std::string, std::string> details = {}) {
  audit::AuditEvent e = ServiceEvent(ctx, std::move(action), std::move(resource), std::move(outcome), std::move(details));
  e.tenant = tenant;
  e.subject_pseudonym = pseudonym;
  return e;
}

// A refusal, answered once its audit entry is durable (with the entry's
// audit_index), without blocking the calling HTTP thread. When the entry
// cannot be written the refusal is still the answer, without an index, and
// the failure is logged: a refusal never turns into a success.
void RefuseAudited(const RequestContext& ctx, audit::Ledger* ledger, Reply reply, ProblemKind kind,
                   const std::string& detail, audit::AuditEvent event) {
  auto answer = [shared = std::make_shared<Reply>(std::move(reply)), response = MakeProblem(kind, detail, ctx.request_id),
                 rid = ctx.request_id](StatusOr<std::vector<uint64_t>> logged) {
    HttpResponse r = response;
    if (logged.ok()) {
      auto doc = nlohmann::json::parse(r.body, nullptr, false);
      doc["audit_index"] = (*logged)[0];
      r.body = doc.dump();
    } else {
      log::Error("key refusal could not be audit-logged", {{"request_id", rid}, {"error", logged.status().ToString()}});
    }
    (*shared)(std::move(r));
  };
  Status queued = ledger->AppendAsync({std::move(event)}, answer);
  if (!queued.ok()) answer(queued);
}

bool PersonalDataAllowedHere(const KeyRouteDeps& deps, const std::string& tenant, std::string* reason) {
  int64_t now_s = SystemClock::Get().UnixMillis() / 1000;
  const auto read = deps.engine()->Pin();
  const residency::Decision d = read->Decide(tenant, "personal", "store", deps.region, now_s);
  if (!d.allow) *reason = std::string(residency::ReasonCode(d.reason));
  return d.allow;
}

// Personal-data keys are handed out only where the tenant's personal data may
// be stored. True when refused: the (audited) refusal then answers `reply`.
bool RefusedHere(const RequestContext& ctx, const KeyRouteDeps& deps, const SubjectRequest& r,
                 const char* refused_action, Reply& reply) {
  std::string reason;
  if (PersonalDataAllowedHere(deps, r.tenant, &reason)) return false;
  RefuseAudited(ctx, deps.ledger(), std::move(reply), ProblemKind::kForbidden,
                "region " + deps.region + " may not hold personal data of tenant " + r.tenant + " (" + reason + ")",
                KeyEvent(ctx, r.tenant, refused_action, "tenant/" + r.tenant, "denied", r.pseudonym,
                         {{"reason", reason}, {"region", deps.region}}));
  return true;
}

// A keyring commit (crypto::CommitChange) that stores the change in the
// same atomic, synchronous write as its audit entry, `event(change)`, and
// keeps the entry's index in `*index`. A ledger that refuses the append
// (queue full, closed, unhealthy) refuses the change with it.
crypto::CommitChange WithAuditEntry(audit::Ledger* ledger,
                                    std::function<audit::AuditEvent(const crypto::KeyChange&)> event,
                                    uint64_t* index) {
  return [ledger, event = std::move(event), index](const crypto::KeyChange& change, KvBatch batch) -> Status {
    auto writes = std::make_shared<KvBatch>(std::move(batch));
    GL_ASSIGN_OR_RETURN(auto logged, ledger->Append({event(change)}, [writes](uint64_t, KvBatch& out) {
      out.Append(std::move(*writes));
    }));
    if (index != nullptr) *index = logged.at(0);
    return Status::Ok();
  };
}

nlohmann::json InfoJson(const std::string& tenant, const crypto::TenantKeyInfo& info) {
  return {{"tenant", tenant},
          {"current_version", info.current_version},
          {"min_decryption_version", info.min_decryption_version},
          {"versions", info.versions},
          {"subject_keys", info.subject_keys},
          {"rewrap", {{"active", info.rewrap_active},
                      {"target_version", info.rewrap_target},
                      {"rewrapped", info.rewrapped},
                      {"pending", info.pending}}}};
}

// After the key.created entry of a subject's key is durable. A failure
// only means the creation is announced once more by the key's next use.
void ConfirmCreationAudited(const KeyRouteDeps& deps, const std::string& tenant, const std::string& pseudonym,
                            const std::string& key_id) {
  Status st = deps.keyring()->ConfirmCreationAudited(tenant, pseudonym, key_id);
  if (st.ok()) return;
  // Busy (another key write held the keyring) is expected now and then.
  (st.code() == StatusCode::kUnavailable ? log::Debug : log::Warn)(
      "subject key creation audited but not recorded as such; its next use audits it again",
      {{"tenant", tenant}, {"error", st.ToString()}});
}

}  // namespace

RewrapWorker::RewrapWorker(crypto::Keyring* keyring, audit::Ledger* ledger) : keyring_(keyring), ledger_(ledger) {}
RewrapWorker::~RewrapWorker() { Stop(); }

void RewrapWorker::Start() { thread_ = std::thread([this] { Loop(); }); }

void RewrapWorker::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void RewrapWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RewrapWorker::RunOnce() {
  auto tenants = keyring_->TenantsWithPendingRewrap();
  if (!tenants.ok()) {
    log::Error("key rewrap: cannot list tenants", {{"error", tenants.status().ToString()}});
    return false;
  }
  pending_.store(tenants->size());
  for (const auto& tenant : *tenants) {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return true;
      }
      // The step that finishes the rewrap is stored with its key.rewrapped
      // entry; when the ledger refuses it, the step is retried later.
      auto step = keyring_->RewrapStep(
          tenant, WithAuditEntry(
                      ledger_,
                      [&tenant](const crypto::KeyChange& c) {
                        audit::AuditEvent e;
                        e.tenant = tenant;
                        e.actor = "geoledgerd";
                        e.action = "key.rewrapped";
                        e.resource = "tenant-key/" + tenant + "/v" + std::to_string(c.version);
                        e.outcome = "ok";
                        e.details = {{"version", std::to_string(c.version)}, {"rewrapped", std::to_string(c.rewrapped)}};
                        return e;
                      },
                      nullptr));
      if (!step.ok()) {
        log::Error("key rewrap failed; will retry", {{"tenant", tenant}, {"error", step.status().ToString()}});
        return false;
      }
      rewrapped_.fetch_add(step->rewrapped_now);
      if (!step->done) continue;
      if (step->finished_now)
        log::Info("key rewrap finished",
                  {{"tenant", tenant}, {"version", step->target_version}, {"rewrapped", step->rewrapped}});
      pending_.fetch_sub(1);
      break;
    }
  }
  return true;
}

void RewrapWorker::Loop() {
  while (true) {
    bool ok = RunOnce();
    if (!ok) errors_.fetch_add(1);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, ok ? std::chrono::seconds(1) : std::chrono::seconds(5), [this] { return stop_ || woken_; });
    woken_ = false;
    if (stop_) return;
  }
}

void RegisterKeyRoutes(Dispatcher& d, KeyRouteDeps deps) {
  // Answered from the ledger's writer thread once the audit entry is durable
  // (a deferred reply), so concurrent requests share one group commit.
  d.AddDeferredRoute("POST", "/v1/keys/datakey", Access::kScoped, "keys", [deps](RequestContext& ctx, Reply reply) {
    auto r = ReadSubject(ctx, *deps.pseudonymizer, {"tenant", "subject"});
    if (!r.ok()) return reply(r.status());
    if (RefusedHere(ctx, deps, *r, "key.datakey.refused", reply)) return;
    auto issued = deps.keyring()->IssueDataKey(r->tenant, r->pseudonym);
    if (!issued.ok()) return reply(issued.status());
    const bool created = issued->subject_key_created;
    std::vector<audit::AuditEvent> events;
    if (created)
      events.push_back(KeyEvent(ctx, r->tenant, "key.created", "subject-key/" + r->tenant, "ok", r->pseudonym));
    events.push_back(KeyEvent(ctx, r->tenant, "key.datakey.issued", "datakey/" + HexEncode(issued->key_id), "ok",
                              r->pseudonym));
    auto answer = std::make_shared<nlohmann::json>(nlohmann::json{
        {"key_id", HexEncode(issued->key_id)},
        {"plaintext_key", Base64Encode(Reveal(issued->plaintext))},
        {"wrapped_key", Base64Encode(issued->wrapped)}});
    // Not answered unless audited: the caller would hold a key nobody knows was issued.
    ReplyWhenDurable(
        std::move(reply),
        [&](DurableCallback done) { return deps.ledger()->AppendAsync(std::move(events), std::move(done)); },
        [answer, deps, tenant = r->tenant, pseudonym = r->pseudonym, subject_key = issued->subject_key_id,
         created](const std::vector<uint64_t>& logged) {
          if (created) ConfirmCreationAudited(deps, tenant, pseudonym, subject_key);
          (*answer)["audit_index"] = logged.back();
          return JsonResponse(200, *answer);
        });
  });

  // Deferred only for its refusals, which are answered once audited.
  d.AddDeferredRoute("POST", "/v1/keys/unwrap", Access::kScoped, "keys", [deps](RequestContext& ctx, Reply reply) {
    auto r = ReadSubject(ctx, *deps.pseudonymizer, {"tenant", "subject", "wrapped_key"});
    if (!r.ok()) return reply(r.status());
    auto wrapped_b64 = StringField(ctx.body, "wrapped_key", true, 1024);
    if (!wrapped_b64.ok()) return reply(wrapped_b64.status());
    auto wrapped = Base64Decode(*wrapped_b64);
    if (!wrapped) return reply(InvalidArgument("'wrapped_key' must be standard base64"));
    if (RefusedHere(ctx, deps, *r, "key.unwrap.refused", reply)) return;
    auto key = deps.keyring()->UnwrapDataKey(r->tenant, r->pseudonym, *wrapped);
    if (key.ok())
      return reply(JsonResponse(200, {{"key_id", HexEncode(key->key_id)},
                                      {"plaintext_key", Base64Encode(Reveal(key->plaintext))}}));
    StatusCode code = key.status().code();
    if (code == StatusCode::kErased || code == StatusCode::kPermissionDenied) {
      bool erased = code == StatusCode::kErased;
      return RefuseAudited(ctx, deps.ledger(), std::move(reply), erased ? ProblemKind::kErased : ProblemKind::kForbidden,
                           key.status().message(),
                           KeyEvent(ctx, r->tenant, "key.unwrap.refused", "tenant/" + r->tenant,
                                    erased ? "erased" : "wrong-binding", r->pseudonym));
    }
    reply(key.status());
  });

  d.AddRoute("POST", "/v1/keys/shred", Access::kScoped, "keys", [deps](RequestContext& ctx) -> StatusOr<HttpResponse> {
    GL_ASSIGN_OR_RETURN(auto r, ReadSubject(ctx, *deps.pseudonymizer, {"tenant", "subject"}));
    uint64_t audit_index = 0;
    GL_ASSIGN_OR_RETURN(std::string key_id,
                        deps.keyring()->Shred(r.tenant, r.pseudonym,
                                              WithAuditEntry(
                                                  deps.ledger(),
                                                  [&](const crypto::KeyChange& c) {
                                                    return KeyEvent(ctx, r.tenant, "key.shredded",
                                                                    "subject-key/" + HexEncode(c.key_id), "ok",
                                                                    r.pseudonym);
                                                  },
                                                  &audit_index)));
    return JsonResponse(200, {{"shredded_key_id", HexEncode(key_id)}, {"audit_index", audit_index}});
  });

  d.AddRoute("POST", "/v1/tenants/{tenant}/keys/rotate", Access::kScoped, "keys",
             [deps](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_RETURN_IF_ERROR(OnlyFields(ctx.body.is_null() ? nlohmann::json::object() : ctx.body,
                                             std::initializer_list<const char*>{}));
               uint64_t audit_index = 0;
               GL_ASSIGN_OR_RETURN(uint32_t version,
                                   deps.keyring()->Rotate(
                                       ctx.tenant, WithAuditEntry(
                                                       deps.ledger(),
                                                       [&](const crypto::KeyChange& c) {
                                                         const std::string v = std::to_string(c.version);
                                                         return ServiceEvent(ctx, "key.rotated",
                                                                             "tenant-key/" + ctx.tenant + "/v" + v, "ok",
                                                                             {{"version", v}});
                                                       },
                                                       &audit_index)));
               deps.rewrap()->Wake();
               GL_ASSIGN_OR_RETURN(auto info, deps.keyring()->Info(ctx.tenant));
               nlohmann::json j = InfoJson(ctx.tenant, info);
               j["version"] = version;
               j["audit_index"] = audit_index;
               return JsonResponse(200, j);
             });

  d.AddRoute("POST", "/v1/tenants/{tenant}/keys/retire", Access::kScoped, "keys",
             [deps](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_RETURN_IF_ERROR(OnlyFields(ctx.body, std::initializer_list<const char*>{"min_decryption_version"}));
               const auto& v = ctx.body["min_decryption_version"];
               if (!v.is_number_unsigned() || v.get<uint64_t>() == 0 || v.get<uint64_t>() > 0xffffffffu)
                 return InvalidArgument("'min_decryption_version' must be a positive integer");
               uint32_t min_version = static_cast<uint32_t>(v.get<uint64_t>());
               uint64_t audit_index = 0;
               GL_ASSIGN_OR_RETURN(bool retired,
                                   deps.keyring()->RetireBelow(
                                       ctx.tenant, min_version,
                                       WithAuditEntry(
                                           deps.ledger(),
                                           [&](const crypto::KeyChange& c) {
                                             return ServiceEvent(ctx, "key.retired", "tenant-key/" + ctx.tenant, "ok",
                                                                 {{"min_decryption_version", std::to_string(c.version)}});
                                           },
                                           &audit_index)));
               GL_ASSIGN_OR_RETURN(auto info, deps.keyring()->Info(ctx.tenant));
               nlohmann::json j = InfoJson(ctx.tenant, info);
               // Versions retired already: nothing changed, nothing audited.
               if (retired) j["audit_index"] = audit_index;
               return JsonResponse(200, j);
             });

  d.AddRoute("GET", "/v1/tenants/{tenant}/keys", Access::kScoped, "keys",
             [deps](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto info, deps.keyring()->Info(ctx.tenant));
               return JsonResponse(200, InfoJson(ctx.tenant, info));
             });
  // Shredding and retirement flush and compact (and wait for any storage
  // snapshot, such as a policy bundle export's, to be released); rotation is
  // a synced write.
  d.MarkBlockingRoute("POST", "/v1/keys/shred", /*long_running=*/true);
  d.MarkBlockingRoute("POST", "/v1/tenants/{tenant}/keys/rotate");
  // Counts the tenant's subject keys by reading every one of them (a million
  // for a large tenant): never on an HTTP thread.
  d.MarkBlockingRoute("GET", "/v1/tenants/{tenant}/keys", /*long_running=*/true);
  d.MarkBlockingRoute("POST", "/v1/tenants/{tenant}/keys/retire", /*long_running=*/true);
}

PersonalSealer MakePersonalSealer(const KeyRouteDeps& deps) {
  auto allowed = [deps](const std::string& tenant) -> Status {
    std::string reason;
    if (!PersonalDataAllowedHere(deps, tenant, &reason))
      return PermissionDenied("region " + deps.region + " may not hold personal data of tenant " + tenant + " (" +
                              reason + "); send the event without 'personal'");
    return Status::Ok();
  };
  PersonalSealer sealer;
  sealer.allowed = allowed;
  sealer.creation_audited = [deps](const std::string& tenant, const std::string& pseudonym,
                                   const std::string& key_id_hex) {
    auto key_id = HexDecode(key_id_hex);
    if (key_id) ConfirmCreationAudited(deps, tenant, pseudonym, *key_id);
  };
  sealer.seal = [deps, allowed](const RequestContext&, const std::string& tenant, const std::string& pseudonym,
                                const std::string& plaintext) -> StatusOr<SealedPersonal> {
    GL_RETURN_IF_ERROR(allowed(tenant));
    SealedPersonal out;
    out.record_id = "audit/" + HexEncode(crypto::RandomBytes(16));
    GL_ASSIGN_OR_RETURN(auto sealed, deps.keyring()->Seal(tenant, pseudonym, out.record_id, plaintext));
    out.key_id = HexEncode(sealed.key_id);
    out.ciphertext = std::move(sealed.ciphertext);
    out.key_created = sealed.subject_key_created;
    return out;
  };
  return sealer;
}

void RegisterSealedAuditRoutes(Dispatcher& d, KeyRouteDeps deps) {
  d.AddRoute("GET", "/v1/audit/entries/{index}/personal", Access::kScoped, "dsar",
             [deps](RequestContext& ctx) -> StatusOr<HttpResponse> {
               uint64_t index = 0;
               const std::string& text = ctx.params["index"];
               auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
               if (text.empty() || ec != std::errc() || p != text.data() + text.size())
                 return InvalidArgument("index must be a non-negative integer");
               if (index >= deps.ledger()->size()) return NotFound("no audit entry " + text);
               GL_ASSIGN_OR_RETURN(auto entries, deps.ledger()->Entries(index, index + 1));
               v1::AuditEntry entry;
               if (!entry.ParseFromString(entries[0].bytes)) return DataLoss("audit: entry " + text + " does not parse");
               if (!ctx.principal->tenant.empty() && entry.tenant() != ctx.principal->tenant)
                 return NotFound("no audit entry " + text + " for this tenant");
               if (!entry.has_sealed()) return NotFound("audit entry " + text + " has no personal details");
               std::string record_id;
               for (const auto& det : entry.details())
                 if (det.key() == "sealed_record_id") record_id = det.value();
               auto opened = deps.keyring()->Open(entry.tenant(), entry.subject_pseudonym(), record_id,
                                                  entry.sealed().ciphertext());
               if (!opened.ok()) return opened.status();
               auto personal = nlohmann::json::parse(*opened, nullptr, false);
               return JsonResponse(200, {{"index", index}, {"personal", personal}});
             });
}

}  // namespace geoledger::server
