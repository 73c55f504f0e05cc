// Shared helpers for the residency tests (header-only; every *_test.cc is
// its own binary).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <string_view>

#include "residency/date.h"
#include "residency/engine.h"
#include "residency/jurisdictions.h"
#include "residency/model.h"
#include "residency/policy_store.h"

namespace geoledger::residency::testing {

inline const Jurisdictions& Jur() {
  static const std::shared_ptr<const Jurisdictions> j = [] {
    auto r = BuiltinJurisdictions();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return *r;
  }();
  return *j;
}

// Unix seconds at hh:mm:ss UTC on `date` (YYYY-MM-DD).
inline int64_t At(std::string_view date, int hh = 12, int mm = 0, int ss = 0) {
  std::optional<Day> d = ParseDate(date);
  EXPECT_TRUE(d.has_value()) << date;
  return static_cast<int64_t>(d.value_or(0)) * kSecondsPerDay + hh * 3600 + mm * 60 + ss;
}

inline Region R(std::string id, std::string country) {
  return Region{std::move(id), std::move(country), "test region"};
}

// Parses a tenant body; fails the test on error.
inline Tenant T(std::string_view id, std::string_view json) {
  auto body = ParseJson(json, "test tenant");
  EXPECT_TRUE(body.ok()) << body.status().ToString();
  if (!body.ok()) return Tenant{};
  auto t = TenantFromJson(id, *body, Jur());
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : Tenant{};
}

// An AuditChange for tests that do not look at the audit log: it writes
// nothing and hands out increasing indexes.
inline AuditChange Audited() {
  return [](const ChangeRecord&) -> StatusOr<uint64_t> {
    static std::atomic<uint64_t> next{0};
    return next.fetch_add(1);
  };
}

inline std::unique_ptr<Engine> NewEngine() {
  auto e = Engine::Create({});
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

}  // namespace geoledger::residency::testing
