#include "server/dispatcher.h"

#include <pthread.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <set>

#include "common/encoding.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "server/decision_routes.h"  // kMaxDecisionBatch
#include "server/problem.h"

namespace geoledger::server {
namespace {

bool IsBodyMethod(const std::string& m) { return m == "POST" || m == "PUT" || m == "PATCH"; }

bool IsJsonContentType(const std::string* ct) {
  if (ct == nullptr) return false;
  std::string v = *ct;
  std::transform(v.begin(), v.end(), v.begin(), AsciiLower);
  auto semi = v.find(';');
  std::string type = v.substr(0, semi);
  type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
  return type == "application/json";
}

// What a scan of a JSON text finds outside its strings: the nesting depth
// (bounded before parsing, so a deeply nested body cannot exhaust the
// stack) and the number of ':', which in valid JSON is the number of keys.
struct JsonShape {
  size_t depth = 0;
  size_t keys = 0;
};
JsonShape ScanJson(const std::string& s) {
  JsonShape shape;
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') shape.depth = std::max(shape.depth, ++depth);
    else if ((c == ']' || c == '}') && depth > 0) --depth;
    else if (c == ':') ++shape.keys;
  }
  return shape;
}

// The members of every object in `j`. Fewer than the keys the text named
// means an object named a key twice: nlohmann keeps the last value
// silently, so {"tenant":"a","tenant":"b"} would be decided for "b" while a
// reader of the request, or a proxy in front of us, may take "a".
size_t ObjectMembers(const nlohmann::json& j) {
  size_t n = 0;
  if (j.is_object()) {
    n += j.size();
    for (const auto& member : j) n += ObjectMembers(member);
  } else if (j.is_array()) {
    for (const auto& value : j) n += ObjectMembers(value);
  }
  return n;
}

ProblemKind KindForHttp(int status) {
  switch (status) {
    case 400: return ProblemKind::kBadRequest;
    case 408: return ProblemKind::kRequestTimeout;
    case 413: return ProblemKind::kPayloadTooLarge;
    case 431: return ProblemKind::kHeadersTooLarge;
    case 503: return ProblemKind::kUnavailable;
    default: return ProblemKind::kBadRequest;
  }
}

}  // namespace

struct Reply::Exchange {
  explicit Exchange(HttpRequest r)
      : request(std::move(r)), ctx{request, ChooseRequestId(request.Header("x-request-id")), "unmatched", {}, std::nullopt, {}, {}, std::nullopt} {}
  HttpRequest request;
  RequestContext ctx;
  Dispatcher* dispatcher = nullptr;
  int metrics_id = HttpMetrics::kUnmatched;
  std::chrono::steady_clock::time_point start;
  std::function<void(HttpResponse)> done;
  std::atomic<bool> answered{false};
};

Reply::~Reply() {
  if (exchange_ && !exchange_->answered.load()) {
    log::Error("deferred handler dropped its reply", {{"request_id", exchange_->ctx.request_id}, {"route", exchange_->ctx.route}});
    (*this)(Internal("request was not answered"));
  }
}

void Reply::operator()(StatusOr<HttpResponse> result) {
  if (!exchange_ || exchange_->answered.exchange(true)) return;
  std::shared_ptr<Exchange> ex = std::move(exchange_);
  HttpResponse response = result.ok() ? std::move(*result) : ex->dispatcher->ErrorResponse(result.status(), ex->ctx);
  ex->dispatcher->Complete(*ex, std::move(response));
}

void ReplyWhenDurable(Reply reply, const std::function<Status(DurableCallback)>& submit,
                      std::function<HttpResponse(const std::vector<uint64_t>& indexes)> answer,
                      std::optional<Status> write_failed) {
  auto shared = std::make_shared<Reply>(std::move(reply));
  Status queued = submit([shared, answer = std::move(answer), write_failed](StatusOr<std::vector<uint64_t>> r) {
    if (!r.ok()) return (*shared)(write_failed ? *write_failed : r.status());
    (*shared)(answer(*r));
  });
  if (!queued.ok()) (*shared)(queued);
}

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

