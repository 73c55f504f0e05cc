#include "residency/policy_store.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <future>
#include <thread>

#include "tests/common/faulty_kv_store.h"
#include "tests/residency/fixtures.h"

namespace geoledger::residency {
namespace {

using testing::At;
using testing::R;
using testing::T;

const int64_t kNow = At("2025-06-15");

struct Fixture {
  std::unique_ptr<Engine> engine = testing::NewEngine();
  std::unique_ptr<PolicyStore> store;
  explicit Fixture(KvStore* kv, const Clock* clock) {
    auto s = PolicyStore::Open(kv, engine.get(), clock);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) store = std::move(s).value();
  }
};

// An AuditChange that writes the change to `kv` as if its entry were at
// `index`, and keeps what it saw.
AuditChange AuditAt(KvStore* kv, uint64_t index, std::vector<ChangeRecord>* seen = nullptr) {
  return [kv, index, seen](const ChangeRecord& c, const ChangeWrites& writes) -> StatusOr<uint64_t> {
    if (seen) seen->push_back(c);
    KvBatch batch;
    writes(index, batch);
    GL_RETURN_IF_ERROR(kv->Write(batch, /*sync=*/true));
    return index;
  };
}

Tenant Acme() {
  return T("acme", R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["eu-central-1"]}})");
}

// Regions eu-west-1 and eu-central-1, then Acme(); false when a change fails.
bool LoadAcme(PolicyStore& store, KvStore* kv) {
  return store.PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv)).ok() &&
         store.PutRegion("admin", R("eu-central-1", "DE"), testing::Audited(kv)).ok() &&
         store.PutTenant("admin", Acme(), testing::Audited(kv)).ok();
}

TEST(PolicyStoreTest, EachChangeBumpsTheVersionAndIsDecidedAtOnce) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(f.store);
  EXPECT_EQ(f.store->version(), 0u);
  auto r1 = f.store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv));
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->version, 1u);
  EXPECT_TRUE(r1->created);
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-central-1", "DE"), testing::Audited(kv)).ok());
  auto t = f.store->PutTenant("admin", Acme(), testing::Audited(kv));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->version, 3u);
  EXPECT_EQ(f.engine->version(), 3u);
  const OwnedDecision d = f.engine->Decide("acme", "personal", "store", "eu-central-1", kNow);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.policy_version, 3u);
}

TEST(PolicyStoreTest, UnchangedPutWritesNothing) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(LoadAcme(*f.store, kv.get()));
  auto again = f.store->PutTenant("admin", Acme(), testing::Audited(kv));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->changes.empty());
  EXPECT_EQ(again->version, 3u);
  EXPECT_EQ(f.store->version(), 3u);
  auto history = testing::TenantHistory(*f.store, "acme");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 1u);
}

TEST(PolicyStoreTest, UnknownRegionReferenceIsRejectedAndChangesNothing) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv)).ok());
  auto t = f.store->PutTenant("admin", Acme(), testing::Audited(kv));  // eu-central-1 does not exist
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("eu-central-1"), std::string::npos);
  EXPECT_EQ(f.store->version(), 1u);
  auto got = f.store->GetTenant("acme");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

