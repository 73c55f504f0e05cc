#include "server/metrics.h"

#include <cstdio>

namespace geoledger::server {

HttpMetrics::HttpMetrics() { AddRoute("", "unmatched"); }

int HttpMetrics::AddRoute(const std::string& method, const std::string& route) {
  auto s = std::make_unique<Series>();
  s->method = method;
  s->route = route;
  series_.push_back(std::move(s));
  return static_cast<int>(series_.size() - 1);
}

void HttpMetrics::Observe(int route_id, int status, double seconds) {
  if (route_id < 0 || route_id >= static_cast<int>(series_.size())) route_id = kUnmatched;
  Series& s = *series_[route_id];
  if (status >= 100 && status < 600) s.by_status[status].fetch_add(1, std::memory_order_relaxed);
  size_t b = 0;
  while (b < kBucketsSeconds.size() && seconds > kBucketsSeconds[b]) ++b;
  s.buckets[b].fetch_add(1, std::memory_order_relaxed);
  s.sum_micros.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  s.count.fetch_add(1, std::memory_order_relaxed);
}

void HttpMetrics::CountRateLimited(bool by_tenant) {
  (by_tenant ? rate_limited_tenant_ : rate_limited_token_).fetch_add(1, std::memory_order_relaxed);
}

void HttpMetrics::AddCollector(std::function<void(std::string&)> collector) {
  collectors_.push_back(std::move(collector));
}

namespace {
void AppendSample(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                  const std::string& value) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out.append(name).append(" ").append(value).append("\n");
}
}  // namespace

void AppendMetric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                  uint64_t value) {
  AppendSample(out, name, type, help, std::to_string(value));
}

void AppendMetric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                  double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", value);
  AppendSample(out, name, type, help, buf);
}

std::string HttpMetrics::Render() const {
  std::string out;
  char buf[512];
  out += "# HELP geoledger_http_requests_total HTTP requests by route, method and status.\n";
  out += "# TYPE geoledger_http_requests_total counter\n";
  for (const auto& s : series_) {
    for (int code = 100; code < 600; ++code) {
      uint64_t n = s->by_status[code].load(std::memory_order_relaxed);
      if (n == 0) continue;
      std::snprintf(buf, sizeof buf,
                    "geoledger_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                    s->route.c_str(), s->method.c_str(), code, static_cast<unsigned long long>(n));
      out += buf;
    }
  }
  out += "# HELP geoledger_http_request_duration_seconds Time from a parsed request to its response being handed to the transport.\n";
  out += "# TYPE geoledger_http_request_duration_seconds histogram\n";
  for (const auto& s : series_) {
    uint64_t count = s->count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= kBucketsSeconds.size(); ++b) {
      cumulative += s->buckets[b].load(std::memory_order_relaxed);
      if (b < kBucketsSeconds.size())
        std::snprintf(buf, sizeof buf,
                      "geoledger_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} %llu\n",
                      s->route.c_str(), s->method.c_str(), kBucketsSeconds[b],
                      static_cast<unsigned long long>(cumulative));
      else
        std::snprintf(buf, sizeof buf,
                      "geoledger_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n",
                      s->route.c_str(), s->method.c_str(), static_cast<unsigned long long>(cumulative));
      out += buf;
    }
    std::snprintf(buf, sizeof buf,
                  "geoledger_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n"
                  "geoledger_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
                  s->route.c_str(), s->method.c_str(),
                  static_cast<double>(s->sum_micros.load(std::memory_order_relaxed)) / 1e6,
                  s->route.c_str(), s->method.c_str(), static_cast<unsigned long long>(count));
    out += buf;
  }
  out += "# HELP geoledger_http_rate_limited_total Requests refused with 429, by limiter.\n";
  out += "# TYPE geoledger_http_rate_limited_total counter\n";
  std::snprintf(buf, sizeof buf,
                "geoledger_http_rate_limited_total{limiter=\"tenant\"} %llu\n"
                "geoledger_http_rate_limited_total{limiter=\"token\"} %llu\n",
                static_cast<unsigned long long>(rate_limited_tenant_.load()),
                static_cast<unsigned long long>(rate_limited_token_.load()));
  out += buf;
  out += "# HELP geoledger_http_requests_in_flight Requests being handled now.\n";
  out += "# TYPE geoledger_http_requests_in_flight gauge\n";
  out += "geoledger_http_requests_in_flight " + std::to_string(in_flight_.load()) + "\n";
  AppendMetric(out, "geoledger_http_connections_accepted_total", "counter",
               "Connections accepted since start. Rising about as fast as requests means the clients "
               "(a gateway's upstream pool) do not keep connections alive.",
               connections_accepted_.load(std::memory_order_relaxed));
  AppendMetric(out, "geoledger_http_connections_refused_total", "counter",
               "Connections answered 503 and closed because --max-connections were open, or closed silent to make room "
               "for a liveness probe or because the process was out of descriptors.",
               connections_refused_.load(std::memory_order_relaxed));
  AppendMetric(out, "geoledger_http_connections_refused_per_client_total", "counter",
               "Connections answered 503 and closed because --max-connections-per-client were open from "
               "their client address.",
               connections_refused_per_client_.load(std::memory_order_relaxed));
  for (const auto& c : collectors_) c(out);
  return out;
}

}  // namespace geoledger::server