StatusOr<uint64_t> QueryNumber(const RequestContext& ctx, const std::string& name) {
  auto it = ctx.request.query.find(name);
  if (it == ctx.request.query.end()) return InvalidArgument("query parameter '" + name + "' is required");
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return InvalidArgument("query parameter '" + name + "' must be a non-negative integer");
  return v;
}

StatusOr<std::optional<uint64_t>> OptionalQueryNumber(const RequestContext& ctx, const std::string& name) {
  if (!ctx.request.query.count(name)) return std::optional<uint64_t>();
  GL_ASSIGN_OR_RETURN(uint64_t v, QueryNumber(ctx, name));
  return std::optional<uint64_t>(v);
}

std::string ChooseRequestId(const std::string* header) {
  if (header != nullptr && !header->empty() && header->size() <= 128 &&
      std::all_of(header->begin(), header->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
      }))
    return *header;
  // Unique within the process without a system call per request: a random
  // per-thread prefix and a per-thread counter.
  thread_local const std::string prefix = HexEncode(crypto::RandomBytes(4));
  thread_local uint64_t counter = 0;
  std::string id;
  id.reserve(prefix.size() + 16);
  id += prefix;
  AppendHex(++counter, 16, id);
  return id;
}

Dispatcher::Dispatcher(Options options, const Clock* clock, HttpMetrics* metrics)
    : options_(options),
      clock_(clock),
      metrics_(metrics),
      tenant_limiter_(options.tenant_limit, clock),
      token_limiter_(options.token_limit, clock) {
  blocking_.max_queued = options_.max_queued_blocking;
  bulk_.max_queued = options_.max_queued_bulk;
  StartPool(blocking_, options_.blocking_threads);
  StartPool(bulk_, options_.bulk_threads);
}

Dispatcher::~Dispatcher() { StopBlockingWorkers(); }

void Dispatcher::StartPool(Pool& pool, size_t n) {
  pool.size = n;
  for (size_t i = 0; i < n; ++i)
    pool.threads.emplace_back([this, &pool] {
      pthread_setname_np(pthread_self(), pool.thread_name);
      PoolLoop(pool);
    });
}

void Dispatcher::StopBlockingWorkers() {
  StopPool(blocking_);
  StopPool(bulk_);
}

void Dispatcher::StopPool(Pool& pool) {
  std::deque<BlockingWork> queued;
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    pool.stopping = true;
    queued.swap(pool.queue);
  }
  pool.cv.notify_all();
  for (auto& w : queued) Reply(std::move(w.exchange))(Unavailable("server is shutting down"));
  for (auto& t : pool.threads)
    if (t.joinable()) t.join();
}

bool Dispatcher::Queue(Pool& pool, const std::shared_ptr<Reply::Exchange>& ex, int route_id) {
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    if (pool.stopping || pool.queue.size() >= pool.max_queued) return false;
    pool.queue.push_back({ex, route_id});
  }
  pool.cv.notify_one();
  return true;
}

void Dispatcher::PoolLoop(Pool& pool) {
  const size_t threads = pool.size;
  while (true) {
    BlockingWork w;
    bool long_running = false;
    {
      std::unique_lock<std::mutex> lock(pool.mu);
      // The oldest queued request this thread may take: a long-running one
      // only while another thread stays free for the rest.
      auto next = pool.queue.end();
      pool.cv.wait(lock, [&] {
        const bool long_ok = pool.long_running + 1 < threads || threads == 1;
        next = std::find_if(pool.queue.begin(), pool.queue.end(),
                            [&](const BlockingWork& q) { return long_ok || !routes_[q.route_id].long_running; });
        return pool.stopping || next != pool.queue.end();
      });
      if (next == pool.queue.end()) return;  // stopping: StopPool answered the queue
      w = std::move(*next);
      pool.queue.erase(next);
      long_running = routes_[w.route_id].long_running;
      pool.long_running += long_running ? 1 : 0;
    }
    const Route& route = routes_[w.route_id];
    RequestContext& ctx = w.exchange->ctx;
    std::optional<StatusOr<HttpResponse>> result;  // none: a deferred handler took the request
    try {
      if (auto refused = ReadBody(route, ctx, w.exchange->request))
        result = std::move(*refused);
      else if (route.deferred)
        route.deferred(ctx, Reply(w.exchange));  // `w` keeps `ctx` alive while it runs
      else
        result = route.handler(ctx);
    } catch (const std::exception& e) {
      log::Error("handler threw", {{"request_id", ctx.request_id}, {"error", e.what()}});
      result = Internal("unhandled exception");
    } catch (...) {
      log::Error("handler threw", {{"request_id", ctx.request_id}});
      result = Internal("unhandled exception");
    }
    // A deferred handler that threw after taking its Reply has answered (500)
    // through the Reply's destructor; the exchange is answered once.
    if (result) Reply(std::move(w.exchange))(std::move(*result));
    if (long_running) {
      {
        std::lock_guard<std::mutex> lock(pool.mu);
        --pool.long_running;
      }
      pool.cv.notify_all();  // a long-running request may wait for this slot
    }
  }
}

