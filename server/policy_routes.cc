#include "server/policy_routes.h"

#include "common/log.h"
#include "residency/history.h"
#include "residency/model.h"
#include "server/audit_routes.h"

namespace geoledger::server {
namespace {

// A JSON answer about one entity, with its tag (residency::EntityTag) as a
// strong HTTP entity-tag.
HttpResponse Tagged(int status, const nlohmann::json& body, const std::string& tag) {
  HttpResponse r = JsonResponse(status, body);
  r.headers.emplace_back("ETag", "\"" + tag + "\"");
  return r;
}

// A PUT that found nothing to change: nothing was written or audited.
bool Unchanged(const residency::ChangeRecord& change) { return change.changes.empty() && !change.created; }

// Renders a policy change's answer (the entry was written with the change),
// with the entity's new tag.
HttpResponse Changed(const residency::ChangeRecord& change, nlohmann::json entity, const std::string& tag) {
  const bool changed = !Unchanged(change);
  nlohmann::json j = {{change.kind, std::move(entity)}, {"policy_version", change.version}, {"changed", changed}};
  if (changed && change.audit_index) j["audit_index"] = *change.audit_index;  // nothing changed, nothing written
  return Tagged(changed && change.created ? 201 : 200, j, tag);
}

// The entity tags in an If-Match or If-None-Match value (RFC 9110 §8.8.3,
// §13.1): nullopt for the bare "*", else a comma-separated list of quoted
// tags, each maybe weak (W/"…"). Weak tags are returned with their prefix,
// so that they never equal a tag: a change needs the strong comparison. A
// quoted "*" is a tag, not the wildcard.
StatusOr<std::optional<std::vector<std::string>>> EntityTags(std::string_view value, const char* header) {
  std::vector<std::string> tags;
  auto bad = [header] { return InvalidArgument(std::string(header) + ": want * or a list of quoted entity tags"); };
  auto skip_ows = [&value] {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  };
  skip_ows();
  if (value == "*") return std::optional<std::vector<std::string>>();
  while (true) {
    skip_ows();
    std::string weak;
    if (value.substr(0, 2) == "W/") {
      weak = "W/";
      value.remove_prefix(2);
    }
    if (value.empty() || value.front() != '"') return bad();
    const size_t close = value.find('"', 1);
    if (close == std::string_view::npos) return bad();
    const std::string_view tag = value.substr(1, close - 1);
    for (char c : tag)
      if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return bad();
    tags.push_back(weak + std::string(tag));
    value.remove_prefix(close + 1);
    skip_ows();
    if (value.empty()) return std::optional<std::vector<std::string>>(std::move(tags));
    if (value.front() != ',') return bad();
    value.remove_prefix(1);
  }
}

// The request's If-Match / If-None-Match, as a store precondition. Only
// "If-None-Match: *" (create, never replace) is supported.
StatusOr<residency::Precondition> ReadPrecondition(const HttpRequest& req) {
  residency::Precondition pre;
  if (req.HeaderCount("if-match") > 1 || req.HeaderCount("if-none-match") > 1)
    return InvalidArgument("If-Match and If-None-Match may each appear once");
  if (const std::string* v = req.Header("if-match")) {
    GL_ASSIGN_OR_RETURN(auto tags, EntityTags(*v, "If-Match"));
    if (tags) pre.if_match = std::move(*tags);
    else pre.if_exists = true;
  }
  if (const std::string* v = req.Header("if-none-match")) {
    GL_ASSIGN_OR_RETURN(auto tags, EntityTags(*v, "If-None-Match"));
    if (tags) return InvalidArgument("If-None-Match: only * is supported here");
    pre.if_none_exists = true;
  }
  return pre;
}

constexpr uint64_t kMaxChangesPerPage = 1000;

// ?after=&before=&limit= of a history read (residency::ChangeQuery): limit
// 1..1000, by default 1000.
StatusOr<residency::ChangeQuery> ReadChangeQuery(const RequestContext& ctx) {
  residency::ChangeQuery q;
  GL_ASSIGN_OR_RETURN(q.after, OptionalQueryNumber(ctx, "after"));
  GL_ASSIGN_OR_RETURN(q.before, OptionalQueryNumber(ctx, "before"));
  GL_ASSIGN_OR_RETURN(std::optional<uint64_t> limit, OptionalQueryNumber(ctx, "limit"));
  if (limit && (*limit == 0 || *limit > kMaxChangesPerPage))
    return InvalidArgument("query parameter 'limit' must be 1-" + std::to_string(kMaxChangesPerPage));
  q.limit = limit.value_or(kMaxChangesPerPage);
  return q;
}

// A history page's answer: {<kind>: id, changes, more, next_before or
// next_after (with more, for the direction read)}. A token bound to a
// tenant sees the actor (the token's name) only of changes made by tokens
// bound to the same tenant: not the names of the operator's tokens, nor of
// another tenant's.
nlohmann::json ChangePageJson(const char* kind, const std::string& id, const residency::ChangeQuery& query,
                              const residency::ChangePage& page, const Principal& reader) {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : page.changes) {
    changes.push_back(residency::ChangeRecordToJson(c));
    if (!reader.tenant.empty() && c.actor_tenant != reader.tenant) {
      changes.back().erase("actor");
      changes.back().erase("actor_tenant");
    }
  }
  nlohmann::json j = {{kind, id}, {"changes", std::move(changes)}, {"more", page.more}};
  if (page.more && query.after) j["next_after"] = page.changes.back().version;
  else if (page.more) j["next_before"] = page.changes.front().version;
  return j;
}

// The entry of a region or tenant change. `tag` is the EntityTag of its new
// JSON form, the SHA-256 of its canonical rendering (what the store keeps
// and a bundle signs), so an auditor can tell from the hash-chained log
// alone which document each change made active, without trusting the
// store's history records.
PolicyChangeAudit::EventFn ChangeEvent(const RequestContext& ctx, const std::string& tag) {
  return [&ctx, sha256 = tag](const residency::ChangeRecord& change) {
    std::string fields;
    for (const auto& c : change.changes) fields += (fields.empty() ? "" : ",") + c.field;
    return ServiceEvent(ctx, change.kind + (change.created ? ".created" : ".updated"), change.kind + "/" + change.id,
                        "ok",
                        {{"policy_version", std::to_string(change.version)},
                         {"fields", fields.substr(0, 1000)},
                         {"sha256", sha256}});
  };
}

}  // namespace

