#include "residency/snapshot.h"

#include <functional>

namespace geoledger::residency {
namespace internal {

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct RegionTable {
  std::vector<CompiledRegion> regions;  // by RegionIndex
  std::unordered_map<std::string, RegionIndex, TransparentHash, std::equal_to<>> by_id;

  const CompiledRegion* Find(std::string_view id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : &regions[it->second];
  }
};

// Open addressing with linear probing; hash 0 marks an empty slot. The low
// hash bits pick the slot, the top byte picks the shard, so they are
// independent.
class TenantShard {
 public:
  const CompiledTenant* Find(std::string_view id, uint64_t h) const {
    if (slots_.empty()) return nullptr;
    const size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return nullptr;
      if (s.hash == h && s.id == id) return &s.tenant;
    }
  }

  // Returns true when `id` was not present before.
  bool Upsert(std::string_view id, uint64_t h, CompiledTenant tenant) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.hash == 0) {
        s.hash = h;
        s.id = std::string(id);
        s.tenant = std::move(tenant);
        ++size_;
        return true;
      }
      if (s.hash == h && s.id == id) {
        s.tenant = std::move(tenant);
        return false;
      }
    }
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::string id;
    CompiledTenant tenant;
  };

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_ = std::vector<Slot>(old.empty() ? 16 : old.size() * 2);
    const size_t mask = slots_.size() - 1;
    for (Slot& s : old) {
      if (s.hash == 0) continue;
      size_t i = s.hash & mask;
      while (slots_[i].hash != 0) i = (i + 1) & mask;
      slots_[i] = std::move(s);
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace internal

namespace {

using internal::RegionTable;
using internal::TenantShard;

uint64_t TenantHash(std::string_view id) {
  uint64_t h = std::hash<std::string_view>{}(id);
  return h == 0 ? 1 : h;  // 0 marks an empty slot
}
size_t ShardOf(uint64_t h) { return static_cast<size_t>(h >> 56) % kShards; }

const std::shared_ptr<const TenantShard>& EmptyShard() {
  static const auto* empty = new std::shared_ptr<const TenantShard>(std::make_shared<TenantShard>());
  return *empty;
}
const std::shared_ptr<const RegionTable>& EmptyRegions() {
  static const auto* empty = new std::shared_ptr<const RegionTable>(std::make_shared<RegionTable>());
  return *empty;
}

Decision Unresolved(Reason reason, std::string_view route, uint64_t version,
                    const RuleOptions& o) {
  Decision d;
  d.allow = false;
  d.reason = reason;
  d.route_region = route;
  d.policy_version = version;
  d.ttl_s = o.deny_ttl_s;
  return d;
}

std::string SafeguardBasis(const Safeguard& s) {
  switch (s.mechanism) {
    case Mechanism::kScc: return "gdpr:art46:scc:" + s.reference;
    case Mechanism::kBcr: return "gdpr:art47:bcr:" + s.reference;
    case Mechanism::kArt49: return "gdpr:art49:" + s.reference;
  }
  return "";
}

}  // namespace

// ---- StringPool -------------------------------------------------------------

SharedString StringPool::Intern(std::string_view s) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = strings_.find(s);
  if (it != strings_.end()) {
    if (SharedString live = it->second.lock()) return live;
  } else {
    if (strings_.size() >= sweep_at_) {
      // Drop the entries of strings no compiled tenant holds any more; the
      // next sweep waits until the pool has doubled again, so interning
      // stays amortised O(1).
      std::erase_if(strings_, [](const auto& e) { return e.second.expired(); });
      sweep_at_ = std::max<size_t>(1024, strings_.size() * 2);
    }
    it = strings_.emplace(std::string(s), std::weak_ptr<const std::string>()).first;
  }
  auto made = std::make_shared<const std::string>(s);
  it->second = made;
  return made;
}

size_t StringPool::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return strings_.size();
}

// ---- Snapshot ---------------------------------------------------------------

Snapshot::Snapshot() = default;
Snapshot::~Snapshot() = default;

size_t Snapshot::region_count() const { return regions_->regions.size(); }

const CompiledRegion* Snapshot::FindRegion(std::string_view id) const { return regions_->Find(id); }

bool Snapshot::HasTenant(std::string_view id) const {
  const uint64_t h = TenantHash(id);
  return shards_[ShardOf(h)]->Find(id, h) != nullptr;
}