// A change may not write the two forms that never lapse (an undated DPF
// declaration, an Art. 49 derogation without an end), though stored
// policies and bundles may hold them and still decide as before.
TEST(PolicyStoreTest, AChangeCannotWriteAFormThatNeverLapsesButABundleAndTheStoreKeepIt) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(LoadAcme(*f.store, kv.get()));
  const Tenant undated = T("old", R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["us-east-1"]},"certifications":["dpf"]})");
  const Tenant open_derogation = T("old", R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"IN","mechanism":"art49","reference":"art49-1-a","valid_from":"2025-01-01"}]})");
  auto refused = f.store->PutTenant("admin", open_derogation, testing::Audited(kv));
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("safeguards[0].valid_until"), std::string::npos)
      << refused.status().ToString();
  EXPECT_EQ(f.store->version(), 3u);
  // An SCC may be open-ended; a derogation with an end may be written.
  ASSERT_TRUE(f.store->PutTenant("admin", T("ok", R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"US","mechanism":"scc","reference":"scc-1","valid_from":"2025-01-01"},
                    {"jurisdiction":"IN","mechanism":"art49","reference":"art49-1-a","valid_from":"2025-01-01",
                     "valid_until":"2025-06-30"}]})"), testing::Audited(kv)).ok());

  PolicyDocument doc;
  doc.version = 10;
  doc.regions = {R("eu-west-1", "IE"), R("us-east-1", "US"), R("ap-south-1", "IN")};
  doc.tenants = {undated, T("derog", R"({"home_region":"eu-west-1","status":"active",
      "safeguards":[{"jurisdiction":"IN","mechanism":"art49","reference":"art49-1-a","valid_from":"2025-01-01"}]})")};
  auto imported = f.store->Replace("bundle", doc, testing::Audited(kv));
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  auto decides_as_before = [](const Engine& engine) {
    const OwnedDecision us = engine.Decide("old", "personal", "store", "us-east-1", kNow);
    EXPECT_TRUE(us.allow);
    EXPECT_EQ(us.legal_basis, "gdpr:art45:US");
    const OwnedDecision in = engine.Decide("derog", "personal", "read", "ap-south-1", kNow);
    EXPECT_TRUE(in.allow);
    EXPECT_EQ(in.legal_basis, "gdpr:art49:art49-1-a");
  };
  decides_as_before(*f.engine);
  // Reopened from the store: the same.
  f.store.reset();
  Fixture g(kv.get(), &clock);
  ASSERT_TRUE(g.store);
  decides_as_before(*g.engine);
  // A PUT must replace the form, even one otherwise equal to what is stored.
  refused = g.store->PutTenant("admin", undated, testing::Audited(kv));
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("certifications[0]"), std::string::npos) << refused.status().ToString();
  EXPECT_EQ(g.store->version(), 10u);
}

// Whether a tenant exists is the operator's: a token bound to a tenant the
// policy does not hold cannot create it (its decisions would turn from
// "tenant-unknown" denials into allows); once it exists, it edits it.
TEST(PolicyStoreTest, AnActorBoundToAMissingTenantCannotCreateIt) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(LoadAcme(*f.store, kv.get()));
  const Tenant beta = T("beta", R"({"home_region":"eu-west-1","status":"active"})");
  auto refused = f.store->PutTenant(Actor("beta-admin", "beta"), beta, testing::Audited(kv));
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(f.store->version(), 3u);
  EXPECT_EQ(f.engine->Decide("beta", "personal", "store", "eu-west-1", kNow).reason, Reason::kTenantUnknown);
  ASSERT_TRUE(f.store->PutTenant("admin", beta, testing::Audited(kv)).ok());
  auto edited = f.store->PutTenant(Actor("beta-admin", "beta"),
                                   T("beta", R"({"home_region":"eu-west-1","status":"active",
                                       "allowed_regions":{"personal":["eu-central-1"]}})"),
                                   testing::Audited(kv));
  EXPECT_TRUE(edited.ok()) << edited.status().ToString();
}

// Rule 15 takes the first active SCC or BCR in the tenant's list: a PUT that
// only reorders the safeguards changes the legal basis a transfer names, so
// it is a change like any other (it was compared as a set and dropped).
TEST(PolicyStoreTest, ReorderingSafeguardsIsAChangeAndTheFirstOneDecides) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv)).ok());
  ASSERT_TRUE(f.store->PutRegion("admin", R("in-1", "IN"), testing::Audited(kv)).ok());
  Tenant t = T("acme", R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["in-1"]},
      "safeguards":[
        {"jurisdiction":"IN","mechanism":"scc","reference":"OLD","valid_from":"2025-01-01"},
        {"jurisdiction":"IN","mechanism":"bcr","reference":"NEW","valid_from":"2025-01-01"}]})");
  ASSERT_TRUE(f.store->PutTenant("admin", t, testing::Audited(kv)).ok());
  const uint64_t before = f.store->version();
  EXPECT_EQ(f.engine->Decide("acme", "personal", "store", "in-1", kNow).legal_basis, "gdpr:art46:scc:OLD");

  std::swap(t.safeguards[0], t.safeguards[1]);
  auto rec = f.store->PutTenant("bob", t, testing::Audited(kv));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->version, before + 1);
  ASSERT_EQ(rec->changes.size(), 1u);
  EXPECT_EQ(rec->changes[0], (FieldChange{"safeguards.order", "IN/scc/OLD/2025-01-01..,IN/bcr/NEW/2025-01-01..",
                                          "IN/bcr/NEW/2025-01-01..,IN/scc/OLD/2025-01-01.."}));
  EXPECT_EQ(f.engine->Decide("acme", "personal", "store", "in-1", kNow).legal_basis, "gdpr:art47:bcr:NEW");
  auto got = f.store->GetTenant("acme");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->safeguards, t.safeguards);
  auto history = testing::TenantHistory(*f.store, "acme");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].actor, "bob");

  // The same PUT again changes nothing and writes nothing.
  auto same = f.store->PutTenant("bob", t, testing::Audited(kv));
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->changes.empty());
  EXPECT_EQ(f.store->version(), before + 1);
}

