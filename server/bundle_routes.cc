#include "server/bundle_routes.h"

#include <map>
#include <sstream>

#include "common/encoding.h"
#include "common/log.h"
#include "residency/bundle.h"
#include "server/audit_routes.h"
#include "server/policy_routes.h"
#include "server/problem.h"

namespace geoledger::server {
namespace {

Status OnlyUnrestricted(const RequestContext& ctx) {
  if (!ctx.principal->tenant.empty())
    return PermissionDenied("a policy bundle holds every tenant; a tenant-bound token cannot use it");
  return Status::Ok();
}

// Why an import was refused, for the audit entry.
std::string RefusalReason(const Status& st) {
  switch (st.code()) {
    case StatusCode::kPermissionDenied: return "untrusted-signature";
    case StatusCode::kFailedPrecondition: return "not-newer";
    case StatusCode::kInvalidArgument: return "malformed";
    default: return "error";
  }
}

// The version an import replaced, as the store recorded it under its lock
// (decimal; "0" if absent).
std::string PreviousVersion(const residency::ChangeRecord& change) {
  for (const auto& c : change.changes)
    if (c.field == "version") return c.from;
  return "0";
}

}  // namespace

std::map<std::string, std::string> BundleChangeDetails(const residency::ChangeRecord& change) {
  std::map<std::string, std::string> details = {{"policy_version", std::to_string(change.version)},
                                                {"previous_version", PreviousVersion(change)}};
  for (const auto& c : change.changes)
    if (c.field != "version") details[c.field] = c.to;
  return details;
}

StatusOr<std::vector<std::string>> ParseTrustedKeys(const std::string& text) {
  std::vector<std::string> keys;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    auto key = Base64Decode(line.substr(start));
    if (!key || key->size() != crypto::kEd25519PublicKeyBytes)
      return InvalidArgument("trusted keys line " + std::to_string(n) +
                             ": expected the base64 of a raw 32-byte Ed25519 public key");
    keys.push_back(*key);
  }
  return keys;
}

void RegisterBundleRoutes(Dispatcher& d, BundleRouteDeps deps) {
  d.AddRoute("GET", "/v1/policy/bundle", Access::kScoped, "admin",
             [deps](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_RETURN_IF_ERROR(OnlyUnrestricted(ctx));
               const crypto::Ed25519Signer* signer = deps.signer();
               if (signer == nullptr)
                 return Unavailable("this instance has no policy-signing key (DATA_DIR/keys/policy-signing.key); "
                                    "export from the instance that edits the policy");
               GL_ASSIGN_OR_RETURN(auto doc, deps.policy()->Export());
               // Version 0 is no policy: a bundle of it would be refused by
               // every importer as not newer than theirs.
               if (doc.version == 0)
                 return NotFound("residency policy: nothing to export yet (no region or tenant has been set)");
               HttpResponse r;
               r.body = residency::SignBundle(doc, *signer);
               r.headers.emplace_back("X-Policy-Version", std::to_string(doc.version));
               return r;
             });
  d.AddRoute("POST", "/v1/policy/bundle", Access::kScoped, "admin",
             [deps](RequestContext& ctx) -> StatusOr<HttpResponse> {
               GL_RETURN_IF_ERROR(OnlyUnrestricted(ctx));
               const uint64_t before = deps.policy()->version();
               PolicyChangeAudit audit(deps.ledger(), [&ctx](const residency::ChangeRecord& change) {
                 return ServiceEvent(ctx, "policy.bundle.imported", "policy", "ok", BundleChangeDetails(change));
               });
               auto imported = residency::ImportBundle(*deps.policy(), ctx.request.body, *deps.trusted_keys(),
                                                       deps.last_known_good_path, ctx.principal->name, audit.Hook());
               // The ledger refused the import's entry (nothing changed) or
               // the write that carried both failed (nothing is active; a
               // restart shows whether it reached the disk): recording a
               // refusal would say the bundle was refused. So would
               // recording a store that is unavailable.
               if (audit.hook_failed()) return imported.status();
               if (!imported.ok() && imported.status().code() != StatusCode::kInternal &&
                   imported.status().code() != StatusCode::kUnavailable) {
                 // Refused: nothing changed. Record the attempt, answer the refusal.
                 auto logged = deps.ledger()->Append({ServiceEvent(
                     ctx, "policy.bundle.refused", "policy", "denied",
                     {{"reason", RefusalReason(imported.status())}, {"active_version", std::to_string(before)}})});
                 if (!logged.ok())
                   log::Error("policy bundle refusal could not be audit-logged",
                              {{"request_id", ctx.request_id}, {"error", logged.status().ToString()}});
                 return imported.status();
               }
               if (!imported.ok()) {
                 log::Error("policy bundle import", {{"request_id", ctx.request_id}, {"error", imported.status().ToString()}});
                 return imported.status();
               }
               if (const auto& earlier = imported->earlier)
                 log::Warn(earlier->outcome == residency::PendingImport::kSaved
                               ? "an earlier import's saved bundle is now the last-known-good file"
                               : "an earlier import's saved bundle was removed",
                           {{"request_id", ctx.request_id},
                            {"bundle_version", earlier->version ? std::to_string(*earlier->version) : "unreadable"},
                            {"outcome", residency::DescribeOutcome(*earlier)}});
               // Active and audited from here on, whether or not its file was saved.
               const residency::ChangeRecord& change = imported->change;
               const Status& saved = imported->last_known_good;
               if (!saved.ok()) {
                 log::Error("policy bundle activated but the last-known-good file was not saved; unless only the "
                            "directory's fsync failed, the bundle stays in policy-bundle.json.pending, which the next "
                            "import or start puts in its place, and imports are refused until it can be (runbook)",
                            {{"request_id", ctx.request_id}, {"policy_version", change.version},
                             {"error", saved.ToString()}});
                 auto logged = deps.ledger()->Append({ServiceEvent(ctx, "policy.bundle.last_known_good", "policy",
                                                                   "failed",
                                                                   {{"policy_version", std::to_string(change.version)}})});
                 if (!logged.ok())
                   log::Error("the unsaved last-known-good file could not be audit-logged",
                              {{"request_id", ctx.request_id}, {"error", logged.status().ToString()}});
               }
               const uint64_t previous = std::stoull(PreviousVersion(change));
               log::Info("policy bundle imported", {{"policy_version", change.version}, {"previous_version", previous},
                                                    {"actor", ctx.principal->name}});
               return JsonResponse(200, {{"policy_version", change.version},
                                         {"previous_version", previous},
                                         // The reason (paths, the system's error) is in the log under
                                         // this request's id, like any internal error's.
                                         {"last_known_good", saved.ok() ? "saved" : "not saved (see the log)"},
                                         {"audit_index", change.audit_index.value_or(0)}});
             });
  // Verifies, audits, activates and persists a whole policy: seconds for a
  // bundle at the body limit's maximum (about 220,000 tenants in 64 MiB).
  d.MarkBlockingRoute("POST", "/v1/policy/bundle", /*long_running=*/true);
  // Reads and renders every tenant (a million of them take seconds), from a
  // snapshot of the store, without holding up policy changes.
  d.MarkBlockingRoute("GET", "/v1/policy/bundle", /*long_running=*/true);
}

}  // namespace geoledger::server
