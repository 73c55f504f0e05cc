// Time is passed in, so tests can use a manual clock instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace geoledger {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time for intervals (rate limits, latency). Thread-safe.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Wall-clock UTC milliseconds since the epoch for records. Thread-safe.
  virtual int64_t UnixMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
  int64_t UnixMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // A process-wide instance; it holds no state.
  static const SystemClock& Get();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns_.load()));
  }
  int64_t UnixMillis() const override { return 1'700'000'000'000 + ns_.load() / 1'000'000; }
  void Advance(std::chrono::nanoseconds d) { ns_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> ns_{1'000'000'000};
};

}  // namespace geoledger
