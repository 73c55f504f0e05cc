#include "server/decision_routes.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "common/clock.h"
#include "common/encoding.h"
#include "crypto/hash.h"
#include "residency/date.h"
#include "server/audit_routes.h"
#include "server/json_fields.h"
#include "server/problem.h"

namespace geoledger::server {
namespace {

constexpr size_t kMaxFieldBytes = 64;
constexpr const char* kFields[] = {"tenant", "category", "operation", "region"};

// One request's inputs, owned (the engine takes string_views of them).
struct Input {
  std::string tenant, category, operation, region;
  residency::DecisionRequest View() const { return {tenant, category, operation, region}; }
};

StatusOr<Input> ReadInput(const nlohmann::json& obj, const std::string& where) {
  if (!obj.is_object()) return InvalidArgument(where + " must be a JSON object");
  if (Status only = OnlyFields(obj, kFields); !only.ok())  // a batch's message names the request
    return where == "field" ? only : InvalidArgument(where + ": " + only.message());
  Input in;
  GL_ASSIGN_OR_RETURN(in.tenant, StringField(obj, "tenant", true, kMaxFieldBytes, where.c_str()));
  GL_ASSIGN_OR_RETURN(in.category, StringField(obj, "category", true, kMaxFieldBytes, where.c_str()));
  GL_ASSIGN_OR_RETURN(in.operation, StringField(obj, "operation", true, kMaxFieldBytes, where.c_str()));
  GL_ASSIGN_OR_RETURN(in.region, StringField(obj, "region", true, kMaxFieldBytes, where.c_str()));
  return in;
}

// The requests of a POST /v1/decisions body; `batch` says which shape it had.
StatusOr<std::vector<Input>> ReadInputs(const nlohmann::json& body, bool* batch) {
  if (!body.is_object()) return InvalidArgument("body must be a JSON object");
  *batch = body.contains("requests");
  std::vector<Input> out;
  if (!*batch) {
    GL_ASSIGN_OR_RETURN(auto in, ReadInput(body, "field"));
    out.push_back(std::move(in));
    return out;
  }
  constexpr const char* kBatchFields[] = {"requests"};
  GL_RETURN_IF_ERROR(OnlyFields(body, kBatchFields));
  const auto& reqs = body["requests"];
  if (!reqs.is_array() || reqs.empty() || reqs.size() > kMaxDecisionBatch)
    return InvalidArgument("'requests' must be an array of 1-" + std::to_string(kMaxDecisionBatch) + " requests");
  out.reserve(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    GL_ASSIGN_OR_RETURN(auto in, ReadInput(reqs[i], "requests[" + std::to_string(i) + "]"));
    out.push_back(std::move(in));
  }
  return out;
}

// Written in a decision's audit entry in place of a value the policy does not
// know: that is whatever the caller sent (free text, personal data even, and
// the log cannot be redacted), and the reason code already says what was
// unknown.
constexpr std::string_view kNotRecorded = "(unknown, not recorded)";

// Which of a request's values the policy knows. The engine checks them in
// the order tenant, category, operation, region and stops at the first
// unknown (or a suspended tenant); the rest are looked up here.
struct Known {
  bool tenant, category, operation, region;
};
Known KnownValues(const residency::Snapshot& snapshot, const Input& in, const residency::Decision& d) {
  using residency::Reason;
  Known k{d.reason != Reason::kTenantUnknown, residency::ParseCategory(in.category).has_value(),
          residency::ParseOperation(in.operation).has_value(), d.reason != Reason::kRegionUnknown};
  if (d.reason == Reason::kTenantUnknown || d.reason == Reason::kTenantSuspended ||
      d.reason == Reason::kCategoryUnknown || d.reason == Reason::kOperationUnknown)
    k.region = snapshot.FindRegion(in.region) != nullptr;
  return k;
}

audit::AuditEvent DecisionEvent(const RequestContext& ctx, const Input& in, const residency::Decision& d,
                                const std::string& decision_id, const residency::Snapshot& snapshot) {
  Known known = d.allow ? Known{true, true, true, true} : KnownValues(snapshot, in, d);
  // A token's bound tenant was set by an administrator, not by the caller:
  // recorded even when the policy does not know it (as on refusals).
  if (ctx.principal && !ctx.principal->tenant.empty() && ctx.principal->tenant == in.tenant) known.tenant = true;
  auto recorded = [](bool is_known, const std::string& value) {
    return is_known ? value : std::string(kNotRecorded);
  };
  audit::AuditEvent e = ServiceEvent(ctx, "residency.decision", "tenant/" + recorded(known.tenant, in.tenant),
                                     d.allow ? "allow" : "deny");
  // Emplaced, not from an initializer list, whose strings would be copied twice.
  auto& m = e.details;
  m.emplace("reason", residency::ReasonCode(d.reason));
  m.emplace("legal_basis", d.legal_basis);
  m.emplace("category", recorded(known.category, in.category));
  m.emplace("operation", recorded(known.operation, in.operation));
  m.emplace("region", recorded(known.region, in.region));
  m.emplace("route_region", d.route_region);
  m.emplace("decision_id", decision_id);
  m.emplace("policy_version", std::to_string(d.policy_version));
  // How long the answer may be served from a cache, as answered: an auditor
  // reads from the log alone for how long one entry stands for more uses.
  m.emplace("ttl_s", std::to_string(d.ttl_s));
  // Not ctx.tenant, which the request named (header or query) and may be
  // unknown, or another tenant than the one decided on.
  e.tenant = known.tenant ? in.tenant : std::string();
  return e;
}

// The tenant a refusal made before any decision records: the token's, when
// it is bound to one; otherwise the one the request named, if the policy
// knows it; otherwise none (see kNotRecorded).
std::string RecordedTenant(const RequestContext& ctx, const residency::Engine& engine) {
  if (ctx.tenant.empty() || (ctx.principal && ctx.principal->tenant == ctx.tenant)) return ctx.tenant;
  return engine.Pin()->HasTenant(ctx.tenant) ? ctx.tenant : std::string();
}

nlohmann::json DecisionJson(const residency::Decision& d, const std::string& decision_id) {
  return {{"allow", d.allow},
          {"route_region", std::string(d.route_region)},
          {"legal_basis", std::string(d.legal_basis)},
          {"reason", std::string(residency::ReasonCode(d.reason))},
          {"policy_version", d.policy_version},
          {"decision_id", decision_id},
          {"audit_index", nullptr},
          {"ttl_s", d.ttl_s}};
}

// POST /v1/decisions: the caller may keep the answer for ttl_s; shared caches
// may not (the request names its tenants in the body, which no cache keys on).
std::string CacheControl(uint32_t ttl_s) { return "private, max-age=" + std::to_string(ttl_s); }

// A gateway check's answer may be kept for ttl_s by the gateway's own cache,
// which is a shared one (nginx proxy_cache): hence "public", since the check
// carries Authorization (RFC 9111 §3.5), and a Vary on every request header
// the answer depends on, the token included. nginx applies Vary to its
// client's headers, so what the gateway sets itself (its token) belongs in
// its cache key (README, "Behind nginx").
std::string GatewayCacheControl(uint32_t ttl_s) { return "public, max-age=" + std::to_string(ttl_s); }
constexpr const char* kGatewayVary = "Authorization, X-Tenant-Id, X-Data-Category, X-Operation, X-Target-Region";

int64_t NowSeconds() { return residency::DecisionSeconds(SystemClock::Get().UnixMillis()); }

// What is left of a ttl once `elapsed_s` have passed since its decision
// (ElapsedSeconds). A cache counts max-age from when it receives the answer,
// which in sync mode comes after the entry's sync and any backlog before it;
// a ttl that runs to the end of its legal basis's last day must not be
// stretched by that wait.
uint32_t RemainingTtl(uint32_t ttl_s, int64_t elapsed_s) {
  if (elapsed_s <= 0) return ttl_s;
  return elapsed_s >= int64_t{ttl_s} ? 0 : ttl_s - static_cast<uint32_t>(elapsed_s);
}

// Whole seconds from a decision made at `decided_s` (NowSeconds) to now, read
// once per answer. Both times are rounded up, so an answer's max-age never
// reaches past decided_s + ttl_s, and an answer within the second it was
// decided in keeps the whole ttl.
int64_t ElapsedSeconds(int64_t decided_s) { return NowSeconds() - decided_s; }

// A legal basis as a header value: a safeguard's reference is the tenant's
// text (any printable UTF-8), and a header should carry visible ASCII only
// (RFC 9110 §5.5), so other bytes, and '%', are percent-encoded.
std::string HeaderSafe(std::string_view basis) {
  std::string out;
  out.reserve(basis.size());
  for (unsigned char c : basis) {
    if (c > 0x20 && c < 0x7f && c != '%') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

HttpResponse GatewayAnswer(const residency::OwnedDecision& d, int64_t decided_s, const std::string& decision_id,
                           std::optional<uint64_t> audit_index) {
  HttpResponse r;  // no body: Dispatcher::Finish sends every gateway answer without one
  r.status = d.allow ? 200 : 403;
  if (d.allow) r.headers.emplace_back("X-Residency-Region", d.route_region);
  else r.headers.emplace_back("X-Residency-Reason", std::string(residency::ReasonCode(d.reason)));
  r.headers.emplace_back("X-Residency-Decision-Id", decision_id);
  r.headers.emplace_back("X-Residency-Policy-Version", std::to_string(d.policy_version));
  if (!d.legal_basis.empty()) r.headers.emplace_back("X-Residency-Legal-Basis", HeaderSafe(d.legal_basis));
  if (audit_index) r.headers.emplace_back("X-Residency-Audit-Index", std::to_string(*audit_index));
  r.headers.emplace_back("Cache-Control", GatewayCacheControl(RemainingTtl(d.ttl_s, ElapsedSeconds(decided_s))));
  r.headers.emplace_back("Vary", kGatewayVary);
  return r;
}

// Audits `events` through the decision auditor and answers with
// answer(indexes): in sync mode once the entries are durable (indexes set;
// 503 if they cannot be written), in async mode at once (indexes null).
// When the auditor refuses (bound reached, ledger unhealthy): 503.
using AnswerFn = std::function<HttpResponse(const std::vector<uint64_t>* indexes)>;
// A list of one event, moved in ({e} would copy it).
std::vector<audit::AuditEvent> One(audit::AuditEvent e) {
  std::vector<audit::AuditEvent> events;
  events.push_back(std::move(e));
  return events;
}

void AuditThenAnswer(const DecisionRouteDeps& deps, std::vector<audit::AuditEvent> events, Reply reply,
                     AnswerFn answer) {
  DecisionAuditor* auditor = deps.auditor();
  if (auditor->mode() == DecisionAuditMode::kAsync) {
    Status st = auditor->Submit(std::move(events), [](StatusOr<std::vector<uint64_t>>) {});
    if (!st.ok()) return reply(st);
    reply(answer(nullptr));  // sent here, on this thread
    auditor->Wake();         // then the entry's writer, off the answer's path
    return;
  }
  ReplyWhenDurable(
      std::move(reply), [&](DurableCallback done) { return auditor->Submit(std::move(events), std::move(done)); },
      [answer](const std::vector<uint64_t>& indexes) { return answer(&indexes); },
      Unavailable("decision could not be audit-logged; retry"));
}

void Decisions(const DecisionRouteDeps& deps, RequestContext& ctx, Reply reply) {
  bool batch = false;
  auto inputs = ReadInputs(ctx.body, &batch);
  if (!inputs.ok()) return reply(inputs.status());
  if (!ctx.principal->tenant.empty())
    for (const auto& in : *inputs)
      if (in.tenant != ctx.principal->tenant) return reply(PermissionDenied("token is restricted to another tenant"));

  std::vector<residency::DecisionRequest> views;
  views.reserve(inputs->size());
  for (const auto& in : *inputs) views.push_back(in.View());
  auto answers = std::make_shared<nlohmann::json>(nlohmann::json::array());
  std::vector<audit::AuditEvent> events;
  events.reserve(views.size());
  uint32_t ttl = UINT32_MAX;
  const int64_t decided_s = NowSeconds();
  {
    // One snapshot for the whole batch and for what its audit entries
    // record, pinned only while they are made.
    const auto snapshot = deps.engine()->Pin();
    std::vector<residency::Decision> decisions(views.size());
    snapshot->DecideBatch(views, decided_s, decisions);
    for (size_t i = 0; i < decisions.size(); ++i) {
      std::string id = NewDecisionId();
      events.push_back(DecisionEvent(ctx, (*inputs)[i], decisions[i], id, *snapshot));
      answers->push_back(DecisionJson(decisions[i], id));
      ttl = std::min(ttl, decisions[i].ttl_s);
    }
  }
  auto render = [answers, batch, ttl, decided_s](const std::vector<uint64_t>* indexes) {
    if (indexes)
      for (size_t i = 0; i < answers->size(); ++i) (*answers)[i]["audit_index"] = (*indexes)[i];
    // Each ttl_s as it stands now (RemainingTtl); the audit entries keep the decided ones.
    const int64_t elapsed = ElapsedSeconds(decided_s);
    if (elapsed > 0)
      for (auto& a : *answers) a["ttl_s"] = RemainingTtl(a["ttl_s"].get<uint32_t>(), elapsed);
    HttpResponse r = JsonResponse(200, batch ? nlohmann::json{{"decisions", std::move(*answers)}}
                                             : std::move((*answers)[0]));
    r.headers.emplace_back("Cache-Control", CacheControl(RemainingTtl(ttl, elapsed)));
    return r;
  };
  AuditThenAnswer(deps, std::move(events), std::move(reply), render);
}

// A gateway check refused before a decision (a header missing, too long or
// not UTF-8, an invalid tenant id, a token bound to another tenant) is
// audited like a denied decision, with its reason and the header's name
// (never its value), and answered the same way: in sync mode once the entry
// is durable, with 503 if it cannot be written. The entry names the
// tenant RecordedTenant gives: for a token bound to another tenant, the
// token's tenant; for an invalid tenant id, none; for one the policy does
// not know, kNotRecorded.
void RefuseUndecided(const DecisionRouteDeps& deps, RequestContext& ctx, Reply reply, const char* reason,
                     const char* header, std::string detail) {
  std::string id = NewDecisionId();
  std::string tenant = RecordedTenant(ctx, *deps.engine());
  const std::string resource =
      "tenant/" + (tenant.empty() && !ctx.tenant.empty() ? std::string(kNotRecorded) : tenant);
  audit::AuditEvent e = ServiceEvent(ctx, "residency.decision", resource, "deny",
                                     {{"reason", reason}, {"header", header}, {"decision_id", id}});
  e.tenant = std::move(tenant);
  auto answer = [reason, detail, id](const std::vector<uint64_t>* indexes) {
    HttpResponse r;  // no body: Dispatcher::Finish sends every gateway answer without one
    r.status = 403;
    r.headers.emplace_back("X-Residency-Reason", reason);
    r.headers.emplace_back("X-Residency-Detail", detail);
    r.headers.emplace_back("X-Residency-Decision-Id", id);
    if (indexes) r.headers.emplace_back("X-Residency-Audit-Index", std::to_string((*indexes)[0]));
    return r;
  };
  AuditThenAnswer(deps, One(std::move(e)), std::move(reply), answer);
}

void GatewayCheck(const DecisionRouteDeps& deps, RequestContext& ctx, Reply reply) {
  if (ctx.gateway_refusal)
    return RefuseUndecided(deps, ctx, std::move(reply), ctx.gateway_refusal->reason, "x-tenant-id",
                           ctx.gateway_refusal->detail);
  const HttpRequest& req = ctx.request;
  Input in;
  struct {
    const char* header;
    std::string* out;
  } wanted[] = {{"x-tenant-id", &in.tenant},
                {"x-data-category", &in.category},
                {"x-operation", &in.operation},
                {"x-target-region", &in.region}};
  for (const auto& w : wanted) {
    const std::string* v = req.Header(w.header);
    // Two values (empty ones too): which one a backend acts on is its own
    // choice, not ours.
    if (req.HeaderCount(w.header) > 1)
      return RefuseUndecided(deps, ctx, std::move(reply), "invalid-header", w.header,
                             std::string("header ") + w.header + " appears more than once");
    if (v == nullptr || v->empty())
      return RefuseUndecided(deps, ctx, std::move(reply), "missing-header", w.header,
                             std::string("header ") + w.header + " is required");
    if (v->size() > kMaxFieldBytes)
      return RefuseUndecided(deps, ctx, std::move(reply), "invalid-header", w.header,
                             std::string("header ") + w.header + " is longer than 64 bytes");
    if (!IsValidUtf8(*v))
      return RefuseUndecided(deps, ctx, std::move(reply), "invalid-header", w.header,
                             std::string("header ") + w.header + " is not UTF-8");
    *w.out = *v;
  }
  // A token bound to another tenant came in as ctx.gateway_refusal (above).
  residency::OwnedDecision d;  // answered after the read: its strings are copied
  std::string id = NewDecisionId();
  std::vector<audit::AuditEvent> events;
  const int64_t decided_s = NowSeconds();
  {
    const auto snapshot = deps.engine()->Pin();  // the decision and what its entry records
    const residency::Decision decided = snapshot->Decide(in.View(), decided_s);
    events = One(DecisionEvent(ctx, in, decided, id, *snapshot));
    d = residency::OwnedDecision(decided);
  }
  AuditThenAnswer(deps, std::move(events), std::move(reply), [d, decided_s, id](const std::vector<uint64_t>* indexes) {
    return GatewayAnswer(d, decided_s, id, indexes ? std::optional<uint64_t>((*indexes)[0]) : std::nullopt);
  });
}

}  // namespace

std::string NewDecisionId() {
  thread_local std::string prefix = HexEncode(crypto::RandomBytes(6));
  thread_local uint32_t counter = 0;
  if (++counter == 0) prefix = HexEncode(crypto::RandomBytes(6));  // never reuse prefix+counter
  std::string id;
  id.reserve(prefix.size() + 8);
  id += prefix;
  AppendHex(counter, 8, id);
  return id;
}

void RegisterDecisionRoutes(Dispatcher& d, DecisionRouteDeps deps) {
  d.AddDeferredRoute("POST", "/v1/decisions", Access::kScoped, "decide",
                     [deps](RequestContext& ctx, Reply reply) { Decisions(deps, ctx, std::move(reply)); });
  // A batch of up to 1000 decisions is parsed and decided off the HTTP thread.
  d.OffloadLargeBodies("POST", "/v1/decisions", kInlineBodyBytes);
  d.AddGatewayRoute("/v1/gateway/check", Access::kScoped, "decide",
                    [deps](RequestContext& ctx, Reply reply) { GatewayCheck(deps, ctx, std::move(reply)); });
}

}  // namespace geoledger::server
