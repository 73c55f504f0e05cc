#include "server/admin_routes.h"

#include "common/log.h"
#include "server/audit_routes.h"
#include "server/json_fields.h"

namespace geoledger::server {
namespace {

nlohmann::json PrincipalJson(const Principal& p) {
  nlohmann::json j = {{"id", p.id},
                      {"name", p.name},
                      {"scopes", p.scopes},
                      {"created_unix_ms", p.created_unix_ms},
                      {"created_by", p.created_by},
                      {"revoked", p.revoked}};
  if (!p.tenant.empty()) j["tenant"] = p.tenant;
  return j;
}

}  // namespace

void RegisterAdminRoutes(Dispatcher& d, std::function<TokenStore*()> tokens,
                         std::function<audit::Ledger*()> ledger) {
  d.AddRoute("GET", "/v1/whoami", Access::kAuthenticated, "",
             [](RequestContext& ctx) -> StatusOr<HttpResponse> {
               nlohmann::json j = PrincipalJson(*ctx.principal);
               return JsonResponse(200, j);
             });

  d.AddRoute("POST", "/v1/admin/tokens", Access::kScoped, "admin",
             [tokens, ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               constexpr const char* kFields[] = {"name", "scopes", "tenant"};
               GL_RETURN_IF_ERROR(OnlyFields(ctx.body, kFields));
               GL_ASSIGN_OR_RETURN(std::string name, StringField(ctx.body, "name", true, 64));
               if (!ctx.body.contains("scopes") || !ctx.body["scopes"].is_array())
                 return InvalidArgument("'scopes' must be an array of strings");
               std::vector<std::string> scopes;
               for (const auto& s : ctx.body["scopes"]) {
                 if (!s.is_string()) return InvalidArgument("'scopes' must be an array of strings");
                 scopes.push_back(s.get<std::string>());
               }
               GL_ASSIGN_OR_RETURN(std::string tenant, StringField(ctx.body, "tenant", false, 64));
               // A token can only hand out what it holds: no scope it lacks, and a
               // tenant-bound creator only creates tokens bound to its tenant.
               for (const auto& s : scopes)
                 if (IsKnownScope(s) && !ctx.principal->HasScope(s))
                   return PermissionDenied("cannot grant scope '" + s + "' this token does not hold");
               if (!ctx.principal->tenant.empty()) {
                 if (!tenant.empty() && tenant != ctx.principal->tenant)
                   return PermissionDenied("cannot create a token for another tenant");
                 tenant = ctx.principal->tenant;
               }
               GL_ASSIGN_OR_RETURN(auto issued,
                                   tokens()->Create(name, std::move(scopes), tenant, ctx.principal->name));
               std::string scopes_text;
               for (const auto& s : issued.principal.scopes) scopes_text += (scopes_text.empty() ? "" : ",") + s;
               auto logged = ledger()->Append({ServiceEvent(ctx, "token.created", "token/" + issued.principal.id, "ok",
                                                            {{"name", issued.principal.name}, {"scopes", scopes_text},
                                                             {"token_tenant", issued.principal.tenant}})});
               if (!logged.ok()) {
                 // No unaudited token may exist: take it back.
                 tokens()->Revoke(issued.principal.id).IgnoreError();
                 return logged.status();
               }
               log::Info("token created", {{"request_id", ctx.request_id},
                                           {"token_id", issued.principal.id},
                                           {"name", issued.principal.name},
                                           {"by", ctx.principal->name}});
               nlohmann::json j = PrincipalJson(issued.principal);
               j["audit_index"] = (*logged)[0];
               j["token"] = issued.token;
               HttpResponse r = JsonResponse(201, j);
               r.headers.emplace_back("Location", "/v1/admin/tokens/" + issued.principal.id);
               return r;
             });

  d.AddRoute("GET", "/v1/admin/tokens", Access::kScoped, "admin",
             [tokens](RequestContext& ctx) -> StatusOr<HttpResponse> {
               nlohmann::json list = nlohmann::json::array();
               for (const auto& p : tokens()->List())
                 if (ctx.principal->tenant.empty() || p.tenant == ctx.principal->tenant)
                   list.push_back(PrincipalJson(p));
               return JsonResponse(200, {{"tokens", list}});
             });

  d.AddRoute("DELETE", "/v1/admin/tokens/{id}", Access::kScoped, "admin",
             [tokens, ledger](RequestContext& ctx) -> StatusOr<HttpResponse> {
               const std::string& id = ctx.params["id"];
               if (!ctx.principal->tenant.empty()) {
                 auto target = tokens()->Find(id);
                 if (!target.ok() || target->tenant != ctx.principal->tenant)
                   return NotFound("no token with id '" + id + "'");
               }
               GL_RETURN_IF_ERROR(tokens()->Revoke(id));
               log::Info("token revoked", {{"request_id", ctx.request_id}, {"token_id", id},
                                           {"by", ctx.principal->name}});
               // The revocation stands even if the audit write fails (fail closed);
               // the caller then gets 503 and the log line above records it.
               GL_ASSIGN_OR_RETURN(auto logged,
                                   ledger()->Append({ServiceEvent(ctx, "token.revoked", "token/" + id, "ok")}));
               return JsonResponse(200, {{"id", id}, {"revoked", true}, {"audit_index", logged[0]}});
             });
  // Synced token-store writes and durable audit entries.
  d.MarkBlockingRoute("POST", "/v1/admin/tokens");
  d.MarkBlockingRoute("DELETE", "/v1/admin/tokens/{id}");
}

}  // namespace geoledger::server