void Snapshot::DecideBatch(std::span<const DecisionRequest> requests, int64_t unix_seconds,
                           std::span<Decision> out) const {
  for (size_t i = 0; i < requests.size() && i < out.size(); ++i) out[i] = Decide(requests[i], unix_seconds);
}

Decision Snapshot::Decide(std::string_view tenant, std::string_view category,
                          std::string_view operation, std::string_view region,
                          int64_t unix_seconds) const {
  const uint64_t h = TenantHash(tenant);
  const CompiledTenant* t = shards_[ShardOf(h)]->Find(tenant, h);
  if (t == nullptr) return Unresolved(Reason::kTenantUnknown, {}, version_, options_);
  if (t->status != TenantStatus::kActive)
    return Unresolved(Reason::kTenantSuspended, {}, version_, options_);
  const CompiledRegion* home = &regions_->regions[t->home];
  const std::optional<Category> c = ParseCategory(category);
  if (!c) return Unresolved(Reason::kCategoryUnknown, {}, version_, options_);
  const std::optional<Operation> op = ParseOperation(operation);
  if (!op) return Unresolved(Reason::kOperationUnknown, {}, version_, options_);
  const CompiledRegion* target = regions_->Find(region);
  if (target == nullptr) return Unresolved(Reason::kRegionUnknown, home->id, version_, options_);
  Decision d = ApplyRules({t, target, home, *c, *op, unix_seconds}, options_);
  d.policy_version = version_;
  return d;
}

// ---- SnapshotBuilder --------------------------------------------------------

SnapshotBuilder::SnapshotBuilder() = default;
SnapshotBuilder::SnapshotBuilder(SnapshotBuilder&&) noexcept = default;
SnapshotBuilder& SnapshotBuilder::operator=(SnapshotBuilder&&) noexcept = default;
SnapshotBuilder::~SnapshotBuilder() = default;

SnapshotBuilder SnapshotBuilder::Fresh(std::shared_ptr<const Jurisdictions> jurisdictions,
                                       std::shared_ptr<StringPool> pool, RuleOptions options,
                                       uint64_t version) {
  SnapshotBuilder b;
  b.snap_.reset(new Snapshot());
  b.snap_->version_ = version;
  b.snap_->options_ = options;
  b.snap_->jurisdictions_ = std::move(jurisdictions);
  b.snap_->pool_ = std::move(pool);
  b.snap_->regions_ = EmptyRegions();
  b.snap_->shards_.fill(EmptyShard());
  return b;
}

SnapshotBuilder SnapshotBuilder::On(const Snapshot& base) {
  SnapshotBuilder b;
  b.snap_.reset(new Snapshot(base));  // shares every shard and the region table
  b.snap_->version_ = base.version_ + 1;
  b.snap_->base_version_ = base.version_;
  b.snap_->incremental_ = true;
  return b;
}

uint64_t SnapshotBuilder::version() const { return snap_->version_; }

RegionTable& SnapshotBuilder::MutableRegions() {
  if (regions_ == nullptr) {
    auto copy = std::make_shared<RegionTable>(*snap_->regions_);
    regions_ = copy.get();
    snap_->regions_ = std::move(copy);
  }
  return *regions_;
}

TenantShard& SnapshotBuilder::MutableShard(size_t shard) {
  if (shards_[shard] == nullptr) {
    auto copy = std::make_shared<TenantShard>(*snap_->shards_[shard]);
    shards_[shard] = copy.get();
    snap_->shards_[shard] = std::move(copy);
  }
  return *shards_[shard];
}

Status SnapshotBuilder::PutRegion(const Region& region) {
  const Jurisdictions& j = *snap_->jurisdictions_;
  if (!IsValidRegionId(region.id)) return InvalidArgument("region: bad id");
  if (!j.IsCountry(region.country))
    return InvalidArgument("region " + region.id + ": country: \"" + region.country +
                           "\" is not an ISO 3166-1 alpha-2 country code");
  const RegionTable& current = *snap_->regions_;
  const CompiledRegion* found = current.Find(region.id);
  const std::optional<RegionIndex> existing =
      found ? std::optional<RegionIndex>(found->index) : std::nullopt;
  if (!existing && current.regions.size() >= kMaxRegions)
    return FailedPrecondition("region " + region.id + ": the policy already has " + std::to_string(kMaxRegions) +
                              " regions, the most it can hold");
  CompiledRegion r;
  r.id = region.id;
  r.country = CountryKey(region.country);
  r.eea = j.IsEea(region.country);
  r.adequacy = j.FindAdequacy(region.country);
  if (r.adequacy) r.adequacy_basis = r.adequacy->legal_basis;
  RegionTable& table = MutableRegions();
  if (existing) {
    r.index = *existing;
    table.regions[r.index] = r;
  } else {
    r.index = static_cast<RegionIndex>(table.regions.size());
    table.regions.push_back(r);
    table.by_id.emplace(region.id, r.index);
  }
  return Status::Ok();
}

