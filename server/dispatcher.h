// The request pipeline every API call goes through, independent of the HTTP
// library: request id → drain check → route → authenticate → authorise →
// rate limit → content type and JSON body → handler → problem rendering,
// metrics and the access log. No business rule lives here.
//
// A route answers either at once (RouteHandler) or later (DeferredHandler:
// it gets a Reply and completes it from any thread, e.g. once an audit entry
// is durable). Metrics, the access log and the in-flight count cover a
// deferred request until its Reply is sent, so a drain waits for it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "server/http_types.h"
#include "server/metrics.h"
#include "server/rate_limiter.h"
#include "server/router.h"
#include "server/token_store.h"

namespace geoledger::server {

struct RequestContext {
  const HttpRequest& request;
  std::string request_id;
  std::string route;  // matched pattern, e.g. /v1/tenants/{tenant}; never the raw path
  std::map<std::string, std::string> params;  // from the path pattern
  std::optional<Principal> principal;         // set on authenticated routes
  std::string tenant;                         // path {tenant}, X-Tenant-Id or ?tenant=
  nlohmann::json body;                        // parsed JSON body; null when empty
  // Gateway routes only: set when the pipeline refused the tenant; the
  // handler must answer 403 with it (and audits the refusal). `tenant` is
  // then the token's tenant, or empty.
  struct Refusal {
    const char* reason;  // "tenant-invalid", "token-tenant-mismatch"
    const char* detail;  // for X-Residency-Detail
  };
  std::optional<Refusal> gateway_refusal;
  // The matched route is a gateway check: its answers go out without a body
  // (see Dispatcher::Finish).
  bool gateway = false;
};

using RouteHandler = std::function<StatusOr<HttpResponse>(RequestContext&)>;

class Dispatcher;

// Completes one deferred request. Call it exactly once, from any thread;
// later calls do nothing. A Reply destroyed without being called answers 500
// (a handler bug, logged). The request's RequestContext stays valid until
// the Reply is called or destroyed. Move-only.
class Reply {
 public:
  struct Exchange;
  explicit Reply(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}
  Reply(Reply&&) = default;
  Reply& operator=(Reply&&) = default;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  ~Reply();
  void operator()(StatusOr<HttpResponse> result);

 private:
  std::shared_ptr<Exchange> exchange_;
};

using DeferredHandler = std::function<void(RequestContext&, Reply)>;

// Answers a deferred request once its audit events are durable. `submit`
// queues them (Ledger::AppendAsync, DecisionAuditor::Submit) and, when it
// returns OK, calls the callback it is given exactly once; when it refuses
// (queue full, ledger unhealthy) its error is the answer at once. A failed
// write is answered with `write_failed` when given, else with the write's own
// status; a durable one with answer(indexes).
using DurableCallback = std::function<void(StatusOr<std::vector<uint64_t>>)>;
void ReplyWhenDurable(Reply reply, const std::function<Status(DurableCallback)>& submit,
                      std::function<HttpResponse(const std::vector<uint64_t>& indexes)> answer,
                      std::optional<Status> write_failed = std::nullopt);

enum class Access {
  kPublic,         // no token (health, readiness, metrics)
  kAuthenticated,  // any valid token
  kScoped,         // a valid token carrying the route's scope
};

// A JSON response with `status`.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// The query parameter `name` as a non-negative decimal integer;
// kInvalidArgument naming it when it is absent or malformed.
StatusOr<uint64_t> QueryNumber(const RequestContext& ctx, const std::string& name);
// The same, std::nullopt when absent.
StatusOr<std::optional<uint64_t>> OptionalQueryNumber(const RequestContext& ctx, const std::string& name);

// The body size up to which routes that take larger bodies off the HTTP
// threads (Dispatcher::OffloadLargeBodies) still handle a request there: a
// few dozen audit events or decisions, a millisecond or two of work.
inline constexpr size_t kInlineBodyBytes = 16 * 1024;

class Dispatcher {
 public:
  struct Options {
    bool access_log = true;
    RateLimiter::Options tenant_limit;
    RateLimiter::Options token_limit;
    size_t max_json_depth = 64;
    // Threads that run the handlers of routes marked blocking (see
    // MarkBlockingRoute), and how many such requests may wait for them
    // before the next one is answered 503.
    size_t blocking_threads = 2;
    size_t max_queued_blocking = 256;
    // Threads that run the requests with a large body to routes that take
    // them off the HTTP threads (see OffloadLargeBodies), and how many such
    // requests may wait for them before the next one is answered 503.
    size_t bulk_threads = 2;
    size_t max_queued_bulk = 64;
  };
  // `clock` and `metrics` must outlive the dispatcher. Until SetTokenStore is
  // called, every non-public route answers 503 (the service is not ready).
  Dispatcher(Options options, const Clock* clock, HttpMetrics* metrics);
  ~Dispatcher();

  // `tokens` must outlive the dispatcher. Thread-safe.
  void SetTokenStore(const TokenStore* tokens) { tokens_.store(tokens); }

