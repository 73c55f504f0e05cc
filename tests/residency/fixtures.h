// Shared helpers for the residency tests (header-only; every *_test.cc is
// its own binary).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "common/kv_store.h"
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

// An AuditChange for tests that do not look at the audit log: it writes the
// change to `kv` (synced) with no entry, and hands out increasing indexes.
inline AuditChange Audited(KvStore* kv) {
  return [kv](const ChangeRecord&, const ChangeWrites& writes) -> StatusOr<uint64_t> {
    static std::atomic<uint64_t> next{0};
    const uint64_t index = next.fetch_add(1);
    KvBatch batch;
    writes(index, batch);
    GL_RETURN_IF_ERROR(kv->Write(batch, /*sync=*/true));
    return index;
  };
}
inline AuditChange Audited(const std::unique_ptr<KvStore>& kv) { return Audited(kv.get()); }

// The newest `limit` changes of a tenant or a region, oldest first (one
// page of PolicyStore::TenantChanges or RegionChanges).
inline StatusOr<std::vector<ChangeRecord>> ChangesOf(StatusOr<ChangePage> page) {
  if (!page.ok()) return page.status();
  return std::move(page->changes);
}
inline StatusOr<std::vector<ChangeRecord>> TenantHistory(const PolicyStore& store, std::string_view tenant,
                                                         size_t limit = 1000) {
  return ChangesOf(store.TenantChanges(tenant, ChangeQuery{.limit = limit}));
}
inline StatusOr<std::vector<ChangeRecord>> RegionHistory(const PolicyStore& store, std::string_view region,
                                                         size_t limit = 1000) {
  return ChangesOf(store.RegionChanges(region, ChangeQuery{.limit = limit}));
}

inline std::unique_ptr<Engine> NewEngine() {
  auto e = Engine::Create({});
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

}  // namespace geoledger::residency::testing
