#include "server/audit_routes.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "audit/entry_json.h"
#include "common/encoding.h"
#include "crypto/hash.h"
#include "geoledger/v1/audit.pb.h"
#include "server/json_fields.h"

namespace geoledger::server {
namespace {

constexpr size_t kMaxEventsPerRequest = 1000;
constexpr uint64_t kMaxEntriesPerPage = 1000;
// One entry can render to hundreds of KB of JSON (64 details of up to
// 128+1024 bytes, escaped, a sealed ciphertext, and all of its bytes again
// as base64 in "entry"), so 1000 of them could be hundreds of MB built on a
// blocking thread. A page stops once its body passes this budget, always
// after at least one entry, and says where to continue.
constexpr size_t kMaxPageBytes = 4 * 1024 * 1024;
// Entries read from the store at a time while a page is built: the page
// holds at most this many beyond its budget in memory.
constexpr uint64_t kEntriesPerRead = 16;
constexpr size_t kMaxPersonalBytes = 16 * 1024;

nlohmann::json EntryJson(const audit::StoredEntry& e) {
  nlohmann::json j;
  v1::AuditEntry entry;
  if (entry.ParseFromString(e.bytes)) {
    j = audit::EntryFieldsJson(entry);
    if (entry.has_sealed()) j["sealed_ciphertext"] = Base64Encode(entry.sealed().ciphertext());
  }
  // The stored position, whatever the bytes say.
  j["index"] = e.index;
  j["leaf_hash"] = Base64Encode(e.leaf_hash);
  j["entry"] = Base64Encode(e.bytes);
  return j;
}

nlohmann::json Base64List(const std::vector<std::string>& hashes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : hashes) out.push_back(Base64Encode(h));
  return out;
}

}  // namespace

std::string Pseudonymizer::Pseudonym(const std::string& tenant, const std::string& subject) const {
  // The tenant key is derived per call on the stack and wiped: no locked
  // allocation (a system call) per event, nothing kept.
  auto tenant_key = crypto::HmacSha256(*root_key_, "geoledger/pseudonym/v1/" + tenant);
  std::string out(crypto::AsView(crypto::HmacSha256WithDerivedKey(tenant_key, subject)));
  crypto::Wipe(tenant_key);
  return out;
}

audit::AuditEvent ServiceEvent(const RequestContext& ctx, std::string action, std::string resource,
                               std::string outcome, std::map<std::string, std::string> details) {
  audit::AuditEvent e;
  // Filed under the tenant the route's path names or the token is bound to,
  // never one the caller only named in a header or the query string: a
  // region change or a bundle import is no tenant's, whatever the request
  // says (routes that decide the tenant otherwise set it themselves).
  if (ctx.params.count("tenant") != 0 || (ctx.principal && !ctx.principal->tenant.empty())) e.tenant = ctx.tenant;
  e.actor = ctx.principal ? ctx.principal->name : "geoledgerd";
  e.action = std::move(action);
  e.resource = std::move(resource);
  e.outcome = std::move(outcome);
  details["request_id"] = ctx.request_id;
  e.details = std::move(details);
  return e;
}