void Dispatcher::Register(int router_id, Route route) {
  if (static_cast<int>(routes_.size()) != router_id) std::abort();
  route.metrics_id = metrics_->AddRoute(router_.method(router_id), router_.pattern(router_id));
  routes_.push_back(std::move(route));
}

void Dispatcher::AddRoute(const std::string& method, const std::string& pattern, Access access,
                          const std::string& scope, RouteHandler handler) {
  Register(router_.Add(method, pattern), {access, scope, std::move(handler), nullptr, -1});
}

void Dispatcher::AddDeferredRoute(const std::string& method, const std::string& pattern, Access access,
                                  const std::string& scope, DeferredHandler handler) {
  Register(router_.Add(method, pattern), {access, scope, nullptr, std::move(handler), -1});
}

Dispatcher::Route& Dispatcher::FindRoute(const std::string& method, const std::string& pattern) {
  for (size_t i = 0; i < routes_.size(); ++i)
    if (router_.method(static_cast<int>(i)) == method && router_.pattern(static_cast<int>(i)) == pattern)
      return routes_[i];
  std::abort();  // registration bug
}

void Dispatcher::AddGatewayRoute(const std::string& pattern, Access access, const std::string& scope,
                                 DeferredHandler handler) {
  Route route{access, scope, nullptr, std::move(handler), -1};
  route.gateway = true;
  Register(router_.AddCatchAll(pattern), std::move(route));  // metrics method "*"
}

void Dispatcher::MarkBlockingRoute(const std::string& method, const std::string& pattern, bool long_running) {
  Route& route = FindRoute(method, pattern);
  if (!route.handler) std::abort();  // deferred routes never block
  route.blocking = true;
  route.long_running = long_running;
}

void Dispatcher::OffloadLargeBodies(const std::string& method, const std::string& pattern, size_t bytes) {
  Route& route = FindRoute(method, pattern);
  if (route.blocking || route.gateway) std::abort();  // registration bug: those never run here
  route.bulk_above = bytes;
}

HttpResponse Dispatcher::Handle(const HttpRequest& request) {
  auto promise = std::make_shared<std::promise<HttpResponse>>();
  auto future = promise->get_future();
  HandleAsync(request, [promise](HttpResponse r) { promise->set_value(std::move(r)); });
  return future.get();
}

void Dispatcher::HandleAsync(HttpRequest request, std::function<void(HttpResponse)> done) {
  auto ex = std::make_shared<Reply::Exchange>(std::move(request));
  ex->dispatcher = this;
  ex->start = clock_->Now();
  ex->done = std::move(done);
  in_flight_.fetch_add(1);
  metrics_->AddInFlight(1);
  std::optional<HttpResponse> response;
  try {
    response = Process(ex);
  } catch (const std::exception& e) {
    log::Error("handler threw", {{"request_id", ex->ctx.request_id}, {"error", e.what()}});
    response = ProblemFromStatus(Internal("unhandled exception"), ex->ctx.request_id);
  } catch (...) {
    log::Error("handler threw", {{"request_id", ex->ctx.request_id}});
    response = ProblemFromStatus(Internal("unhandled exception"), ex->ctx.request_id);
  }
  // A deferred handler that threw after taking its Reply has answered (500)
  // through the Reply's destructor; `answered` keeps this to one response.
  if (response && !ex->answered.exchange(true)) Complete(*ex, std::move(*response));
}

