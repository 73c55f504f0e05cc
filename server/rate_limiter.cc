#include "server/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace geoledger::server {

RateLimiter::RateLimiter(Options options, const Clock* clock) : options_(options), clock_(clock) {}

void RateLimiter::Refill(Bucket& b, std::chrono::steady_clock::time_point now) const {
  double elapsed = std::chrono::duration<double>(now - b.last).count();
  if (elapsed > 0) {
    b.tokens = std::min(options_.burst, b.tokens + elapsed * options_.rate_per_second);
    b.last = now;
  }
}

void RateLimiter::EvictFull(Shard& shard, std::chrono::steady_clock::time_point now) const {
  for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
    Refill(it->second, now);
    // A full bucket is indistinguishable from a new one: dropping it is free.
    if (it->second.tokens >= options_.burst) it = shard.buckets.erase(it);
    else ++it;
  }
}

RateLimiter::Decision RateLimiter::Acquire(std::string_view key) {
  if (!enabled()) return {true, 0};
  auto now = clock_->Now();
  Shard& shard = shards_[std::hash<std::string_view>()(key) % kShards];
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    size_t per_shard_cap = std::max<size_t>(1, options_.max_keys / kShards);
    if (shard.buckets.size() >= per_shard_cap) EvictFull(shard, now);
    // Still full of active callers: refuse rather than grow without bound.
    if (shard.buckets.size() >= per_shard_cap) return {false, 1};
    it = shard.buckets.emplace(std::string(key), Bucket{options_.burst, now}).first;
  }
  Bucket& b = it->second;
  Refill(b, now);
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {true, 0};
  }
  double wait = (1.0 - b.tokens) / options_.rate_per_second;
  return {false, std::max(1, static_cast<int>(std::ceil(wait)))};
}

}  // namespace geoledger::server