void RegisterAuditRoutes(Dispatcher& d, std::function<audit::Ledger*()> ledger,
                         const Pseudonymizer* pseudonymizer,
                         std::function<StatusOr<std::string>()> verifier_key, PersonalSealer sealer) {
  // Validates and pseudonymises (and seals) the events of a request.
  struct PreparedEvents {
    std::vector<audit::AuditEvent> events;
    std::vector<size_t> callers;  // positions of the caller's events (key.created ones are ours)
    struct Created {
      std::string tenant, pseudonym, key_id;
    };
    std::vector<Created> created;  // subject keys whose key.created entry is among `events`
  };
  auto prepare = [pseudonymizer, sealer](RequestContext& ctx) -> StatusOr<PreparedEvents> {
               if (!ctx.body.is_object() || !ctx.body.contains("events") || !ctx.body["events"].is_array())
                 return InvalidArgument("body must be {\"events\":[…]}");
               const auto& list = ctx.body["events"];
               if (list.empty() || list.size() > kMaxEventsPerRequest)
                 return InvalidArgument("send 1-" + std::to_string(kMaxEventsPerRequest) + " events");
               // Every event is checked before any is sealed: sealing can make a
               // subject's key, and a refused request must change nothing.
               struct Checked {
                 audit::AuditEvent event;
                 std::string personal;  // JSON to seal; empty when none
               };
               std::vector<Checked> checked;
               checked.reserve(list.size());
               for (const auto& ev : list) {
                 if (!ev.is_object()) return InvalidArgument("each event must be an object");
                 for (auto it = ev.begin(); it != ev.end(); ++it) {
                   static const std::set<std::string> kFields = {"tenant", "action", "resource", "outcome",
                                                                 "subject", "details", "personal"};
                   if (!kFields.count(it.key())) return InvalidArgument("unknown event field '" + it.key() + "'");
                 }
                 Checked c;
                 audit::AuditEvent& e = c.event;
                 GL_ASSIGN_OR_RETURN(e.tenant, StringField(ev, "tenant", true, 64, "event field"));
                 if (!IsValidName(e.tenant)) return InvalidArgument("tenant must be 1-64 characters of [A-Za-z0-9._:-]");
                 if (ctx.principal->tenant.size() && e.tenant != ctx.principal->tenant)
                   return PermissionDenied("token is restricted to another tenant");
                 GL_ASSIGN_OR_RETURN(e.action, StringField(ev, "action", true, 128, "event field"));
                 GL_ASSIGN_OR_RETURN(e.resource, StringField(ev, "resource", true, 512, "event field"));
                 GL_ASSIGN_OR_RETURN(e.outcome, StringField(ev, "outcome", true, 128, "event field"));
                 GL_ASSIGN_OR_RETURN(std::string subject, StringField(ev, "subject", false, 256, "event field"));
                 // The subject id never reaches the ledger: only its keyed pseudonym does.
                 if (!subject.empty()) e.subject_pseudonym = pseudonymizer->Pseudonym(e.tenant, subject);
                 if (ev.contains("details")) {
                   const auto& det = ev["details"];
                   if (!det.is_object() || det.size() > 64)
                     return InvalidArgument("details must be an object of at most 64 strings");
                   for (auto it = det.begin(); it != det.end(); ++it) {
                     if (!it.value().is_string() || it.key().empty() || it.key().size() > 128 ||
                         it.value().get<std::string>().size() > 1024)
                       return InvalidArgument("details values must be strings (keys ≤128, values ≤1024 bytes)");
                     e.details[it.key()] = it.value().get<std::string>();
                   }
                 }
                 if (ev.contains("personal")) {
                   if (subject.empty()) return InvalidArgument("event field 'personal' needs a 'subject'");
                   if (!ev["personal"].is_object()) return InvalidArgument("event field 'personal' must be an object");
                   c.personal = ev["personal"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
                   if (c.personal.size() > kMaxPersonalBytes)
                     return InvalidArgument("event field 'personal' must be at most " + std::to_string(kMaxPersonalBytes) + " bytes as JSON");
                   if (e.details.count("sealed_record_id"))
                     return InvalidArgument("details key 'sealed_record_id' is set by the service for 'personal'");
                   // Refused here, before sealing can make a subject key: the
                   // service's detail must fit within the ledger's 64.
                   if (e.details.size() >= 64)
                     return InvalidArgument("with 'personal', details may hold at most 63 strings "
                                            "(the service adds 'sealed_record_id')");
                   GL_RETURN_IF_ERROR(sealer.allowed(e.tenant));
                 }
                 e.actor = ctx.principal->name;
                 checked.push_back(std::move(c));
               }
               PreparedEvents out;
               std::vector<audit::AuditEvent>& events = out.events;
               std::vector<size_t>& callers = out.callers;
               events.reserve(checked.size());
               for (Checked& c : checked) {
                 audit::AuditEvent& e = c.event;
                 if (!c.personal.empty()) {
                   // Personal details reach the log only encrypted under the subject's
                   // data key, so crypto-shredding the subject erases them while the
                   // log still verifies.
                   GL_ASSIGN_OR_RETURN(auto sealed, sealer.seal(ctx, e.tenant, e.subject_pseudonym, c.personal));
                   e.sealed_key_id = sealed.key_id;
                   e.sealed_ciphertext = std::move(sealed.ciphertext);
                   e.details["sealed_record_id"] = sealed.record_id;
                   // Once per key and request, though every event sealed under a
                   // key whose creation is not yet confirmed audited says so.
                   bool announced = false;
                   for (const auto& k : out.created) announced = announced || k.key_id == sealed.key_id;
                   if (sealed.key_created && !announced) {
                     audit::AuditEvent created = ServiceEvent(ctx, "key.created", "subject-key/" + sealed.key_id, "ok");
                     created.tenant = e.tenant;
                     created.subject_pseudonym = e.subject_pseudonym;
                     events.push_back(std::move(created));
                     out.created.push_back({e.tenant, e.subject_pseudonym, sealed.key_id});
                   }
                 }
                 callers.push_back(events.size());
                 events.push_back(std::move(e));
               }
               return out;
  };
  // Answered from the ledger's writer thread once the group commit holding
  // the events is durable, so concurrent requests share one fsync without
  // holding an HTTP thread each.
  d.AddDeferredRoute("POST", "/v1/audit/events", Access::kScoped, "audit:write",
                     [ledger, prepare, confirm = sealer.creation_audited](RequestContext& ctx, Reply reply) {
                       auto prepared = prepare(ctx);
                       if (!prepared.ok()) return reply(prepared.status());
                       auto callers = std::make_shared<std::vector<size_t>>(std::move(prepared->callers));
                       auto created = std::make_shared<std::vector<PreparedEvents::Created>>(std::move(prepared->created));
                       ReplyWhenDurable(
                           std::move(reply),
                           [&](DurableCallback done) {
                             return ledger()->AppendAsync(std::move(prepared->events), std::move(done));
                           },
                           [callers, created, confirm](const std::vector<uint64_t>& all) {
                             if (confirm)
                               for (const auto& k : *created) confirm(k.tenant, k.pseudonym, k.key_id);
                             std::vector<uint64_t> indexes;
                             indexes.reserve(callers->size());
                             for (size_t pos : *callers) indexes.push_back(all[pos]);
                             return JsonResponse(200, {{"indexes", indexes}});
                           });
                     });
  // A large batch (up to 1000 events, each sealed under its subject's key,
  // made if new) is parsed and prepared off the HTTP thread.
  d.OffloadLargeBodies("POST", "/v1/audit/events", kInlineBodyBytes);

  d.AddRoute("GET", "/v1/audit/entries", Access::kScoped, "audit:read",
             [ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(uint64_t start, QueryNumber(ctx, "start"));
               GL_ASSIGN_OR_RETURN(uint64_t end, QueryNumber(ctx, "end"));
               if (start > end) return InvalidArgument("start must not exceed end");
               if (end - start > kMaxEntriesPerPage)
                 return InvalidArgument("at most " + std::to_string(kMaxEntriesPerPage) + " entries per request");
               if (end > ledger()->size()) return InvalidArgument("end is beyond the log size " + std::to_string(ledger()->size()));
               // The body is built entry by entry, so its size is known as it
               // grows; `next` is the first index not yet looked at.
               std::string body = "{\"entries\":[";
               bool first = true;
               uint64_t next = start;
               while (next < end && body.size() < kMaxPageBytes) {
                 GL_ASSIGN_OR_RETURN(auto entries, ledger()->Entries(next, std::min(end, next + kEntriesPerRead)));
                 for (const auto& e : entries) {
                   if (body.size() >= kMaxPageBytes) break;
                   next = e.index + 1;
                   // A tenant-bound token sees only its tenant's entries.
                   nlohmann::json j = EntryJson(e);
                   if (!ctx.principal->tenant.empty() && j.value("tenant", "") != ctx.principal->tenant) continue;
                   if (!first) body += ',';
                   first = false;
                   body += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
                 }
               }
               nlohmann::json tail = {{"size", ledger()->size()}, {"more", next < end}};
               if (next < end) tail["next_start"] = next;
               // `tail` dumps as {...}: its members follow the list.
               std::string rest = tail.dump();
               body += "],";
               body.append(rest, 1, std::string::npos);
               HttpResponse r;
               r.body = std::move(body);
               return r;
             });

  d.AddRoute("GET", "/v1/audit/checkpoint", Access::kScoped, "audit:read",
             [ledger](RequestContext&) -> StatusOr<HttpResponse> {
               std::string note = ledger()->LatestCheckpoint();
               if (note.empty()) return NotFound("the audit log has no checkpoint yet (no entries)");
               HttpResponse r;
               r.content_type = "text/plain; charset=utf-8";
               r.body = std::move(note);
               return r;
             });

  d.AddRoute("GET", "/v1/audit/proof/inclusion", Access::kScoped, "audit:read",
             [ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(uint64_t index, QueryNumber(ctx, "index"));
               GL_ASSIGN_OR_RETURN(uint64_t tree_size, QueryNumber(ctx, "tree_size"));
               GL_ASSIGN_OR_RETURN(auto proof, ledger()->InclusionProof(index, tree_size));
               GL_ASSIGN_OR_RETURN(auto leaf, ledger()->Entries(index, index + 1));
               return JsonResponse(200, {{"index", index}, {"tree_size", tree_size},
                                         {"leaf_hash", Base64Encode(leaf[0].leaf_hash)}, {"proof", Base64List(proof)}});
             });

  d.AddRoute("GET", "/v1/audit/proof/consistency", Access::kScoped, "audit:read",
             [ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(uint64_t first, QueryNumber(ctx, "first"));
               GL_ASSIGN_OR_RETURN(uint64_t second, QueryNumber(ctx, "second"));
               GL_ASSIGN_OR_RETURN(auto proof, ledger()->ConsistencyProof(first, second));
               return JsonResponse(200, {{"first", first}, {"second", second}, {"proof", Base64List(proof)}});
             });

  d.AddRoute("GET", "/v1/audit/export", Access::kScoped, "audit:read",
             [ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               if (!ctx.principal->tenant.empty())
                 return PermissionDenied("exports cover every tenant; use a token not bound to a tenant");
               uint64_t start = 0;
               std::optional<uint64_t> end;
               if (ctx.request.query.count("start")) {
                 GL_ASSIGN_OR_RETURN(start, QueryNumber(ctx, "start"));
               }
               if (ctx.request.query.count("end")) {
                 GL_ASSIGN_OR_RETURN(uint64_t e, QueryNumber(ctx, "end"));
                 end = e;
               }
               GL_ASSIGN_OR_RETURN(std::string bytes, ledger()->Export(start, end));
               HttpResponse r;
               r.content_type = "application/octet-stream";
               r.body = std::move(bytes);
               r.headers.emplace_back("Content-Disposition", "attachment; filename=\"geoledger-audit.export\"");
               return r;
             });

  d.AddRoute("GET", "/v1/audit/public-key", Access::kPublic, "",
             [verifier_key](RequestContext&) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(std::string key, verifier_key());
               HttpResponse r;
               r.content_type = "text/plain; charset=utf-8";
               r.body = key + "\n";
               r.headers.emplace_back("Cache-Control", "public, max-age=3600");
               return r;
             });
  // Up to 100,000 entries read and framed.
  d.MarkBlockingRoute("GET", "/v1/audit/export", /*long_running=*/true);
  // Up to 1,000 entries or kMaxPageBytes read and rendered as JSON (tens of
  // milliseconds): on an HTTP thread, the gateway checks it serves would
  // wait for them.
  d.MarkBlockingRoute("GET", "/v1/audit/entries");
}

}  // namespace geoledger::server