void Dispatcher::Complete(Reply::Exchange& ex, HttpResponse response) {
  Finish(ex.request, ex.ctx, response, ex.metrics_id, ex.start);
  metrics_->AddInFlight(-1);
  auto done = std::move(ex.done);
  done(std::move(response));
  // After the response is handed over, so a drain waits for it.
  in_flight_.fetch_sub(1);
}

HttpResponse Dispatcher::ErrorResponse(const Status& status, const RequestContext& ctx) {
  if (ProblemKindFor(status.code()) == ProblemKind::kInternal)
    log::Error("request failed", {{"request_id", ctx.request_id}, {"route", ctx.route}, {"error", status.ToString()}});
  return ProblemFromStatus(status, ctx.request_id);
}

std::optional<HttpResponse> Dispatcher::Limit(RateLimiter& limiter, const std::string& key, bool by_tenant,
                                              const char* what, const std::string& rid) {
  auto decision = limiter.Acquire(key);
  if (decision.allowed) return std::nullopt;
  metrics_->CountRateLimited(by_tenant);
  HttpResponse r = MakeProblem(ProblemKind::kRateLimited, std::string("rate limit for this ") + what + " exceeded", rid);
  r.headers.emplace_back("Retry-After", std::to_string(decision.retry_after_seconds));
  return r;
}

std::optional<HttpResponse> Dispatcher::ReadBody(const Route& route, RequestContext& ctx,
                                                 const HttpRequest& request) {
  const std::string& rid = ctx.request_id;
  // A gateway check reads headers only; whatever body a gateway forwards
  // (Envoy's with_request_body) is not its business.
  if (!route.gateway && IsBodyMethod(request.method) && !request.body.empty()) {
    if (!IsJsonContentType(request.Header("content-type")))
      return MakeProblem(ProblemKind::kUnsupportedMediaType, "request body must be application/json", rid);
    const JsonShape shape = ScanJson(request.body);
    if (shape.depth > options_.max_json_depth)
      return MakeProblem(ProblemKind::kBadRequest, "JSON nested too deeply", rid);
    ctx.body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (ctx.body.is_discarded()) return MakeProblem(ProblemKind::kBadRequest, "body is not valid JSON", rid);
    if (ObjectMembers(ctx.body) != shape.keys)
      return MakeProblem(ProblemKind::kBadRequest, "body names a key twice in one object", rid);
    // Every tenant the body names ({"tenant": …} of the key routes and of a
    // single decision, and each of a decision batch's requests[*].tenant)
    // keys the per-tenant limit too, whatever tenant the path, a header or
    // the query named: a token that is not bound to a tenant cannot bypass a
    // tenant's limit by naming another one outside the body, or by batching.
    // Handlers still validate the fields. A tenant-bound token is charged to
    // its own tenant only: its handlers refuse any other, and charging that
    // other tenant would let one tenant's token drain another's limit.
    if (route.access != Access::kPublic && ctx.body.is_object() && ctx.principal && ctx.principal->tenant.empty()) {
      std::set<std::string_view> named;
      auto add = [&](const nlohmann::json& obj) {
        if (!obj.is_object()) return;
        auto t = obj.find("tenant");
        if (t != obj.end() && t->is_string() && IsValidName(t->get_ref<const std::string&>()) &&
            t->get_ref<const std::string&>() != ctx.tenant)
          named.insert(t->get_ref<const std::string&>());
      };
      add(ctx.body);
      if (auto reqs = ctx.body.find("requests"); reqs != ctx.body.end() && reqs->is_array()) {
        // Refused before any charge: a body naming tens of thousands of
        // tenants would otherwise fill the limiter with their buckets (and
        // crowd out tenants that have none yet) before its handler refuses it.
        if (reqs->size() > kMaxDecisionBatch)
          return MakeProblem(ProblemKind::kBadRequest,
                             "'requests' must be an array of at most " + std::to_string(kMaxDecisionBatch) + " requests",
                             rid);
        for (const auto& r : *reqs) add(r);
      }
      for (std::string_view t : named)
        if (auto limited = Limit(tenant_limiter_, std::string(t), true, "tenant", rid)) return *limited;
    }
  }

  return std::nullopt;
}

