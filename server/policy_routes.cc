#include "server/policy_routes.h"

#include "common/encoding.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "residency/history.h"
#include "residency/model.h"
#include "server/audit_routes.h"

namespace geoledger::server {
namespace {

// Renders a policy change's answer (the entry was written with the change).
HttpResponse Changed(const residency::ChangeRecord& change, nlohmann::json entity) {
  const bool changed = !change.changes.empty() || change.created;
  nlohmann::json j = {{change.kind, std::move(entity)}, {"policy_version", change.version}, {"changed", changed}};
  if (!changed) return JsonResponse(200, j);  // nothing changed, nothing written
  if (change.audit_index) j["audit_index"] = *change.audit_index;
  return JsonResponse(change.created ? 201 : 200, j);
}

// The entry of a region or tenant change. `entity` is its new JSON form:
// the entry carries the SHA-256 of its canonical rendering (what the store
// keeps and a bundle signs), so an auditor can tell from the hash-chained
// log alone which document each change made active, without trusting the
// store's history records.
PolicyChangeAudit::EventFn ChangeEvent(const RequestContext& ctx, const nlohmann::json& entity) {
  const crypto::Sha256Digest digest = crypto::Sha256(residency::DumpJson(entity));
  return [&ctx, sha256 = HexEncode(crypto::AsView(digest))](const residency::ChangeRecord& change) {
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
               PolicyChangeAudit audit(ledger(), ChangeEvent(ctx, residency::RegionToJson(region)));
               auto change = policy()->PutRegion(ctx.principal->name, region, audit.Hook());
               if (!change.ok()) return change.status();
               return Changed(*change, residency::RegionToJson(region));
             });
  d.AddRoute("GET", "/v1/regions/{region}", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto region, policy()->GetRegion(ctx.params["region"]));
               if (!region) return NotFound("region " + ctx.params["region"] + " is not defined");
               return JsonResponse(200, residency::RegionToJson(*region));
             });
  d.AddRoute("PUT", "/v1/tenants/{tenant}", Access::kScoped, "admin",
             [policy, ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto tenant, residency::TenantFromJson(ctx.tenant, ctx.body, policy()->jurisdictions()));
               PolicyChangeAudit audit(ledger(), ChangeEvent(ctx, residency::TenantToJson(tenant)));
               auto change = policy()->PutTenant(ctx.principal->name, tenant, audit.Hook());
               if (!change.ok()) return change.status();
               return Changed(*change, residency::TenantToJson(tenant));
             });
  d.AddRoute("GET", "/v1/tenants/{tenant}", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               uint64_t version = 0;
               GL_ASSIGN_OR_RETURN(auto tenant, policy()->GetTenant(ctx.tenant, &version));
               if (!tenant) return NotFound("tenant " + ctx.tenant + " is not defined");
               nlohmann::json j = residency::TenantToJson(*tenant);
               j["policy_version"] = version;
               return JsonResponse(200, j);
             });
  d.AddRoute("GET", "/v1/tenants/{tenant}/history", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto history, policy()->History(ctx.tenant));
               nlohmann::json changes = nlohmann::json::array();
               for (const auto& c : history) changes.push_back(residency::ChangeRecordToJson(c));
               return JsonResponse(200, {{"tenant", ctx.tenant}, {"changes", changes}});
             });
  // Each change is one synced write of its audit entry and its records,
  // under the store's lock, and the reads wait for that lock, so none of
  // them runs on an HTTP thread that gateway checks share.
  d.MarkBlockingRoute("PUT", "/v1/regions/{region}");
  d.MarkBlockingRoute("PUT", "/v1/tenants/{tenant}");
  d.MarkBlockingRoute("GET", "/v1/regions/{region}");
  d.MarkBlockingRoute("GET", "/v1/tenants/{tenant}");
  d.MarkBlockingRoute("GET", "/v1/tenants/{tenant}/history");
}

}  // namespace geoledger::server