// Rule 14 takes the first dated DPF declaration that covers the day, so
// reordering them is a change; and two lists whose rendered text is the same
// (a reference holding the separators) are still different lists.
TEST(PolicyStoreTest, ReorderedOrLookalikeCertificationsAreAChange) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv)).ok());
  ASSERT_TRUE(f.store->PutRegion("admin", R("us-east-1", "US"), testing::Audited(kv)).ok());
  Tenant t = T("acme", R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["us-east-1"]},
      "certifications":[
        {"name":"dpf","reference":"Old Corp","valid_from":"2025-01-01","valid_until":"2025-12-31"},
        {"name":"dpf","reference":"New Corp","valid_from":"2025-06-01","valid_until":"2026-05-31"}]})");
  ASSERT_TRUE(f.store->PutTenant("admin", t, testing::Audited(kv)).ok());
  EXPECT_EQ(f.engine->Decide("acme", "personal", "store", "us-east-1", kNow).legal_basis,
            "gdpr:art45:US:dpf:Old Corp");

  std::swap(t.certifications[0], t.certifications[1]);
  auto rec = f.store->PutTenant("admin", t, testing::Audited(kv));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_EQ(rec->changes.size(), 1u);
  EXPECT_EQ(rec->changes[0].field, "certifications");
  EXPECT_EQ(rec->changes[0].to,
            "dpf/New Corp/2025-06-01..2026-05-31,dpf/Old Corp/2025-01-01..2025-12-31");
  EXPECT_EQ(f.engine->Decide("acme", "personal", "store", "us-east-1", kNow).legal_basis,
            "gdpr:art45:US:dpf:New Corp");

  // Two declarations, and one whose reference spells out both: the same
  // text once joined, but not the same policy.
  Tenant two = T("acme", R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["us-east-1"]},
      "certifications":[
        {"name":"dpf","reference":"A","valid_from":"2025-01-01","valid_until":"2025-12-31"},
        {"name":"dpf","reference":"B","valid_from":"2026-01-01","valid_until":"2026-12-31"}]})");
  ASSERT_TRUE(f.store->PutTenant("admin", two, testing::Audited(kv)).ok());
  EXPECT_TRUE(f.engine->Decide("acme", "personal", "store", "us-east-1", kNow).allow);
  Tenant one = T("acme", R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["us-east-1"]},
      "certifications":[
        {"name":"dpf","reference":"A/2025-01-01..2025-12-31,dpf/B","valid_from":"2026-01-01","valid_until":"2026-12-31"}]})");
  const uint64_t before = f.store->version();
  auto lookalike = f.store->PutTenant("admin", one, testing::Audited(kv));
  ASSERT_TRUE(lookalike.ok()) << lookalike.status().ToString();
  EXPECT_EQ(f.store->version(), before + 1);
  ASSERT_EQ(lookalike->changes.size(), 1u);
  EXPECT_EQ(lookalike->changes[0].field, "certifications");
  // No declaration covers 2025-06-15 any more.
  EXPECT_FALSE(f.engine->Decide("acme", "personal", "store", "us-east-1", kNow).allow);
}

// A bundle that drops a region records that in the region's history, as it
// does for a dropped tenant.
TEST(PolicyStoreTest, ReplaceRecordsTheRemovalOfARegionInItsHistory) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv)).ok());
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-central-1", "DE"), testing::Audited(kv)).ok());
  PolicyDocument doc;
  doc.version = 10;
  doc.regions = {R("eu-west-1", "IE")};
  ASSERT_TRUE(f.store->Replace("bundle:peer", doc, testing::Audited(kv)).ok());
  auto gone = f.store->GetRegion("eu-central-1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto history = testing::RegionHistory(*f.store, "eu-central-1");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ(history->back().version, 10u);
  EXPECT_EQ(history->back().actor, "bundle:peer");
  ASSERT_EQ(history->back().changes.size(), 1u);
  EXPECT_EQ(history->back().changes[0], (FieldChange{"region", "set", "deleted"}));
}

