// The request pipeline every API call goes through, independent of the HTTP
// library: request id → drain check → route → authenticate → authorise →
// rate limit → content type and JSON body → handler → problem rendering,
// metrics and the access log. No business rule lives here.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <memory>
#include <string>
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
};

using RouteHandler = std::function<StatusOr<HttpResponse>(RequestContext&)>;

enum class Access {
  kPublic,         // no token (health, readiness, metrics)
  kAuthenticated,  // any valid token
  kScoped,         // a valid token carrying the route's scope
};

// A JSON response with `status`.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

class Dispatcher {
 public:
  struct Options {
    bool access_log = true;
    RateLimiter::Options tenant_limit;
    RateLimiter::Options token_limit;
    size_t max_json_depth = 64;
  };
  // `clock` and `metrics` must outlive the dispatcher. Until SetTokenStore is
  // called, every non-public route answers 503 (the service is not ready).
  Dispatcher(Options options, const Clock* clock, HttpMetrics* metrics);

  // `tokens` must outlive the dispatcher. Thread-safe.
  void SetTokenStore(const TokenStore* tokens) { tokens_.store(tokens); }

  // Registration happens before serving and is not thread-safe.
  void AddRoute(const std::string& method, const std::string& pattern, Access access,
                const std::string& scope, RouteHandler handler);

  // Handles one request. Thread-safe. Never throws.
  HttpResponse Handle(const HttpRequest& request);

  // Records and logs a request the HTTP layer refused before it was parsed
  // (too large, malformed, timed out), and returns the problem to send.
  HttpResponse Reject(int status_kind_http, const std::string& detail, const std::string& peer);

  // After BeginDrain every request gets 503 with Connection: close.
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  int64_t in_flight() const { return in_flight_.load(); }

 private:
  struct Route {
    Access access;
    std::string scope;
    RouteHandler handler;
    int metrics_id;
  };
  HttpResponse Process(const HttpRequest& request, RequestContext& ctx, int* metrics_id);
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
};

// A request id: X-Request-Id when it is 1–128 of [A-Za-z0-9._:-], else a
// fresh random one.
std::string ChooseRequestId(const std::string* header);

}  // namespace geoledger::server
