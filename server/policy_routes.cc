#include "server/policy_routes.h"

#include "common/log.h"
#include "residency/history.h"
#include "residency/model.h"
#include "server/audit_routes.h"

namespace geoledger::server {
namespace {

// Audits a committed policy change and renders the answer.
StatusOr<HttpResponse> Changed(RequestContext& ctx, audit::Ledger* ledger, const residency::ChangeRecord& change,
                               nlohmann::json entity) {
  std::string fields;
  for (const auto& c : change.changes) fields += (fields.empty() ? "" : ",") + c.field;
  std::string action = change.kind + (change.created ? ".created" : ".updated");
  nlohmann::json j = {{change.kind, std::move(entity)}, {"policy_version", change.version}, {"changed", !change.changes.empty() || change.created}};
  if (change.changes.empty() && !change.created) return JsonResponse(200, j);  // nothing changed, nothing written
  auto logged = ledger->Append({ServiceEvent(ctx, action, change.kind + "/" + change.id, "ok",
                                             {{"policy_version", std::to_string(change.version)},
                                              {"fields", fields.substr(0, 1000)}})});
  if (!logged.ok()) {
    log::Error("policy change applied but its audit append failed",
               {{"request_id", ctx.request_id}, {"policy_version", change.version}, {"error", logged.status().ToString()}});
    return logged.status();
  }
  j["audit_index"] = (*logged)[0];
  return JsonResponse(change.created ? 201 : 200, j);
}

}  // namespace

void RegisterPolicyRoutes(Dispatcher& d, std::function<residency::PolicyStore*()> policy,
                          std::function<audit::Ledger*()> ledger) {
  d.AddRoute("PUT", "/v1/regions/{region}", Access::kScoped, "admin",
             [policy, ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               if (!ctx.principal->tenant.empty())
                 return PermissionDenied("regions are shared by every tenant; a tenant-bound token cannot change them");
               const std::string& id = ctx.params["region"];
               GL_ASSIGN_OR_RETURN(auto region, residency::RegionFromJson(id, ctx.body, policy()->jurisdictions()));
               GL_ASSIGN_OR_RETURN(auto change, policy()->PutRegion(ctx.principal->name, region));
               return Changed(ctx, ledger(), change, residency::RegionToJson(region));
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
               GL_ASSIGN_OR_RETURN(auto change, policy()->PutTenant(ctx.principal->name, tenant));
               return Changed(ctx, ledger(), change, residency::TenantToJson(tenant));
             });
  d.AddRoute("GET", "/v1/tenants/{tenant}", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto tenant, policy()->GetTenant(ctx.tenant));
               if (!tenant) return NotFound("tenant " + ctx.tenant + " is not defined");
               nlohmann::json j = residency::TenantToJson(*tenant);
               j["policy_version"] = policy()->version();
               return JsonResponse(200, j);
             });
  d.AddRoute("GET", "/v1/tenants/{tenant}/history", Access::kScoped, "admin",
             [policy](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_ASSIGN_OR_RETURN(auto history, policy()->History(ctx.tenant));
               nlohmann::json changes = nlohmann::json::array();
               for (const auto& c : history) changes.push_back(residency::ChangeRecordToJson(c));
               return JsonResponse(200, {{"tenant", ctx.tenant}, {"changes", changes}});
             });
  // Each change is a synced write to the policy store and a durable audit entry.
  d.MarkBlockingRoute("PUT", "/v1/regions/{region}");
  d.MarkBlockingRoute("PUT", "/v1/tenants/{tenant}");
}

}  // namespace geoledger::server