Status SnapshotBuilder::PutTenant(const Tenant& tenant) {
  if (!IsValidTenantId(tenant.id)) return InvalidArgument("tenant: bad id");
  const RegionTable& regions = *snap_->regions_;
  GL_RETURN_IF_ERROR(CheckTenantReferences(
      tenant, [&](const std::string& id) { return regions.Find(id) != nullptr; }));
  CompiledTenant ct;
  ct.home = regions.Find(tenant.home_region)->index;
  ct.status = tenant.status;
  auto mask_of = [&](Category c, const RegionMask& fallback) {
    auto it = tenant.allowed_regions.find(c);
    if (it == tenant.allowed_regions.end()) return fallback;
    RegionMask m;
    m.set(ct.home);
    for (const std::string& id : it->second) m.set(regions.Find(id)->index);
    return m;
  };
  RegionMask home_only;
  home_only.set(ct.home);
  const auto idx = [](Category c) { return static_cast<size_t>(c); };
  ct.allowed[idx(Category::kPersonal)] = mask_of(Category::kPersonal, home_only);
  ct.allowed[idx(Category::kSpecial)] = mask_of(Category::kSpecial, home_only);
  ct.allowed[idx(Category::kPseudonymised)] =
      mask_of(Category::kPseudonymised, ct.allowed[idx(Category::kPersonal)]);
  ct.allowed[idx(Category::kOperational)] = mask_of(Category::kOperational, home_only);
  ct.allowed[idx(Category::kAnonymous)].set();
  ct.operational_pinned = tenant.allowed_regions.count(Category::kOperational) != 0;
  bool dated_certifications = false;
  for (const Certification& c : tenant.certifications) {
    if (c.dated())
      dated_certifications = true;
    else if (c.name == kCertificationDpf)
      ct.dpf_certified = true;
  }
  if (!tenant.safeguards.empty() || !tenant.adequacy_opt_out.empty() || dated_certifications) {
    auto terms = std::make_shared<CompiledTransferTerms>();
    terms->safeguards.reserve(tenant.safeguards.size());
    for (const Safeguard& s : tenant.safeguards) {
      CompiledSafeguard cs;
      cs.country = CountryKey(s.jurisdiction);
      cs.mechanism = s.mechanism;
      cs.valid_from = s.valid_from;
      cs.valid_until = s.valid_until ? *s.valid_until : INT32_MAX;
      cs.legal_basis = snap_->pool_->Intern(SafeguardBasis(s));
      terms->safeguards.push_back(cs);
    }
    // Each dated declaration, for every country whose decision asks for it.
    for (const Certification& c : tenant.certifications) {
      if (!c.dated()) continue;
      for (const Adequacy& a : snap_->jurisdictions_->adequacy()) {
        if (a.requires_declaration != c.name) continue;
        CompiledCertification cc;
        cc.country = CountryKey(a.code);
        cc.valid_from = c.valid_from;
        cc.valid_until = c.valid_until;
        cc.legal_basis = snap_->pool_->Intern(a.legal_basis + ":" + c.name + ":" + c.reference);
        terms->certifications.push_back(cc);
      }
    }
    for (const std::string& code : tenant.adequacy_opt_out) terms->adequacy_opt_out.push_back(CountryKey(code));
    std::sort(terms->adequacy_opt_out.begin(), terms->adequacy_opt_out.end());
    ct.transfer = std::move(terms);
  }
  const uint64_t h = TenantHash(tenant.id);
  if (MutableShard(ShardOf(h)).Upsert(tenant.id, h, std::move(ct))) ++snap_->tenant_count_;
  return Status::Ok();
}

std::shared_ptr<const Snapshot> SnapshotBuilder::Build() && {
  regions_ = nullptr;
  shards_.fill(nullptr);
  return std::move(snap_);
}

}  // namespace geoledger::residency
