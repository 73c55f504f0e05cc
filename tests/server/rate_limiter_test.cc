#include "server/rate_limiter.h"

#include <gtest/gtest.h>

namespace geoledger::server {
namespace {

TEST(RateLimiterTest, AllowsBurstThenRefillsAtRate) {
  ManualClock clock;
  RateLimiter limiter({10, 3, 1000}, &clock);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Acquire("acme").allowed);
  auto refused = limiter.Acquire("acme");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 1);
  clock.Advance(std::chrono::milliseconds(100));  // one token at 10/s
  EXPECT_TRUE(limiter.Acquire("acme").allowed);
  EXPECT_FALSE(limiter.Acquire("acme").allowed);
}

TEST(RateLimiterTest, KeysAreIndependent) {
  ManualClock clock;
  RateLimiter limiter({1, 1, 1000}, &clock);
  EXPECT_TRUE(limiter.Acquire("noisy").allowed);
  EXPECT_FALSE(limiter.Acquire("noisy").allowed);
  EXPECT_TRUE(limiter.Acquire("quiet").allowed);
}

TEST(RateLimiterTest, RetryAfterCoversTheWait) {
  ManualClock clock;
  RateLimiter limiter({0.2, 1, 1000}, &clock);  // one every 5 s
  EXPECT_TRUE(limiter.Acquire("k").allowed);
  EXPECT_EQ(limiter.Acquire("k").retry_after_seconds, 5);
}

TEST(RateLimiterTest, DisabledLimiterAllowsEverything) {
  ManualClock clock;
  RateLimiter limiter({0, 0, 1000}, &clock);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.Acquire("k").allowed);
}

TEST(RateLimiterTest, BoundedKeysEvictIdleBucketsAndRefuseWhenAllAreActive) {
  ManualClock clock;
  RateLimiter limiter({1, 1, 16}, &clock);  // one key per shard
  int refused_new = 0;
  for (int i = 0; i < 200; ++i)
    if (!limiter.Acquire("k" + std::to_string(i)).allowed) refused_new++;
  EXPECT_GT(refused_new, 0);  // active buckets are never dropped to make room
  clock.Advance(std::chrono::seconds(5));  // every bucket refills and becomes evictable
  EXPECT_TRUE(limiter.Acquire("fresh").allowed);
}

}  // namespace
}  // namespace geoledger::server