TEST(PolicyStoreTest, HistoryListsFieldLevelChangesWithActorAndTime) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv)).ok());
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-central-1", "DE"), testing::Audited(kv)).ok());
  ASSERT_TRUE(f.store->PutTenant("alice-token", Acme(), testing::Audited(kv)).ok());
  clock.Advance(std::chrono::seconds(5));
  Tenant changed = Acme();
  changed.status = TenantStatus::kSuspended;
  changed.safeguards.push_back({"US", Mechanism::kScc, "SCC-1", *ParseDate("2025-01-01"), std::nullopt});
  auto rec = f.store->PutTenant("bob-token", changed, testing::Audited(kv));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->version, 4u);
  ASSERT_EQ(rec->changes.size(), 2u);
  EXPECT_EQ(rec->changes[0], (FieldChange{"status", "active", "suspended"}));
  EXPECT_EQ(rec->changes[1], (FieldChange{"safeguards", "", "US/scc/SCC-1/2025-01-01.."}));

  auto history = testing::TenantHistory(*f.store, "acme");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].version, 3u);
  EXPECT_EQ((*history)[0].actor, "alice-token");
  EXPECT_TRUE((*history)[0].created);
  EXPECT_EQ((*history)[1].version, 4u);
  EXPECT_EQ((*history)[1].actor, "bob-token");
  EXPECT_EQ((*history)[1].unix_millis - (*history)[0].unix_millis, 5000);
  EXPECT_EQ((*history)[1].changes, rec->changes);
  auto limited = testing::TenantHistory(*f.store, "acme", 1);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ((*limited)[0].version, 4u);
  EXPECT_TRUE(testing::TenantHistory(*f.store, "nobody")->empty());
  auto region_history = testing::RegionHistory(*f.store, "eu-west-1");
  ASSERT_TRUE(region_history.ok());
  EXPECT_EQ(region_history->size(), 1u);
}

// A long history is read in pages, back from the newest or forward from a
// version, each page reading only its own records; other tenants' changes
// (interleaved versions, a neighbouring id) never appear.
TEST(PolicyStoreTest, HistoryIsReadInPagesBackwardAndForward) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(LoadAcme(*f.store, kv.get()));
  std::vector<uint64_t> versions = {testing::TenantHistory(*f.store, "acme")->back().version};
  for (int i = 0; i < 6; ++i) {
    Tenant neighbour = T("acme-2", R"({"home_region":"eu-west-1","status":"active"})");
    if (i % 2 == 1) neighbour.status = TenantStatus::kSuspended;
    ASSERT_TRUE(f.store->PutTenant("admin", neighbour, testing::Audited(kv)).ok());
    Tenant acme = Acme();
    if (i % 2 == 0) acme.status = TenantStatus::kSuspended;
    auto rec = f.store->PutTenant("admin", acme, testing::Audited(kv));
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    versions.push_back(rec->version);
  }
  ASSERT_EQ(versions.size(), 7u);
  auto read = [&](ChangeQuery q, bool* more) {
    auto page = f.store->TenantChanges("acme", q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<uint64_t> out;
    if (!page.ok()) return out;
    for (const auto& c : page->changes) {
      EXPECT_EQ(c.id, "acme");
      out.push_back(c.version);
    }
    *more = page->more;
    return out;
  };
  using V = std::vector<uint64_t>;
  bool more = false;
  // Back from the newest: 3, 3, then the first change alone.
  EXPECT_EQ(read({.limit = 3}, &more), (V{versions[4], versions[5], versions[6]}));
  EXPECT_TRUE(more);
  EXPECT_EQ(read({.before = versions[4], .limit = 3}, &more), (V{versions[1], versions[2], versions[3]}));
  EXPECT_TRUE(more);
  EXPECT_EQ(read({.before = versions[1], .limit = 3}, &more), V{versions[0]});
  EXPECT_FALSE(more);
  // Forward from a version, and from before the first.
  EXPECT_EQ(read({.after = 0, .limit = 4}, &more), (V{versions[0], versions[1], versions[2], versions[3]}));
  EXPECT_TRUE(more);
  EXPECT_EQ(read({.after = versions[3], .limit = 4}, &more), (V{versions[4], versions[5], versions[6]}));
  EXPECT_FALSE(more);
  EXPECT_EQ(read({.after = versions[6], .limit = 4}, &more), V{});
  EXPECT_FALSE(more);
  // Both bounds: strictly between them, in either direction.
  EXPECT_EQ(read({.after = versions[1], .before = versions[5], .limit = 2}, &more), (V{versions[2], versions[3]}));
  EXPECT_TRUE(more);
  EXPECT_EQ(read({.after = versions[1], .before = versions[5], .limit = 3}, &more),
            (V{versions[2], versions[3], versions[4]}));
  EXPECT_FALSE(more);
  EXPECT_EQ(read({.after = versions[2], .before = versions[2] + 1}, &more), V{});
  EXPECT_EQ(read({.after = UINT64_MAX}, &more), V{});
  EXPECT_EQ(read({.limit = 0}, &more), V{});
  // The neighbour's own history is its six changes.
  EXPECT_EQ(testing::TenantHistory(*f.store, "acme-2")->size(), 6u);
}

