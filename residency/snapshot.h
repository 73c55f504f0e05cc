// An immutable, compiled residency policy and the builder that makes one.
//
// A Snapshot answers decisions without locks or allocation. Tenants live in
// kShards open-addressing tables, each behind its own shared_ptr, so an
// incremental change (one tenant or one region) copies one shard and the
// shard pointer array instead of a million tenants; untouched shards are
// shared between the old and the new snapshot.
//
// Region indexes are stable across incremental builds (a region keeps its
// index; new regions are appended), which is what lets shards be shared.
// A full build (bundle import, startup) assigns indexes afresh.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "residency/compiled.h"
#include "residency/jurisdictions.h"
#include "residency/model.h"
#include "residency/rules.h"

namespace geoledger::residency {

// Shares equal legal-basis strings between compiled tenants (a million
// tenants that name the same contract hold one copy). A string lives while a
// compiled tenant holds it: the pool keeps only weak references, and drops
// those of freed strings as it grows, so a policy that keeps changing its
// references does not grow it. Shared by every snapshot of one engine.
// Thread-safe.
class StringPool {
 public:
  SharedString Intern(std::string_view s);
  // Entries, live or not yet dropped.
  size_t size() const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex mu_;
  // Keyed by a copy: the key must outlive the string it names.
  std::unordered_map<std::string, std::weak_ptr<const std::string>, Hash, std::equal_to<>> strings_;  // guarded by mu_
  size_t sweep_at_ = 1024;  // guarded by mu_; the size at which expired entries are next dropped
};

namespace internal {
struct RegionTable;
class TenantShard;
}  // namespace internal

inline constexpr size_t kShards = 256;

struct DecisionRequest {
  std::string_view tenant;
  std::string_view category;
  std::string_view operation;
  std::string_view region;
};

class Snapshot {
 public:
  uint64_t version() const { return version_; }
  size_t tenant_count() const { return tenant_count_; }
  size_t region_count() const;

  // The decision for one request. Unknown category, operation, tenant or
  // region are denials (fail closed). Thread-safe, lock-free, no allocation.
  Decision Decide(std::string_view tenant, std::string_view category,
                  std::string_view operation, std::string_view region,
                  int64_t unix_seconds) const;
  Decision Decide(const DecisionRequest& r, int64_t unix_seconds) const {
    return Decide(r.tenant, r.category, r.operation, r.region, unix_seconds);
  }
  // Answers every request; `out` must be as long as `requests`.
  void DecideBatch(std::span<const DecisionRequest> requests, int64_t unix_seconds,
                   std::span<Decision> out) const;

  // The index and jurisdiction of `id`, or nullptr. Valid while the
  // snapshot lives.
  const CompiledRegion* FindRegion(std::string_view id) const;
  bool HasTenant(std::string_view id) const;

  ~Snapshot();

 private:
  friend class SnapshotBuilder;
  Snapshot();

  uint64_t version_ = 0;
  uint64_t base_version_ = 0;  // incremental builds: the version built upon
  bool incremental_ = false;
  size_t tenant_count_ = 0;
  RuleOptions options_;
  std::shared_ptr<const Jurisdictions> jurisdictions_;
  std::shared_ptr<StringPool> pool_;
  std::shared_ptr<const internal::RegionTable> regions_;
  std::array<std::shared_ptr<const internal::TenantShard>, kShards> shards_;

  friend class Engine;
  bool incremental() const { return incremental_; }
  uint64_t base_version() const { return base_version_; }
};

// Builds the next snapshot. Not thread-safe; one builder per change.
class SnapshotBuilder {
 public:
  // A full policy at `version`, starting empty.
  static SnapshotBuilder Fresh(std::shared_ptr<const Jurisdictions> jurisdictions,
                               std::shared_ptr<StringPool> pool, RuleOptions options,
                               uint64_t version);
  // `base` plus changes, published as base.version() + 1.
  static SnapshotBuilder On(const Snapshot& base);

  SnapshotBuilder(SnapshotBuilder&&) noexcept;
  SnapshotBuilder& operator=(SnapshotBuilder&&) noexcept;
  ~SnapshotBuilder();

  // Adds or replaces a region. kResourceExhausted past kMaxRegions;
  // kInvalidArgument for a country the jurisdiction table does not know.
  Status PutRegion(const Region& region);
  // Adds or replaces a tenant. Every region it names must already be in the
  // builder (kInvalidArgument otherwise).
  Status PutTenant(const Tenant& tenant);

  uint64_t version() const;
  // Publishes the snapshot. The builder is spent afterwards.
  std::shared_ptr<const Snapshot> Build() &&;

 private:
  SnapshotBuilder();
  internal::TenantShard& MutableShard(size_t shard);
  internal::RegionTable& MutableRegions();

  std::shared_ptr<Snapshot> snap_;
  // Copies this builder owns and may still change; null until first written.
  internal::RegionTable* regions_ = nullptr;
  std::array<internal::TenantShard*, kShards> shards_{};
};

}  // namespace geoledger::residency
