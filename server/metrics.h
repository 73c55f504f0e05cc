// Prometheus metrics for HTTP traffic: request counts by route, method and
// status, and latency histograms by route. Routes are registered before
// serving; recording is lock-free.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace geoledger::server {

// Appends one unlabelled sample with its HELP and TYPE lines ("counter" or
// "gauge"), in the text exposition format. Doubles are written with six
// decimals.
void AppendMetric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                  uint64_t value);
void AppendMetric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                  double value);

class HttpMetrics {
 public:
  static constexpr std::array<double, 14> kBucketsSeconds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5};

  // Registers a series label set; returns its id. Not thread-safe: call before
  // serving. Id `kUnmatched` exists from the start for requests no route took.
  int AddRoute(const std::string& method, const std::string& route);
  static constexpr int kUnmatched = 0;

  HttpMetrics();
  // Records one finished request. Thread-safe, lock-free.
  void Observe(int route_id, int status, double seconds);
  void CountRateLimited(bool by_tenant);
  void AddInFlight(int delta) { in_flight_.fetch_add(delta, std::memory_order_relaxed); }
  // A connection was accepted. Thread-safe, lock-free. (The open-connections
  // gauge is the HTTP frontend's own count, added as a collector.)
  void ConnectionAccepted() { connections_accepted_.fetch_add(1, std::memory_order_relaxed); }
  // A connection beyond --max-connections, answered 503 and closed (or
  // closed unanswered: to make room for a probe, or out of descriptors).
  void ConnectionRefused() { connections_refused_.fetch_add(1, std::memory_order_relaxed); }
  // A connection beyond --max-connections-per-client from its address.
  void ConnectionRefusedPerClient() { connections_refused_per_client_.fetch_add(1, std::memory_order_relaxed); }

  // Extra lines appended to the exposition (gauges owned by other components).
  // Register before serving; the callback must be thread-safe.
  void AddCollector(std::function<void(std::string&)> collector);

  // Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  struct Series {
    std::string method, route;
    std::array<std::atomic<uint64_t>, 600> by_status{};
    std::array<std::atomic<uint64_t>, kBucketsSeconds.size() + 1> buckets{};  // last: +Inf
    std::atomic<uint64_t> sum_micros{0};
    std::atomic<uint64_t> count{0};
  };
  std::vector<std::unique_ptr<Series>> series_;
  std::vector<std::function<void(std::string&)>> collectors_;
  std::atomic<uint64_t> rate_limited_tenant_{0}, rate_limited_token_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> connections_accepted_{0};
  std::atomic<uint64_t> connections_refused_{0};
  std::atomic<uint64_t> connections_refused_per_client_{0};
};

}  // namespace geoledger::server