TEST(PolicyStoreTest, ReopeningRebuildsTheSameSnapshot) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  {
    Fixture f(kv.get(), &clock);
    ASSERT_TRUE(f.store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv)).ok());
    ASSERT_TRUE(f.store->PutRegion("admin", R("eu-central-1", "DE"), testing::Audited(kv)).ok());
    ASSERT_TRUE(f.store->PutTenant("admin", Acme(), testing::Audited(kv)).ok());
  }
  Fixture f(kv.get(), &clock);
  EXPECT_EQ(f.store->version(), 3u);
  EXPECT_EQ(f.engine->version(), 3u);
  EXPECT_TRUE(f.engine->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);
  auto got = f.store->GetTenant("acme");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, Acme());
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-south-1", "IT"), testing::Audited(kv)).ok());
  EXPECT_EQ(f.store->version(), 4u);
}

TEST(PolicyStoreTest, CorruptStoredRecordIsDataLoss) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  KvBatch batch;
  batch.Put(kResidencyNamespace, "version", "2");
  batch.Put(kResidencyNamespace, "region/eu-west-1", "{not json");
  ASSERT_TRUE(kv->Write(batch, true).ok());
  auto engine = testing::NewEngine();
  auto store = PolicyStore::Open(kv.get(), engine.get(), &clock);
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(engine->version(), 0u);
}

TEST(PolicyStoreTest, ReplaceRefusesOlderVersionsAndRecordsHistory) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(LoadAcme(*f.store, kv.get()));
  PolicyDocument doc;
  doc.version = 3;
  doc.regions = {R("eu-west-1", "IE")};
  EXPECT_EQ(f.store->Replace("bundle", doc, testing::Audited(kv)).status().code(), StatusCode::kFailedPrecondition);
  doc.version = 10;
  doc.tenants = {T("beta", R"({"home_region":"eu-west-1","status":"active"})")};
  auto rec = f.store->Replace("bundle", doc, testing::Audited(kv));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(f.engine->version(), 10u);
  EXPECT_FALSE(f.engine->Decide("acme", "personal", "store", "eu-west-1", kNow).allow);
  EXPECT_TRUE(f.engine->Decide("beta", "personal", "store", "eu-west-1", kNow).allow);
  auto acme_history = testing::TenantHistory(*f.store, "acme");
  ASSERT_TRUE(acme_history.ok());
  ASSERT_EQ(acme_history->size(), 2u);
  EXPECT_EQ(acme_history->back().changes[0].to, "deleted");
  auto exported = f.store->Export();
  ASSERT_TRUE(exported.ok());
  EXPECT_EQ(exported->version, 10u);
  ASSERT_EQ(exported->regions.size(), 1u);
  ASSERT_EQ(exported->tenants.size(), 1u);
  EXPECT_EQ(exported->tenants[0].id, "beta");
}

