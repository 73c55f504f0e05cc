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

}  // namespace geoledger::residency