std::optional<HttpResponse> Dispatcher::Process(const std::shared_ptr<Reply::Exchange>& ex) {
  const HttpRequest& request = ex->request;
  RequestContext& ctx = ex->ctx;
  int* metrics_id = &ex->metrics_id;
  const std::string& rid = ctx.request_id;
  Router::Match match = router_.Find(request.method, request.path);
  if (match.route_id < 0) {
    if (!match.allowed_methods.empty()) {
      std::string allow;
      for (const auto& m : match.allowed_methods) allow += (allow.empty() ? "" : ", ") + m;
      HttpResponse r = MakeProblem(ProblemKind::kMethodNotAllowed,
                                   request.method + " is not allowed on this resource", rid);
      r.headers.emplace_back("Allow", allow);
      return r;
    }
    return MakeProblem(ProblemKind::kNotFound, "no resource at this path", rid);
  }
  const Route& route = routes_[match.route_id];
  *metrics_id = route.metrics_id;
  ctx.route = router_.pattern(match.route_id);
  ctx.gateway = route.gateway;
  if (request.query_malformed && !route.gateway) return MakeProblem(ProblemKind::kBadRequest, "malformed query string (bad percent-encoding, or a parameter given twice)", rid);
  // While draining, only the public probes answer (/readyz reports the drain).
  if (draining() && route.access != Access::kPublic)
    return ProblemFromStatus(Unavailable("server is shutting down"), rid);
  ctx.params = std::move(match.params);

  if (route.access != Access::kPublic) {
    const TokenStore* tokens = tokens_.load();
    if (tokens == nullptr) return ProblemFromStatus(Unavailable("service is starting"), rid);
    const std::string* auth = request.Header("authorization");
    if (auth == nullptr) return MakeProblem(ProblemKind::kUnauthenticated, "missing bearer token", rid);
    // Which one would count is a guess: a gateway that adds its own token
    // beside its client's must not be authenticated as the client.
    if (request.HeaderCount("authorization") > 1)
      return MakeProblem(ProblemKind::kUnauthenticated, "more than one Authorization header", rid);
    if (auth->size() < 7 || !std::equal(auth->begin(), auth->begin() + 7, "bearer ",
                                        [](char a, char b) { return AsciiLower(a) == b; }))
      return MakeProblem(ProblemKind::kUnauthenticated, "expected 'Authorization: Bearer <token>'", rid);
    auto who = tokens->Authenticate(std::string_view(*auth).substr(7));
    if (!who.ok()) return ProblemFromStatus(who.status(), rid);
    ctx.principal = std::move(*who);
    const Principal& principal = *ctx.principal;
    auto p = ctx.params.find("tenant");
    if (p != ctx.params.end()) ctx.tenant = p->second;
    else if (const std::string* h = request.Header("x-tenant-id")) ctx.tenant = *h;
    // Not for a gateway check: its query string is the gateway's client's
    // (Envoy appends the original path), never a tenant claim.
    else if (auto q = request.query.find("tenant"); q != request.query.end() && !route.gateway) ctx.tenant = q->second;
    if (!ctx.tenant.empty() && !IsValidName(ctx.tenant)) {
      constexpr const char* kInvalid = "tenant id must be 1-64 characters of [A-Za-z0-9._:-]";
      if (!route.gateway) return MakeProblem(ProblemKind::kBadRequest, kInvalid, rid);
      ctx.gateway_refusal = RequestContext::Refusal{"tenant-invalid", kInvalid};
      ctx.tenant.clear();  // never keys a limit or reaches the audit log
    }
    if (!principal.tenant.empty()) {
      if (!ctx.tenant.empty() && ctx.tenant != principal.tenant) {
        constexpr const char* kMismatch = "token is restricted to another tenant";
        if (!route.gateway) return MakeProblem(ProblemKind::kForbidden, kMismatch, rid);
        ctx.gateway_refusal = RequestContext::Refusal{"token-tenant-mismatch", kMismatch};
      }
      ctx.tenant = principal.tenant;
    }

    if (auto limited = Limit(token_limiter_, principal.id, false, "token", rid)) return *limited;
    if (!ctx.tenant.empty())
      if (auto limited = Limit(tenant_limiter_, ctx.tenant, true, "tenant", rid)) return *limited;
    // Checked after the limits, so refused calls are rate limited too.
    if (route.access == Access::kScoped && !principal.HasScope(route.scope))
      return MakeProblem(ProblemKind::kForbidden, "token lacks scope '" + route.scope + "'", rid);
  }

  // A blocking route's body is parsed on the thread that runs it: a large
  // one (a policy bundle) must not hold up the HTTP thread's other requests.
  if (route.blocking) {
    if (Queue(blocking_, ex, match.route_id)) return std::nullopt;
    return ProblemFromStatus(Unavailable(draining() ? "server is shutting down"
                                                    : "too many slow requests are queued; retry"), rid);
  }
  // So is a large body to a route that takes those off the HTTP thread.
  if (request.body.size() > route.bulk_above && bulk_.size > 0) {
    if (Queue(bulk_, ex, match.route_id)) return std::nullopt;
    return ProblemFromStatus(Unavailable(draining() ? "server is shutting down"
                                                    : "too many large requests are queued; retry"), rid);
  }
  if (auto refused = ReadBody(route, ctx, request)) return refused;
  if (route.deferred) {
    route.deferred(ctx, Reply(ex));
    return std::nullopt;
  }
  StatusOr<HttpResponse> result = route.handler(ctx);
  if (!result.ok()) return ErrorResponse(result.status(), ctx);
  return std::move(*result);
}