TEST(PolicyStoreTest, RocksDbPersistsAcrossReopen) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("geoledger-residency-" + std::to_string(::getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  ManualClock clock;
  {
    auto kv = OpenRocksDbKvStore(dir.string(), KnownNamespaces());
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    Fixture f(kv->get(), &clock);
    ASSERT_TRUE(f.store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv->get())).ok());
    ASSERT_TRUE(f.store->PutRegion("admin", R("eu-central-1", "DE"), testing::Audited(kv->get())).ok());
    ASSERT_TRUE(f.store->PutTenant("admin", Acme(), testing::Audited(kv->get())).ok());
  }
  {
    auto kv = OpenRocksDbKvStore(dir.string(), KnownNamespaces());
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    Fixture f(kv->get(), &clock);
    EXPECT_EQ(f.engine->version(), 3u);
    EXPECT_TRUE(f.engine->Decide("acme", "personal", "backup", "eu-central-1", kNow).allow);
    EXPECT_FALSE(f.engine->Decide("acme", "special", "backup", "eu-central-1", kNow).allow);
    auto history = testing::TenantHistory(*f.store, "acme");
    ASSERT_TRUE(history.ok());
    EXPECT_EQ(history->size(), 1u);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace geoledger::residency

namespace geoledger::residency {
namespace {

Tenant Suspended() { return T("acme", R"({"home_region":"eu-west-1","status":"suspended"})"); }

// A change is written with its audit entry: when the entry is refused
// before anything is written (a full queue, a closed ledger), nothing
// changes, the version is not used up, and a retry goes through.
TEST(PolicyStoreTest, AChangeWhoseAuditEntryCannotBeWrittenChangesNothing) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(LoadAcme(*f.store, kv.get()));
  const uint64_t v = f.store->version();
  int calls = 0;
  AuditChange refuse = [&calls](const ChangeRecord&, const ChangeWrites&) -> StatusOr<uint64_t> {
    ++calls;
    return Unavailable("audit append queue is full");
  };

  EXPECT_EQ(f.store->PutTenant("admin", Suspended(), refuse).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.store->PutRegion("admin", R("us-east-1", "US"), refuse).status().code(), StatusCode::kUnavailable);
  auto doc = f.store->Export();
  ASSERT_TRUE(doc.ok());
  doc->version = v + 5;
  doc->regions.push_back(R("us-east-1", "US"));
  EXPECT_EQ(f.store->Replace("bundle", *doc, refuse).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(calls, 3);

  EXPECT_EQ(f.store->version(), v);
  EXPECT_EQ(f.engine->version(), v);
  EXPECT_TRUE(f.engine->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);
  auto acme = f.store->GetTenant("acme");
  ASSERT_TRUE(acme.ok() && acme->has_value());
  EXPECT_EQ((*acme)->status, TenantStatus::kActive);
  auto us = f.store->GetRegion("us-east-1");
  ASSERT_TRUE(us.ok());
  EXPECT_FALSE(us->has_value());
  auto history = testing::TenantHistory(*f.store, "acme");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 1u);
  // Reopened from the store: the same policy.
  auto engine2 = testing::NewEngine();
  ASSERT_TRUE(PolicyStore::Open(kv.get(), engine2.get(), &clock).ok());
  EXPECT_EQ(engine2->version(), v);

  auto retry = f.store->PutTenant("admin", Suspended(), testing::Audited(kv));
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_EQ(retry->version, v + 1);
  EXPECT_FALSE(retry->changes.empty());
}

TEST(PolicyStoreTest, HistoryRecordsKeepTheIndexOfTheirAuditEntry) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  std::vector<ChangeRecord> seen;
  auto region = f.store->PutRegion("admin", R("eu-west-1", "IE"), AuditAt(kv.get(), 10, &seen));
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(region->audit_index, 10u);
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-central-1", "DE"), AuditAt(kv.get(), 11)).ok());
  auto tenant = f.store->PutTenant("alice", Acme(), AuditAt(kv.get(), 12, &seen));
  ASSERT_TRUE(tenant.ok());
  EXPECT_EQ(tenant->audit_index, 12u);
  // The entry is written with the change as it will be committed.
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].version, tenant->version);
  EXPECT_EQ(seen[1].actor, "alice");
  EXPECT_EQ(seen[1].changes, tenant->changes);

  auto doc = f.store->Export();
  ASSERT_TRUE(doc.ok());
  doc->version = 9;
  doc->tenants[0] = Suspended();
  auto imported = f.store->Replace("bundle:peer", *doc, AuditAt(kv.get(), 20, &seen));
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->audit_index, 20u);
  // The import names the version it replaced, read under the store's lock.
  ASSERT_FALSE(imported->changes.empty());
  EXPECT_EQ(imported->changes[0], (FieldChange{"version", std::to_string(tenant->version), "9"}));
  EXPECT_EQ(seen.back().kind, "bundle");
  EXPECT_EQ(seen.back().version, 9u);

  // Kept in the store: a reopened store lists the same indexes.
  auto engine2 = testing::NewEngine();
  auto reopened = PolicyStore::Open(kv.get(), engine2.get(), &clock);
  ASSERT_TRUE(reopened.ok());
  auto acme = testing::TenantHistory(*(*reopened), "acme");
  ASSERT_TRUE(acme.ok());
  ASSERT_EQ(acme->size(), 2u);
  EXPECT_EQ((*acme)[0].audit_index, 12u);
  EXPECT_EQ((*acme)[1].audit_index, 20u);
  EXPECT_EQ((*acme)[1].version, 9u);
  auto west = testing::RegionHistory(*(*reopened), "eu-west-1");
  ASSERT_TRUE(west.ok());
  ASSERT_EQ(west->size(), 1u);
  EXPECT_EQ((*west)[0].audit_index, 10u);
}

