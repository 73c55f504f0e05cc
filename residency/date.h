// Calendar days in UTC, the granularity of every date in the residency
// policy (adequacy decisions, safeguard validity). A date is inclusive: a
// safeguard valid until 2026-03-31 covers the whole of that UTC day.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace geoledger::residency {

using Day = int32_t;  // days since 1970-01-01 (UTC)
inline constexpr int64_t kSecondsPerDay = 86400;

// Strict "YYYY-MM-DD" (proleptic Gregorian, years 1970..9999); nullopt
// otherwise, including for impossible dates such as 2025-02-30.
std::optional<Day> ParseDate(std::string_view text);
std::string FormatDate(Day day);

// The UTC day containing `unix_seconds` (floor division, so negative times
// fall on the right day).
inline Day DayOf(int64_t unix_seconds) {
  int64_t d = unix_seconds / kSecondsPerDay;
  if (unix_seconds % kSecondsPerDay < 0) --d;
  return static_cast<Day>(d);
}

// The whole second a decision made at `unix_millis` is decided at: rounded
// up, never down. Decisions take their day and an allow's cache life
// (residency-rules.md, "Caching") from it, so a basis that ends at midnight
// is never cached past it (rounded down, an allow made in its last second
// could be cached for up to a second longer), at the cost of treating it as
// ended up to a second early.
inline int64_t DecisionSeconds(int64_t unix_millis) {
  int64_t s = unix_millis / 1000;
  if (unix_millis % 1000 > 0) ++s;
  return s;
}

}  // namespace geoledger::residency
