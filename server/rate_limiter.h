// Token-bucket rate limiting keyed by an arbitrary string (a tenant id, a
// token id). Thread-safe; shards keep contention low.
#pragma once

#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"

namespace geoledger::server {

class RateLimiter {
 public:
  struct Options {
    double rate_per_second = 0;  // refill rate; <= 0 disables the limiter
    double burst = 0;            // bucket capacity
    size_t max_keys = 100000;    // buckets kept at most (idle full buckets are evicted)
  };

  // `clock` must outlive the limiter.
  RateLimiter(Options options, const Clock* clock);

  struct Decision {
    bool allowed;
    int retry_after_seconds;  // when !allowed: whole seconds until one token is back
  };
  // Takes one token from `key`'s bucket if there is one.
  Decision Acquire(std::string_view key);

  bool enabled() const { return options_.rate_per_second > 0; }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;  // guarded by mu
  };
  static constexpr size_t kShards = 16;

  void Refill(Bucket& b, std::chrono::steady_clock::time_point now) const;
  void EvictFull(Shard& shard, std::chrono::steady_clock::time_point now) const;

  const Options options_;
  const Clock* clock_;
  std::array<Shard, kShards> shards_;
};

}  // namespace geoledger::server