// When the write that carries the change and its entry fails, the change is
// not active, and the store cannot tell whether the write reached the disk
// (a failed sync may still have persisted it): it refuses every request
// until it is reopened, and the reopened store has the change with its
// entry's index, or nothing.
TEST(PolicyStoreTest, AChangeWhoseAuditedWriteFailsIsNotActiveAndTheStoreWaitsForAReopen) {
  auto inner = NewMemoryKvStore();
  FaultyKvStore kv(inner.get());
  ManualClock clock;
  Fixture f(&kv, &clock);
  ASSERT_TRUE(LoadAcme(*f.store, &kv));
  const uint64_t v = f.store->version();
  kv.fail_ = true;
  std::vector<ChangeRecord> seen;
  auto put = f.store->PutTenant("admin", Suspended(), AuditAt(&kv, 7, &seen));
  EXPECT_EQ(put.status().code(), StatusCode::kInternal);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].version, v + 1);
  EXPECT_EQ(f.store->version(), v);
  EXPECT_EQ(f.engine->version(), v);
  EXPECT_TRUE(f.engine->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);
  kv.fail_ = false;
  // Every request is refused until a reopen; the engine keeps deciding.
  EXPECT_EQ(testing::TenantHistory(*f.store, "acme").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.store->GetTenant("acme").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.store->GetRegion("eu-west-1").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.store->Export().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.store->PutTenant("admin", Suspended(), testing::Audited(&kv)).status().code(),
            StatusCode::kUnavailable);
  EXPECT_TRUE(f.engine->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);
  // The write did not happen: the reopened store has the old policy.
  Fixture reopened(&kv, &clock);
  ASSERT_TRUE(reopened.store);
  EXPECT_EQ(reopened.store->version(), v);
  auto history = testing::TenantHistory(*reopened.store, "acme");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_NE(history->back().audit_index, std::optional<uint64_t>(7));
}

// The same when the write reached the store and only the sync failed: the
// change is still not active until the reopen, which finds it, with the
// index of the entry written with it.
TEST(PolicyStoreTest, AChangeWhoseSyncFailedIsActiveOnlyAfterAReopenAndKeepsItsEntry) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(LoadAcme(*f.store, kv.get()));
  const uint64_t v = f.store->version();
  // Written, then the sync reports a failure.
  AuditChange written_not_synced = [&kv](const ChangeRecord&, const ChangeWrites& writes) -> StatusOr<uint64_t> {
    KvBatch batch;
    writes(41, batch);
    GL_RETURN_IF_ERROR(kv->Write(batch, /*sync=*/false));
    return Internal("injected fsync failure");
  };
  EXPECT_EQ(f.store->PutTenant("admin", Suspended(), written_not_synced).status().code(), StatusCode::kInternal);
  EXPECT_EQ(f.engine->version(), v);
  EXPECT_EQ(f.store->GetTenant("acme").status().code(), StatusCode::kUnavailable);
  Fixture reopened(kv.get(), &clock);
  ASSERT_TRUE(reopened.store);
  EXPECT_EQ(reopened.store->version(), v + 1);
  EXPECT_FALSE(reopened.engine->Decide("acme", "personal", "store", "eu-central-1", kNow).allow);
  auto history = testing::TenantHistory(*reopened.store, "acme");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ(history->back().audit_index, std::optional<uint64_t>(41));
}