  // Registration happens before serving and is not thread-safe.
  void AddRoute(const std::string& method, const std::string& pattern, Access access,
                const std::string& scope, RouteHandler handler);
  void AddDeferredRoute(const std::string& method, const std::string& pattern, Access access,
                        const std::string& scope, DeferredHandler handler);
  // A gateway route (nginx auth_request, Envoy ext_authz), deferred. It
  // matches `pattern` and every path below it, with any method (Router::
  // AddCatchAll): Envoy's HTTP ext_authz sends the original request's method
  // and may append its path. A body is neither required nor read. It can
  // only say yes (2xx) or no (401/403): an invalid tenant id or a token bound
  // to another tenant is not answered 400 by the pipeline but handed to the
  // handler in RequestContext::gateway_refusal, after the rate limits and the
  // scope check, so that it can audit the refusal and answer 403 with
  // X-Residency-Reason. Its metrics carry method "*".
  void AddGatewayRoute(const std::string& pattern, Access access, const std::string& scope, DeferredHandler handler);
  // A route whose handler waits for the disk (synced writes, compaction) or
  // does long work (exports). Its handler runs on one of the dispatcher's
  // own threads, so it never holds an HTTP thread and the connections that
  // thread serves (gateway checks among them). Call after adding the route,
  // before serving (immediate routes only). A `long_running` one (an export,
  // a shred's compaction) never takes the last free blocking thread, so such
  // requests cannot hold up the short ones (policy and token writes) behind
  // them; with a single blocking thread they share it.
  void MarkBlockingRoute(const std::string& method, const std::string& pattern, bool long_running = false);
  // Requests to this route (immediate or deferred, not blocking) whose body
  // is larger than `bytes` run, from their body's parsing on, on one of the
  // dispatcher's bulk threads: a large batch (a thousand audit events to
  // seal, or decisions) is CPU work of tens of milliseconds, which on an HTTP
  // thread would hold up every connection it serves, gateway checks among
  // them. Smaller ones stay on the HTTP thread, with no hand-off. Call after
  // adding the route, before serving.
  void OffloadLargeBodies(const std::string& method, const std::string& pattern, size_t bytes);
  // Answers the blocking and bulk requests still queued with 503, waits for
  // the ones running and stops the threads. Later such requests get 503.
  // Call before anything their handlers use goes away. Idempotent.
  void StopBlockingWorkers();

  // Handles one request and calls `done` exactly once with the response, on
  // this thread or (for deferred routes) on the thread that completes the
  // Reply. Thread-safe. Never throws.
  void HandleAsync(HttpRequest request, std::function<void(HttpResponse)> done);
  // HandleAsync, waiting for the response (tests and tools).
  HttpResponse Handle(const HttpRequest& request);

  // Records and logs a request the HTTP layer refused before it was parsed
  // (too large, malformed, timed out), and returns the problem to send.
  HttpResponse Reject(int status_kind_http, const std::string& detail, const std::string& peer);

  // After BeginDrain every request gets 503 with Connection: close.
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  int64_t in_flight() const { return in_flight_.load(); }

 private:
  friend class Reply;
  struct Route {
    Access access;
    std::string scope;
    RouteHandler handler;       // set for immediate routes
    DeferredHandler deferred;   // set for deferred routes
    int metrics_id;
    bool gateway = false;
    bool blocking = false;
    bool long_running = false;  // blocking, and may take long (see MarkBlockingRoute)
    size_t bulk_above = SIZE_MAX;  // bodies larger than this run on a bulk thread
  };
  struct BlockingWork {
    std::shared_ptr<Reply::Exchange> exchange;
    int route_id;
  };
  // Threads that run handlers off the HTTP threads, behind a bounded queue:
  // the blocking routes' pool, and the bulk pool for large bodies.
  struct Pool {
    explicit Pool(const char* name) : thread_name(name) {}
    const char* const thread_name;
    size_t size = 0;  // threads, set before they start
    size_t max_queued = 0;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<BlockingWork> queue;  // guarded by mu
    bool stopping = false;           // guarded by mu
    size_t long_running = 0;         // guarded by mu: long-running handlers running
    std::vector<std::thread> threads;
  };
  Route& FindRoute(const std::string& method, const std::string& pattern);
  // Appends `route` for the router's route `router_id` (the next id) and
  // gives it its metrics series, labelled with the router's method and pattern.
  void Register(int router_id, Route route);
  // Starts `n` threads for `pool`.
  void StartPool(Pool& pool, size_t n);
  // Queues `ex` for a thread of `pool`; false when the queue is full or the
  // workers are stopping.
  bool Queue(Pool& pool, const std::shared_ptr<Reply::Exchange>& ex, int route_id);
  void PoolLoop(Pool& pool);
  void StopPool(Pool& pool);
  // Runs the pipeline; nullopt when a deferred handler took the request.
  std::optional<HttpResponse> Process(const std::shared_ptr<Reply::Exchange>& ex);
  // Checks and parses a JSON request body into ctx.body and charges the
  // tenants it names (for a blocking route, on its blocking thread); the
  // refusal to answer, if any.
  std::optional<HttpResponse> ReadBody(const Route& route, RequestContext& ctx, const HttpRequest& request);
  // Finishes the exchange once (metrics, access log, in-flight) and hands
  // the response to its `done`.
  void Complete(Reply::Exchange& ex, HttpResponse response);
  HttpResponse ErrorResponse(const Status& status, const RequestContext& ctx);
  // 429 with Retry-After when `limiter` has no token left for `key`.
  std::optional<HttpResponse> Limit(RateLimiter& limiter, const std::string& key, bool by_tenant,
                                    const char* what, const std::string& rid);
  void Finish(const HttpRequest& request, const RequestContext& ctx, HttpResponse& response,
              int metrics_id, std::chrono::steady_clock::time_point start);

  Options options_;
  std::atomic<const TokenStore*> tokens_{nullptr};
  const Clock* clock_;
  HttpMetrics* metrics_;
  Router router_;
  std::vector<Route> routes_;  // indexed by router id
  RateLimiter tenant_limiter_;
  RateLimiter token_limiter_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};

  Pool blocking_{"gl-blocking"};
  Pool bulk_{"gl-bulk"};
};

// A request id: X-Request-Id when it is 1–128 of [A-Za-z0-9._:-], else a
// fresh random one.
std::string ChooseRequestId(const std::string* header);

}  // namespace geoledger::server