residency::AuditChange PolicyChangeAudit::Hook() {
  return [this](const residency::ChangeRecord& change, const residency::ChangeWrites& writes) -> StatusOr<uint64_t> {
    bool attached = false;
    auto logged = ledger_->Append({event_(change)}, [&attached, &writes](uint64_t index, KvBatch& batch) {
      attached = true;
      writes(index, batch);
    });
    if (!logged.ok()) {
      hook_failed_ = true;
      if (attached)
        log::Error("a policy change and its audit entry were handed to the store and the write failed; whether "
                   "both reached the disk is known after a restart, and the policy store refuses requests until then",
                   {{"kind", change.kind}, {"id", change.id}, {"policy_version", change.version},
                    {"error", logged.status().ToString()}});
      return logged.status();
    }
    return (*logged)[0];
  };
}

void RegisterPolicyRoutes(Dispatcher& d, std::function<residency::PolicyStore*()> policy,
                          std::function<audit::Ledger*()> ledger) {
  d.AddRoute("PUT", "/v1/regions/{region}", Access::kScoped, "admin",
             [policy, ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               if (!ctx.principal->tenant.empty())
                 return PermissionDenied("regions are shared by every tenant; a tenant-bound token cannot change them");
               const std::string& id = ctx.params["region"];
               GL_ASSIGN_OR_RETURN(auto region, residency::RegionFromJson(id, ctx.body, policy()->jurisdictions()));
               GL_ASSIGN_OR_RETURN(auto pre, ReadPrecondition(ctx.request));
               nlohmann::json entity = residency::RegionToJson(region);
               const std::string tag = residency::EntityTag(entity);
               PolicyChangeAudit audit(ledger(), ChangeEvent(ctx, tag));
               residency::Region stored;
               auto change = policy()->PutRegion({ctx.principal->name, ctx.principal->tenant}, region, audit.Hook(),
                                                 pre, &stored);
               if (!change.ok()) return change.status();
               if (Unchanged(*change)) {
                 // Equal as policy, not necessarily as sent: answer what is stored.
                 entity = residency::RegionToJson(stored);
                 return Changed(*change, entity, residency::EntityTag(entity));
               }
               return Changed(*change, std::move(entity), tag);
             });
  d.AddRoute("GET", "/v1/regions/{region}", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto region, policy()->GetRegion(ctx.params["region"]));
               if (!region) return NotFound("region " + ctx.params["region"] + " is not defined");
               const nlohmann::json j = residency::RegionToJson(*region);
               return Tagged(200, j, residency::EntityTag(j));
             });
  d.AddRoute("PUT", "/v1/tenants/{tenant}", Access::kScoped, "admin",
             [policy, ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto tenant, residency::TenantFromJson(ctx.tenant, ctx.body, policy()->jurisdictions()));
               GL_ASSIGN_OR_RETURN(auto pre, ReadPrecondition(ctx.request));
               nlohmann::json entity = residency::TenantToJson(tenant);
               const std::string tag = residency::EntityTag(entity);
               PolicyChangeAudit audit(ledger(), ChangeEvent(ctx, tag));
               residency::Tenant stored;
               auto change = policy()->PutTenant({ctx.principal->name, ctx.principal->tenant}, tenant, audit.Hook(),
                                                 pre, &stored);
               if (!change.ok()) return change.status();
               if (Unchanged(*change)) {
                 // Equal as policy (allowed regions in another order, say),
                 // not necessarily as sent: answer what is stored, and its
                 // tag, as read with the change (under the store's lock).
                 entity = residency::TenantToJson(stored);
                 return Changed(*change, entity, residency::EntityTag(entity));
               }
               return Changed(*change, std::move(entity), tag);
             });
  d.AddRoute("GET", "/v1/tenants/{tenant}", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               uint64_t version = 0;
               GL_ASSIGN_OR_RETURN(auto tenant, policy()->GetTenant(ctx.tenant, &version));
               if (!tenant) return NotFound("tenant " + ctx.tenant + " is not defined");
               nlohmann::json j = residency::TenantToJson(*tenant);
               const std::string tag = residency::EntityTag(j);  // of the tenant, without policy_version
               j["policy_version"] = version;
               return Tagged(200, j, tag);
             });
  d.AddRoute("GET", "/v1/tenants/{tenant}/history", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto query, ReadChangeQuery(ctx));
               GL_ASSIGN_OR_RETURN(auto page, policy()->TenantChanges(ctx.tenant, query));
               return JsonResponse(200, ChangePageJson("tenant", ctx.tenant, query, page, *ctx.principal));
             });
  d.AddRoute("GET", "/v1/regions/{region}/history", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto query, ReadChangeQuery(ctx));
               GL_ASSIGN_OR_RETURN(auto page, policy()->RegionChanges(ctx.params["region"], query));
               return JsonResponse(200, ChangePageJson("region", ctx.params["region"], query, page, *ctx.principal));
             });
  // Each change is one synced write of its audit entry and its records,
  // under the store's lock, and the reads wait for that lock, so none of
  // them runs on an HTTP thread that gateway checks share.
  d.MarkBlockingRoute("PUT", "/v1/regions/{region}");
  d.MarkBlockingRoute("PUT", "/v1/tenants/{tenant}");
  d.MarkBlockingRoute("GET", "/v1/regions/{region}");
  d.MarkBlockingRoute("GET", "/v1/tenants/{tenant}");
  d.MarkBlockingRoute("GET", "/v1/tenants/{tenant}/history");
  d.MarkBlockingRoute("GET", "/v1/regions/{region}/history");
}

}  // namespace geoledger::server
