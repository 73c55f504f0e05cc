#include "residency/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "tests/residency/fixtures.h"

namespace geoledger::residency {
namespace {

using testing::At;
using testing::R;
using testing::T;

const int64_t kNow = At("2025-06-15");

TEST(EngineTest, EmptyEngineDeniesEverything) {
  auto engine = testing::NewEngine();
  EXPECT_EQ(engine->version(), 0u);
  EXPECT_FALSE(engine->loaded());
  const OwnedDecision d = engine->Decide("t", "anonymous", "read", "eu-west-1", kNow);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(ReasonCode(d.reason), "tenant-unknown");
}

TEST(EngineTest, FullPolicyMustBeNewerThanTheActiveOne) {
  auto engine = testing::NewEngine();
  SnapshotBuilder b = engine->NewPolicy(5);
  ASSERT_TRUE(b.PutRegion(R("eu-west-1", "IE")).ok());
  ASSERT_TRUE(engine->Install(std::move(b).Build()).ok());
  EXPECT_TRUE(engine->loaded());
  for (uint64_t v : {5u, 4u}) {
    Status s = engine->Install(engine->NewPolicy(v).Build());
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << v;
  }
  EXPECT_EQ(engine->version(), 5u);
}

TEST(EngineTest, ChangeBuiltOnAStaleVersionIsRefused) {
  auto engine = testing::NewEngine();
  SnapshotBuilder first = engine->EditCurrent();
  SnapshotBuilder second = engine->EditCurrent();
  ASSERT_TRUE(first.PutRegion(R("eu-west-1", "IE")).ok());
  ASSERT_TRUE(second.PutRegion(R("eu-central-1", "DE")).ok());
  ASSERT_TRUE(engine->Install(std::move(first).Build()).ok());
  EXPECT_EQ(engine->Install(std::move(second).Build()).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->version(), 1u);
  EXPECT_NE(engine->Current()->FindRegion("eu-west-1"), nullptr);
  EXPECT_EQ(engine->Current()->FindRegion("eu-central-1"), nullptr);
}

TEST(EngineTest, BuilderRejectsUnknownReferencesAndTooManyRegions) {
  auto engine = testing::NewEngine();
  SnapshotBuilder b = engine->NewPolicy(1);
  ASSERT_TRUE(b.PutRegion(R("eu-west-1", "IE")).ok());
  Tenant t = T("acme", R"({"home_region":"eu-west-1","status":"active"})");
  t.allowed_regions[Category::kPersonal] = {"nowhere-1"};
  Status s = b.PutTenant(t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("nowhere-1"), std::string::npos);
  EXPECT_EQ(b.PutRegion(R("xx-1", "XX")).code(), StatusCode::kInvalidArgument);
  for (size_t i = 1; i < kMaxRegions; ++i) ASSERT_TRUE(b.PutRegion(R("r-" + std::to_string(i), "DE")).ok());
  EXPECT_EQ(b.PutRegion(R("one-too-many", "DE")).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(b.PutRegion(R("r-1", "FR")).ok());  // replacing is not adding
}

TEST(EngineTest, IncrementalChangesShareUntouchedTenantsAndKeepRegionIndexes) {
  auto engine = testing::NewEngine();
  SnapshotBuilder b = engine->NewPolicy(1);
  ASSERT_TRUE(b.PutRegion(R("eu-west-1", "IE")).ok());
  ASSERT_TRUE(b.PutRegion(R("eu-central-1", "DE")).ok());
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(b.PutTenant(T("t" + std::to_string(i),
                              R"({"home_region":"eu-west-1","status":"active"})")).ok());
  ASSERT_TRUE(engine->Install(std::move(b).Build()).ok());
  SnapshotBuilder edit = engine->EditCurrent();
  ASSERT_TRUE(edit.PutRegion(R("eu-west-1", "FR")).ok());  // moves country, keeps index
  ASSERT_TRUE(edit.PutTenant(T("t7", R"({"home_region":"eu-central-1","status":"suspended"})")).ok());
  ASSERT_TRUE(engine->Install(std::move(edit).Build()).ok());
  EXPECT_EQ(engine->Current()->tenant_count(), 1000u);
  EXPECT_EQ(ReasonCode(engine->Decide("t7", "personal", "store", "eu-west-1", kNow).reason),
            "tenant-suspended");
  const OwnedDecision d = engine->Decide("t8", "personal", "store", "eu-west-1", kNow);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.policy_version, 2u);
  EXPECT_FALSE(engine->Decide("t8", "personal", "store", "eu-central-1", kNow).allow);
}

// A Decision's strings point into its snapshot: valid while the read that
// made it is open, however many policies replace it meanwhile. Engine::Decide
// copies them out.
TEST(EngineTest, DecisionStringsLiveAsLongAsTheirReadOrAreCopied) {
  auto engine = testing::NewEngine();
  SnapshotBuilder b = engine->NewPolicy(1);
  ASSERT_TRUE(b.PutRegion(R("eu-west-1", "IE")).ok());
  // Strings longer than a std::string holds in itself, so that a freed one
  // is not read back from a copy.
  ASSERT_TRUE(b.PutRegion(R("in-mumbai-region-1", "IN")).ok());
  ASSERT_TRUE(b.PutTenant(T("acme", R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["in-mumbai-region-1"]},
      "safeguards":[{"jurisdiction":"IN","mechanism":"scc","reference":"a-reference-longer-than-sso","valid_from":"2020-01-01"}]})")).ok());
  ASSERT_TRUE(engine->Install(std::move(b).Build()).ok());
  const OwnedDecision owned = engine->Decide("acme", "personal", "store", "in-mumbai-region-1", kNow);
  ASSERT_TRUE(owned.allow);
  {
    const Engine::Read read = engine->Pin();
    const Decision d = read->Decide("acme", "personal", "store", "in-mumbai-region-1", kNow);
    ASSERT_TRUE(d.allow);
    // Replace the policy entirely, and give the release thread time.
    ASSERT_TRUE(engine->Install(engine->NewPolicy(2).Build()).ok());
    EXPECT_FALSE(engine->Decide("acme", "personal", "store", "in-mumbai-region-1", kNow).allow);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(d.route_region, "in-mumbai-region-1");
    EXPECT_EQ(d.legal_basis, "gdpr:art46:scc:a-reference-longer-than-sso");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(owned.route_region, "in-mumbai-region-1");
  EXPECT_EQ(owned.legal_basis, "gdpr:art46:scc:a-reference-longer-than-sso");
}

// Equal legal bases are shared; one that no compiled tenant holds any more
// is freed, and its entry dropped as the pool grows, so a policy whose
// references keep changing does not grow it without bound.
TEST(StringPoolTest, SharesEqualStringsAndForgetsFreedOnes) {
  StringPool pool;
  SharedString a = pool.Intern("gdpr:art46:scc:one");
  SharedString b = pool.Intern("gdpr:art46:scc:one");
  EXPECT_EQ(a.get(), b.get());
  std::weak_ptr<const std::string> gone = a;
  a.reset();
  b.reset();
  EXPECT_TRUE(gone.expired());
  EXPECT_EQ(*pool.Intern("gdpr:art46:scc:one"), "gdpr:art46:scc:one") << "interned afresh";
  SharedString kept = pool.Intern("gdpr:art46:scc:kept");
  size_t largest = 0;
  for (int i = 0; i < 100000; ++i) {
    SharedString s = pool.Intern("gdpr:art46:scc:ref-" + std::to_string(i));
    largest = std::max(largest, pool.size());
  }
  EXPECT_LE(largest, 2048u);
  EXPECT_EQ(pool.Intern("gdpr:art46:scc:kept").get(), kept.get());
}

std::unique_ptr<Engine> EngineWithoutReleaseThread() {
  Engine::Options options;
  options.release_in_background = false;
  auto created = Engine::Create(options);
  EXPECT_TRUE(created.ok()) << created.status().ToString();
  return std::move(created).value();
}

void InstallOneRegion(Engine& engine, uint64_t version) {
  SnapshotBuilder b = engine.NewPolicy(version);
  ASSERT_TRUE(b.PutRegion(R("eu-west-1", "IE")).ok());
  ASSERT_TRUE(engine.Install(std::move(b).Build()).ok());
}

// Freeing a replaced policy of a million tenants takes about 0.17 s; the
// decision thread that reads it last must not be the one that pays.
TEST(EngineTest, ADecisionThreadNeverFreesAReplacedSnapshot) {
  auto engine = EngineWithoutReleaseThread();
  InstallOneRegion(*engine, 1);
  std::weak_ptr<const Snapshot> first = engine->Current();
  EXPECT_EQ(engine->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 1u);

  ASSERT_TRUE(engine->Install(engine->NewPolicy(2).Build()).ok());
  EXPECT_EQ(engine->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 2u);
  EXPECT_FALSE(first.expired()) << "the engine's retired list holds version 1 until it is released";
  EXPECT_EQ(engine->ReleaseRetired(), 0u);
  EXPECT_TRUE(first.expired());
}

// A thread that decided on a policy and then went idle keeps nothing: the
// replaced policy is freed without that thread deciding again.
TEST(EngineTest, AnIdleReaderThreadDoesNotKeepAReplacedSnapshot) {
  auto engine = EngineWithoutReleaseThread();
  InstallOneRegion(*engine, 1);
  std::weak_ptr<const Snapshot> first = engine->Current();
  std::atomic<bool> decided{false}, finish{false};
  std::thread idle([&] {
    EXPECT_EQ(engine->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 1u);
    decided = true;
    while (!finish) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (!decided) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(engine->Install(engine->NewPolicy(2).Build()).ok());
  EXPECT_EQ(engine->ReleaseRetired(), 0u);
  EXPECT_TRUE(first.expired());
  finish = true;
  idle.join();
}

// A read in progress keeps the snapshot it pinned, however many policies
// replace it meanwhile, and a nested read on the same thread does not end
// the outer one.
TEST(EngineTest, AnOpenReadKeepsItsSnapshotUntilItEnds) {
  auto engine = EngineWithoutReleaseThread();
  InstallOneRegion(*engine, 1);
  std::weak_ptr<const Snapshot> first = engine->Current();
  {
    const Engine::Read read = engine->Pin();
    EXPECT_EQ(read->version(), 1u);
    ASSERT_TRUE(engine->Install(engine->NewPolicy(2).Build()).ok());
    InstallOneRegion(*engine, 3);
    {
      const Engine::Read inner = engine->Pin();
      EXPECT_EQ(inner->version(), 3u);
      EXPECT_EQ(engine->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 3u);
    }
    EXPECT_EQ(engine->ReleaseRetired(), 2u) << "versions 1 and 2 were replaced after the outer read began";
    EXPECT_FALSE(first.expired());
    EXPECT_EQ(read->version(), 1u);
    EXPECT_TRUE(read->FindRegion("eu-west-1") != nullptr);
  }
  EXPECT_EQ(engine->ReleaseRetired(), 0u);
  EXPECT_TRUE(first.expired());
}

// A read holds back only the snapshots it could see: those replaced after it
// began. One begun before two replacements holds both; one begun between
// them holds only the second.
TEST(EngineTest, AReadOnAnotherThreadHoldsBackOnlyWhatItCouldSee) {
  auto engine = EngineWithoutReleaseThread();
  InstallOneRegion(*engine, 1);
  std::weak_ptr<const Snapshot> v1 = engine->Current();
  // A thread that pins when told and holds its read until told again.
  struct Reader {
    std::atomic<bool> pin{false}, pinned{false}, finish{false};
    std::thread thread;
    uint64_t seen = 0;
  };
  auto start = [&engine](Reader& r) {
    r.thread = std::thread([&r, &engine] {
      while (!r.pin) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const Engine::Read read = engine->Pin();
      r.pinned = true;
      while (!r.finish) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      r.seen = read->version();
    });
  };
  auto pin = [](Reader& r) {
    r.pin = true;
    while (!r.pinned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  Reader early, later;
  start(early);
  start(later);
  pin(early);
  ASSERT_TRUE(engine->Install(engine->NewPolicy(2).Build()).ok());
  std::weak_ptr<const Snapshot> v2 = engine->Current();
  pin(later);
  InstallOneRegion(*engine, 3);
  EXPECT_EQ(engine->ReleaseRetired(), 2u);
  early.finish = true;
  early.thread.join();
  EXPECT_EQ(early.seen, 1u);
  EXPECT_EQ(engine->ReleaseRetired(), 1u) << "version 2 was replaced after the later read began";
  EXPECT_TRUE(v1.expired());
  EXPECT_FALSE(v2.expired());
  later.finish = true;
  later.thread.join();
  EXPECT_EQ(later.seen, 2u);
  EXPECT_EQ(engine->ReleaseRetired(), 0u);
  EXPECT_TRUE(v2.expired());
}

// A thread that exits leaves its slot to the next one.
TEST(EngineTest, ThreadsThatComeAndGoReuseReaderSlots) {
  auto engine = EngineWithoutReleaseThread();
  InstallOneRegion(*engine, 1);
  for (int i = 0; i < 20; ++i) {
    std::thread([&engine] {
      EXPECT_EQ(engine->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 1u);
    }).join();
  }
  EXPECT_EQ(engine->reader_slots(), 1u);
  // This thread takes the slot they left; one that reads beside it gets
  // its own.
  const Engine::Read read = engine->Pin();
  EXPECT_EQ(engine->reader_slots(), 1u);
  std::thread([&engine] {
    EXPECT_EQ(engine->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 1u);
  }).join();
  EXPECT_EQ(engine->reader_slots(), 2u);
}

// A Current() copy is a reference of its own.
TEST(EngineTest, ACurrentCopyKeepsAReplacedSnapshot) {
  auto engine = EngineWithoutReleaseThread();
  InstallOneRegion(*engine, 1);
  std::shared_ptr<const Snapshot> copy = engine->Current();
  ASSERT_TRUE(engine->Install(engine->NewPolicy(2).Build()).ok());
  EXPECT_EQ(engine->ReleaseRetired(), 1u);
  std::weak_ptr<const Snapshot> first = copy;
  copy.reset();
  EXPECT_FALSE(first.expired()) << "the engine's reference is released by ReleaseRetired only";
  EXPECT_EQ(engine->ReleaseRetired(), 0u);
  EXPECT_TRUE(first.expired());
}

// One thread reading several engines, alternately and with reads of both
// open at once, and engines destroyed while a thread keeps reading others.
TEST(EngineTest, OneThreadReadsSeveralEngines) {
  auto a = EngineWithoutReleaseThread();
  auto b = EngineWithoutReleaseThread();
  InstallOneRegion(*a, 1);
  InstallOneRegion(*b, 5);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 1u);
    EXPECT_EQ(b->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 5u);
  }
  std::weak_ptr<const Snapshot> a1 = a->Current();
  {
    const Engine::Read on_a = a->Pin();
    const Engine::Read on_b = b->Pin();
    ASSERT_TRUE(a->Install(a->NewPolicy(2).Build()).ok());
    ASSERT_TRUE(b->Install(b->NewPolicy(6).Build()).ok());
    EXPECT_EQ(a->ReleaseRetired(), 1u);
    EXPECT_EQ(b->ReleaseRetired(), 1u);
    EXPECT_EQ(on_a->version(), 1u);
    EXPECT_EQ(on_b->version(), 5u);
  }
  EXPECT_EQ(a->ReleaseRetired(), 0u);
  EXPECT_EQ(b->ReleaseRetired(), 0u);
  EXPECT_TRUE(a1.expired());
  b.reset();
  for (int i = 0; i < 3; ++i) {
    auto c = testing::NewEngine();
    EXPECT_EQ(c->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 0u);
    EXPECT_EQ(a->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 2u);
  }
}

TEST(EngineTest, TheReleaseThreadFreesReplacedSnapshotsOnceUnused) {
  auto engine = testing::NewEngine();
  InstallOneRegion(*engine, 1);
  std::weak_ptr<const Snapshot> first = engine->Current();
  {
    const Engine::Read held = engine->Pin();
    ASSERT_TRUE(engine->Install(engine->NewPolicy(2).Build()).ok());
    EXPECT_EQ(engine->Decide("t", "anonymous", "read", "eu-west-1", kNow).policy_version, 2u);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(first.expired()) << "a read of it is open";
  }
  // Bounded wait for the release thread (it polls every 10 ms).
  for (int i = 0; i < 500 && !first.expired(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(first.expired());
}

// ---- concurrent updates during a decision storm ----------------------------
//
// Invariant of every published version v: all kTenants tenants have home
// region and only allowed personal region "r<v % kRegions>". A reader that
// sees version v must therefore get allow exactly for that region, a deny
// hint pointing at it otherwise, and the same version for every tenant in a
// batch. A torn or half-applied policy breaks one of these.
constexpr int kRegions = 8;
constexpr int kTenants = 16;

std::string RegionFor(uint64_t version) { return "r" + std::to_string(version % kRegions); }

Tenant PinnedTenant(int i, const std::string& region) {
  Tenant t;
  t.id = "tenant-" + std::to_string(i);
  t.home_region = region;
  t.allowed_regions[Category::kPersonal] = {region};
  return t;
}

void AddRegions(SnapshotBuilder& b) {
  for (int r = 0; r < kRegions; ++r) ASSERT_TRUE(b.PutRegion(R("r" + std::to_string(r), "DE")).ok());
}

TEST(EngineConcurrencyTest, NoDecisionSeesAHalfAppliedPolicy) {
  auto engine = testing::NewEngine();
  {
    SnapshotBuilder b = engine->NewPolicy(1);
    AddRegions(b);
    for (int i = 0; i < kTenants; ++i) ASSERT_TRUE(b.PutTenant(PinnedTenant(i, RegionFor(1))).ok());
    ASSERT_TRUE(engine->Install(std::move(b).Build()).ok());
  }
  constexpr int kUpdatesPerWriter = 300;
  std::atomic<int> writers_done{0};
  std::atomic<uint64_t> decisions{0}, conflicts{0};
  std::atomic<bool> failed{false};
  // The writers start once both readers have decided once, so that reading
  // and writing overlap even when the scheduler runs the writers first (on
  // a loaded machine they could otherwise finish before any read).
  std::atomic<int> readers_started{0};

  // Writer 0 edits the current policy tenant by tenant; writer 1 replaces the
  // whole policy. Both race; a loser retries on the new version.
  auto writer = [&](int kind) {
    while (readers_started.load() < 2 && !failed) std::this_thread::yield();
    for (int n = 0; n < kUpdatesPerWriter;) {
      const uint64_t base = engine->version();
      SnapshotBuilder b = kind == 0 ? engine->EditCurrent() : engine->NewPolicy(base + 1);
      if (kind == 1) AddRegions(b);
      const std::string region = RegionFor(b.version());
      for (int i = 0; i < kTenants; ++i) {
        if (!b.PutTenant(PinnedTenant(i, region)).ok()) failed = true;
      }
      Status s = engine->Install(std::move(b).Build());
      if (s.ok()) {
        ++n;
      } else if (s.code() == StatusCode::kFailedPrecondition) {
        ++conflicts;
      } else {
        failed = true;
        return;
      }
    }
    ++writers_done;
  };

  std::mutex seen_mu;
  std::set<uint64_t> seen_versions;  // guarded by seen_mu
  auto reader = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::string> ids;
    for (int i = 0; i < kTenants; ++i) ids.push_back("tenant-" + std::to_string(i));
    uint64_t last_version = 0;
    std::vector<DecisionRequest> batch(kTenants);
    std::vector<Decision> out(kTenants);
    for (bool first = true; (first || writers_done.load() < 2) && !failed; first = false) {
      const std::string target = "r" + std::to_string(rng() % kRegions);
      // Single decisions.
      const OwnedDecision d = engine->Decide(ids[rng() % kTenants], "personal", "store", target, kNow);
      const std::string expected = RegionFor(d.policy_version);
      if (d.policy_version < last_version || d.allow != (target == expected) ||
          (!d.allow && d.route_region != expected) || (d.allow && d.route_region != target)) {
        failed = true;
        ADD_FAILURE() << "torn decision at version " << d.policy_version << " for " << target;
        return;
      }
      last_version = d.policy_version;
      // A batch is answered against one snapshot, whose strings stay valid
      // while it is read, however many policies replace it meanwhile.
      for (int i = 0; i < kTenants; ++i) batch[i] = {ids[i], "personal", "store", target};
      const Engine::Read read = engine->Pin();
      read->DecideBatch(batch, kNow, out);
      for (const Decision& b : out) {
        const std::string region = RegionFor(b.policy_version);
        if (b.policy_version != out[0].policy_version || b.allow != out[0].allow ||
            b.allow != (target == region) || b.route_region != (b.allow ? target : region)) {
          failed = true;
          ADD_FAILURE() << "batch straddled versions or saw a torn policy";
          return;
        }
      }
      decisions += 1 + kTenants;
      {
        std::lock_guard<std::mutex> lock(seen_mu);
        seen_versions.insert(d.policy_version);
        seen_versions.insert(out[0].policy_version);
      }
      if (first) ++readers_started;
    }
  };

  std::vector<std::thread> threads;
  threads.emplace_back(writer, 0);
  threads.emplace_back(writer, 1);
  threads.emplace_back(reader, 1u);
  threads.emplace_back(reader, 2u);
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed.load());
  EXPECT_EQ(engine->version(), 1u + 2 * kUpdatesPerWriter);
  EXPECT_GT(decisions.load(), 0u);
  // The readers decided while the policy changed under them, not only
  // before the first and after the last change.
  EXPECT_GE(seen_versions.size(), 5u);
  // The final state holds the invariant too.
  const std::string final_region = RegionFor(engine->version());
  for (int i = 0; i < kTenants; ++i)
    EXPECT_TRUE(engine->Decide("tenant-" + std::to_string(i), "personal", "store", final_region, kNow).allow);
}

}  // namespace
}  // namespace geoledger::residency