void Dispatcher::Finish(const HttpRequest& request, const RequestContext& ctx, HttpResponse& response,
                        int metrics_id, std::chrono::steady_clock::time_point start) {
  response.headers.emplace_back("X-Request-Id", ctx.request_id);
  if (draining()) response.close_when_last = true;
  bool has_cache_control = std::any_of(response.headers.begin(), response.headers.end(),
                                       [](const auto& h) { return h.first == "Cache-Control"; });
  if (!has_cache_control) response.headers.emplace_back("Cache-Control", "no-store");
  // A gateway check's answer has no body, whatever its status (401, 429 and
  // 503 keep their headers): nginx reads none from an auth_request
  // subrequest, so after one with a body it closes its kept connection, and
  // every refused or rate-limited check would cost a new one.
  if (ctx.gateway) {
    response.body.clear();
    response.content_type.clear();
  }
  double seconds = std::chrono::duration<double>(clock_->Now() - start).count();
  metrics_->Observe(metrics_id, response.status, seconds);
  if (options_.access_log && log::Enabled(log::Level::kInfo)) {
    nlohmann::json f = {{"request_id", ctx.request_id},
                        {"method", request.method},
                        {"route", ctx.route},
                        {"status", response.status},
                        {"duration_ms", seconds * 1000.0},
                        {"peer", request.peer}};
    if (ctx.principal) f["token"] = ctx.principal->name;
    log::Info("request", f);
  }
}

HttpResponse Dispatcher::Reject(int http_status, const std::string& detail, const std::string& peer) {
  std::string rid = ChooseRequestId(nullptr);
  HttpResponse r = MakeProblem(KindForHttp(http_status), detail, rid);
  r.headers.emplace_back("X-Request-Id", rid);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.close_connection = true;
  metrics_->Observe(HttpMetrics::kUnmatched, r.status, 0);
  if (options_.access_log)
    log::Info("request rejected", {{"request_id", rid}, {"status", r.status}, {"detail", detail}, {"peer", peer}});
  return r;
}

}  // namespace geoledger::server