// An audit hook that reports success without writing the change is a bug:
// the change is refused, not activated unstored.
TEST(PolicyStoreTest, AHookThatDoesNotWriteTheChangeIsAnError) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  AuditChange forgetful = [](const ChangeRecord&, const ChangeWrites&) -> StatusOr<uint64_t> { return 3; };
  EXPECT_EQ(f.store->PutRegion("admin", R("eu-west-1", "IE"), forgetful).status().code(), StatusCode::kInternal);
  EXPECT_EQ(f.engine->version(), 0u);
  EXPECT_EQ(f.store->version(), 0u);
}

}  // namespace
}  // namespace geoledger::residency

namespace geoledger::residency {
namespace {

// An export reads one version of the policy and holds up no change: here its
// scan of the tenants is paused while a change goes through, and it still
// returns the policy as it was when it started.
TEST(PolicyStoreTest, AnExportReadsOneVersionAndHoldsUpNoChange) {
  auto inner = NewMemoryKvStore();
  FaultyKvStore kv(inner.get());
  ManualClock clock;
  Fixture f(&kv, &clock);
  ASSERT_TRUE(LoadAcme(*f.store, &kv));
  const uint64_t v = f.store->version();
  kv.block_scans_ = true;
  std::promise<StatusOr<PolicyDocument>> exported;
  std::thread exporter([&] { exported.set_value(f.store->Export()); });
  for (int i = 0; i < 20000 && !kv.scan_blocked_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The export is reading; a change goes through. Against an export that
  // held the store's lock it would wait until the scan resumed: the bound
  // below only keeps such a failure from hanging the test.
  auto put = std::async(std::launch::async, [&] {
    return f.store->PutTenant("admin", T("acme", R"({"home_region":"eu-west-1","status":"suspended"})"),
                              testing::Audited(&kv));
  });
  const bool done_while_reading = put.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  kv.block_scans_ = false;
  exporter.join();
  EXPECT_TRUE(kv.scan_blocked_.load());
  ASSERT_TRUE(done_while_reading) << "the change waited for the export";
  auto change = put.get();
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  EXPECT_EQ(f.store->version(), v + 1);
  auto doc = exported.get_future().get();
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->version, v);
  ASSERT_EQ(doc->tenants.size(), 1u);
  EXPECT_EQ(doc->tenants[0], Acme());
  // And the next export has the change.
  auto now = f.store->Export();
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->version, v + 1);
  EXPECT_EQ(now->tenants[0].status, TenantStatus::kSuspended);
}

}  // namespace
}  // namespace geoledger::residency

namespace geoledger::residency {
namespace {

// History records are written without their entry's index, which is kept
// once per version (a bundle import writes one record per tenant, rendered
// before the index is known); records that carry their own index, as
// earlier versions of the store wrote them, keep it.
TEST(PolicyStoreTest, HistoryTakesTheIndexFromItsVersionOrFromAnEarlierRecordItself) {
  auto kv = NewMemoryKvStore();
  ManualClock clock;
  Fixture f(kv.get(), &clock);
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-west-1", "IE"), AuditAt(kv.get(), 30)).ok());
  ASSERT_TRUE(f.store->PutRegion("admin", R("eu-central-1", "DE"), AuditAt(kv.get(), 31)).ok());
  auto created = f.store->PutTenant("admin", Acme(), AuditAt(kv.get(), 32));
  ASSERT_TRUE(created.ok());
  // The record as stored names no index; the version's key does.
  auto raw = kv->Get(kResidencyNamespace, "history/tenant/acme/" + std::string(19, '0') + std::to_string(created->version));
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_EQ((*raw)->find("audit_index"), std::string::npos) << **raw;
  // A record in the earlier layout, with its own index.
  ChangeRecord earlier{1, 5, "admin", "tenant", "acme", false, {{"status", "active", "suspended"}}, 12, std::nullopt};
  KvBatch batch;
  batch.Put(kResidencyNamespace, "history/tenant/acme/" + std::string(19, '0') + "1",
            DumpJson(ChangeRecordToJson(earlier)));
  ASSERT_TRUE(kv->Write(batch, true).ok());
  auto history = testing::TenantHistory(*f.store, "acme");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].audit_index, std::optional<uint64_t>(12));
  EXPECT_EQ((*history)[1].audit_index, std::optional<uint64_t>(32));
  // A malformed index is data loss, not a silent gap.
  KvBatch bad;
  bad.Put(kResidencyNamespace, "history/audit/" + std::string(19, '0') + std::to_string(created->version), "3x");
  ASSERT_TRUE(kv->Write(bad, true).ok());
  EXPECT_EQ(testing::TenantHistory(*f.store, "acme").status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace geoledger::residency
