// In-process residency decisions with 1,000,000 tenants loaded.
//
//   residency_bench [--benchmark_filter=...]
//
// Reports, besides Google Benchmark's mean time per decision:
//   - rss_mib / rss_delta_mib: process VmRSS after loading, and its growth
//     from before the load (/proc/self/status);
//   - p50_ns / p99_ns: per-decision latency from individually timed
//     decisions (steady_clock around each call; timer_ns is the cost of the
//     clock pair alone, included in the figures).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "audit/ledger.h"
#include "bench/bench_fs.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/kv_store.h"
#include "crypto/secret.h"
#include "crypto/signer.h"
#include "residency/bundle.h"
#include "residency/date.h"
#include "residency/engine.h"

namespace geoledger::residency {
namespace {

constexpr size_t kTenants = 1'000'000;

// A /proc/self/status figure ("VmRSS", "VmHWM") in MiB, or -1.
double StatusMib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;  // kB
  }
  return -1;
}
double VmRssMib() { return StatusMib("VmRSS"); }

// Resets VmHWM, the peak resident memory, to the current VmRSS.
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

std::string TenantId(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "tenant-%07zu", i);
  return buf;
}

struct World {
  std::unique_ptr<Engine> engine;
  std::vector<std::string> tenants;
  std::vector<std::string> regions = {"eu-west-1", "eu-central-1", "eu-south-1", "eu-north-1",
                                      "uk-1",      "jp-1",         "us-east-1",  "in-1"};
  double rss_before = 0, rss_after = 0, load_seconds = 0;
  int64_t now = static_cast<int64_t>(*ParseDate("2025-06-15")) * kSecondsPerDay + 43200;
};

// A mix of tenant shapes: pinned to one region, allowed in two, with an SCC
// for India, DPF-certified, and one in 50 suspended.
Tenant MakeTenant(size_t i, const World& w) {
  Tenant t;
  t.id = w.tenants[i];
  t.home_region = w.regions[i % 2];
  t.status = i % 50 == 0 ? TenantStatus::kSuspended : TenantStatus::kActive;
  switch (i % 4) {
    case 0:
      break;
    case 1:
      t.allowed_regions[Category::kPersonal] = {"eu-west-1", "eu-central-1"};
      break;
    case 2:
      t.allowed_regions[Category::kPersonal] = {"eu-central-1", "in-1"};
      t.allowed_regions[Category::kSpecial] = {"eu-central-1"};
      t.safeguards.push_back({"IN", Mechanism::kScc, "SCC-IN-" + std::to_string(i % 100),
                              *ParseDate("2024-01-01"), *ParseDate("2027-12-31")});
      break;
    case 3:
      t.allowed_regions[Category::kPersonal] = {"us-east-1"};
      t.certifications.push_back(Certification{.name = std::string(kCertificationDpf), .reference = {}});
      break;
  }
  return t;
}

World& TheWorld() {
  static World* w = [] {
    auto* world = new World();
    world->tenants.reserve(kTenants);
    for (size_t i = 0; i < kTenants; ++i) world->tenants.push_back(TenantId(i));
    world->rss_before = VmRssMib();
    const auto start = std::chrono::steady_clock::now();
    world->engine = std::move(Engine::Create({})).value();
    SnapshotBuilder b = world->engine->NewPolicy(1);
    const char* countries[] = {"IE", "DE", "IT", "SE", "GB", "JP", "US", "IN"};
    for (size_t r = 0; r < world->regions.size(); ++r)
      if (!b.PutRegion({world->regions[r], countries[r], world->regions[r]}).ok()) std::abort();
    for (size_t i = 0; i < kTenants; ++i)
      if (!b.PutTenant(MakeTenant(i, *world)).ok()) std::abort();
    if (!world->engine->Install(std::move(b).Build()).ok()) std::abort();
    world->load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    world->rss_after = VmRssMib();
    return world;
  }();
  return *w;
}

// Pre-generated requests so the loop measures the decision, not the RNG.
// The tenant ids are copied next to the requests, as a server has the id in
// its (cache-hot) request buffer rather than in a million-entry table.
struct Requests {
  std::vector<std::string> tenant_ids;
  std::vector<DecisionRequest> items;
};
const Requests& TheRequests() {
  static Requests* r = [] {
    World& w = TheWorld();
    auto* out = new Requests();
    std::mt19937_64 rng(42);
    const char* categories[] = {"personal", "special", "pseudonymised", "anonymous", "operational"};
    const char* operations[] = {"store", "process", "read", "replicate", "backup", "transfer",
                                "support_access"};
    out->tenant_ids.reserve(1 << 16);
    for (size_t i = 0; i < (1u << 16); ++i) out->tenant_ids.push_back(w.tenants[rng() % kTenants]);
    out->items.reserve(1 << 16);
    for (size_t i = 0; i < (1u << 16); ++i) {
      out->items.push_back({out->tenant_ids[i], categories[rng() % 5], operations[rng() % 7],
                            w.regions[rng() % w.regions.size()]});
    }
    return out;
  }();
  return *r;
}

void SetMemoryCounters(benchmark::State& state) {
  // kAvgThreads: multi-threaded runs report the value, not a per-thread sum.
  World& w = TheWorld();
  using C = benchmark::Counter;
  state.counters["tenants"] = C(static_cast<double>(w.engine->Current()->tenant_count()), C::kAvgThreads);
  state.counters["rss_mib"] = C(w.rss_after, C::kAvgThreads);
  state.counters["rss_delta_mib"] = C(w.rss_after - w.rss_before, C::kAvgThreads);
  state.counters["load_s"] = C(w.load_seconds, C::kAvgThreads);
}

void BM_Decide(benchmark::State& state) {
  World& w = TheWorld();
  const auto& reqs = TheRequests().items;
  size_t i = 0, allowed = 0;
  for (auto _ : state) {
    // As the server decides: one read per decision, the answer used within it.
    const Engine::Read read = w.engine->Pin();
    const Decision d = read->Decide(reqs[i & (reqs.size() - 1)], w.now);
    allowed += d.allow;
    benchmark::DoNotOptimize(d);
    ++i;
  }
  state.counters["allow_ratio"] = benchmark::Counter(
      static_cast<double>(allowed) / static_cast<double>(i ? i : 1), benchmark::Counter::kAvgThreads);
  SetMemoryCounters(state);
}
BENCHMARK(BM_Decide)->ThreadRange(1, 2)->UseRealTime();

void BM_DecideLatencySample(benchmark::State& state) {
  World& w = TheWorld();
  const auto& reqs = TheRequests().items;
  constexpr size_t kSamples = 1'000'000;
  std::vector<uint32_t> ns(kSamples);
  std::vector<uint32_t> timer(kSamples / 10);
  for (auto _ : state) {
    for (size_t i = 0; i < timer.size(); ++i) {
      const auto a = std::chrono::steady_clock::now();
      const auto b = std::chrono::steady_clock::now();
      timer[i] = static_cast<uint32_t>(std::chrono::nanoseconds(b - a).count());
    }
    for (size_t i = 0; i < kSamples; ++i) {
      const DecisionRequest& r = reqs[(i * 7919) & (reqs.size() - 1)];
      const auto a = std::chrono::steady_clock::now();
      {
        const Engine::Read read = w.engine->Pin();
        const Decision d = read->Decide(r, w.now);
        benchmark::DoNotOptimize(d);
      }
      const auto b = std::chrono::steady_clock::now();
      ns[i] = static_cast<uint32_t>(std::chrono::nanoseconds(b - a).count());
    }
  }
  auto pct = [](std::vector<uint32_t>& v, double p) {
    const size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
    return static_cast<double>(v[k]);
  };
  state.counters["p50_ns"] = pct(ns, 0.50);
  state.counters["p99_ns"] = pct(ns, 0.99);
  state.counters["p999_ns"] = pct(ns, 0.999);
  state.counters["timer_ns"] = pct(timer, 0.50);
  SetMemoryCounters(state);
}
BENCHMARK(BM_DecideLatencySample)->Iterations(1)->Unit(benchmark::kMillisecond);

// The cost of a policy change with 1M tenants loaded: one tenant edited,
// one shard and the shard table copied.
void BM_IncrementalTenantChange(benchmark::State& state) {
  World& w = TheWorld();
  size_t i = 0;
  for (auto _ : state) {
    SnapshotBuilder b = w.engine->EditCurrent();
    Tenant t = MakeTenant(i++ % kTenants, w);
    t.status = TenantStatus::kActive;
    if (!b.PutTenant(t).ok() || !w.engine->Install(std::move(b).Build()).ok()) std::abort();
  }
  SetMemoryCounters(state);
}
BENCHMARK(BM_IncrementalTenantChange)->Unit(benchmark::kMicrosecond);

// The first decision a thread makes after a full replacement of a
// 1M-tenant policy (an import), when that thread's cache held the replaced
// snapshot: it lets go of its reference, and must not be the one that frees
// a million tenants. A separate engine, so the world above is untouched.
void BM_FirstDecisionAfterAFullReplacement(benchmark::State& state) {
  World& w = TheWorld();
  auto engine = std::move(Engine::Create({})).value();
  uint64_t version = 0;
  auto install_full = [&] {
    SnapshotBuilder b = engine->NewPolicy(++version);
    const char* countries[] = {"IE", "DE", "IT", "SE", "GB", "JP", "US", "IN"};
    for (size_t r = 0; r < w.regions.size(); ++r)
      if (!b.PutRegion({w.regions[r], countries[r], w.regions[r]}).ok()) std::abort();
    for (size_t i = 0; i < kTenants; ++i)
      if (!b.PutTenant(MakeTenant(i, w)).ok()) std::abort();
    if (!engine->Install(std::move(b).Build()).ok()) std::abort();
  };
  install_full();
  for (auto _ : state) {
    state.PauseTiming();
    if (engine->Decide(w.tenants[1], "personal", "store", "eu-west-1", w.now).policy_version != version) std::abort();
    install_full();
    state.ResumeTiming();
    const OwnedDecision d = engine->Decide(w.tenants[1], "personal", "store", "eu-west-1", w.now);
    benchmark::DoNotOptimize(d);
    if (d.policy_version != version) std::abort();
  }
}
BENCHMARK(BM_FirstDecisionAfterAFullReplacement)->Unit(benchmark::kMillisecond)->Iterations(3);

// Verifying a signed bundle of the whole 1M-tenant policy (an import, or a
// start with a newer last-known-good file): base64, signature, parse, and
// the canonical rendering check.
const std::string& TheBundle(const crypto::Ed25519Signer& signer) {
  static std::string* bundle = [&signer] {
    World& w = TheWorld();
    PolicyDocument doc;
    doc.version = 2;
    const char* countries[] = {"IE", "DE", "IT", "SE", "GB", "JP", "US", "IN"};
    for (size_t r = 0; r < w.regions.size(); ++r) doc.regions.push_back({w.regions[r], countries[r], w.regions[r]});
    for (size_t i = 0; i < kTenants; ++i) doc.tenants.push_back(MakeTenant(i, w));
    return new std::string(SignBundle(doc, signer));
  }();
  return *bundle;
}
const crypto::Ed25519Signer& TheSigner() {
  static const crypto::Ed25519Signer* s =
      new crypto::Ed25519Signer(std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32))));
  return *s;
}

void BM_VerifyBundle(benchmark::State& state) {
  const std::string& bundle = TheBundle(TheSigner());
  const std::vector<std::string> trusted = {TheSigner().public_key()};
  for (auto _ : state) {
    auto doc = VerifyBundle(bundle, trusted, TheWorld().engine->jurisdictions());
    if (!doc.ok() || doc->tenants.size() != kTenants) std::abort();
  }
  state.counters["bundle_mib"] = static_cast<double>(bundle.size()) / (1 << 20);
}
BENCHMARK(BM_VerifyBundle)->Unit(benchmark::kMillisecond)->Iterations(2);

// What every start does with that bundle as its last-known-good file once
// the stored policy is as new (the usual restart): read the file, check the
// signature, read the stated version; the policy is not parsed.
void BM_StartWithANotNewerLastKnownGoodFile(benchmark::State& state) {
  const std::string& bundle = TheBundle(TheSigner());
  const std::vector<std::string> trusted = {TheSigner().public_key()};
  const std::string path = "/tmp/geoledger-residency-bench-" + std::to_string(::getpid()) + ".json";
  if (!WriteFileAtomically(path, bundle).ok()) std::abort();
  auto kv = NewMemoryKvStore();
  auto engine = std::move(Engine::Create({})).value();
  auto store = std::move(PolicyStore::Open(kv.get(), engine.get(), &SystemClock::Get())).value();
  AuditChange unaudited = [&kv](const ChangeRecord&, const ChangeWrites& writes) -> StatusOr<uint64_t> {
    KvBatch batch;
    writes(0, batch);
    GL_RETURN_IF_ERROR(kv->Write(batch, true));
    return 0;
  };
  PolicyDocument newer;
  newer.version = 3;  // the bundle's is 2
  if (!store->Replace("bench", newer, unaudited).ok()) std::abort();
  for (auto _ : state) {
    auto loaded = LoadLastKnownGood(*store, path, trusted, unaudited);
    if (!loaded.ok() || loaded->activated || !loaded->not_newer_unverified.ok()) std::abort();
  }
  std::remove(path.c_str());
}
BENCHMARK(BM_StartWithANotNewerLastKnownGoodFile)->Unit(benchmark::kMillisecond)->Iterations(3);

// What the runbook's route for a bundle too large to post costs: the
// 1M-tenant bundle as the last-known-good file of an instance whose store
// (RocksDB, in GEOLEDGER_BENCH_TMPDIR or TMPDIR or /tmp) holds an older
// policy. The start verifies it in full and writes it, with its history and
// its audit entry, in one synced write through a real ledger; then the store
// is opened again, as the next start does. Reports seconds and the peak
// growth of the process's resident memory during the activation.
void BM_StartActivatesAMillionTenantBundle(benchmark::State& state) {
  const std::string& bundle = TheBundle(TheSigner());
  const std::vector<std::string> trusted = {TheSigner().public_key()};
  const std::string dir = bench::BenchTmpBase() + "/geoledger-activation-bench-" + std::to_string(::getpid());
  const std::string lkg = dir + "/policy-bundle.json";
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    if (!WriteFileAtomically(lkg, bundle).ok()) std::abort();
    auto kv = std::move(OpenRocksDbKvStore(dir + "/db", KnownNamespaces())).value();
    audit::Ledger::Options options;
    options.region = "bench";
    auto ledger = std::move(audit::Ledger::Open(kv.get(), &TheSigner(), &SystemClock::Get(), options)).value();
    auto engine = std::move(Engine::Create({})).value();
    auto store = std::move(PolicyStore::Open(kv.get(), engine.get(), &SystemClock::Get())).value();
    const AuditChange audited = [&ledger](const ChangeRecord& change, const ChangeWrites& writes) -> StatusOr<uint64_t> {
      audit::AuditEvent e;
      e.actor = "geoledgerd";
      e.action = "policy.bundle.loaded";
      e.resource = "policy";
      e.outcome = "ok";
      e.details = {{"policy_version", std::to_string(change.version)}};
      GL_ASSIGN_OR_RETURN(auto indexes, ledger->Append({e}, writes));
      return indexes[0];
    };
    PolicyDocument older;
    older.version = 1;
    if (!store->Replace("bench", older, audited).ok()) std::abort();
    const double rss_before = VmRssMib();
    ResetPeakRss();
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    auto loaded = LoadLastKnownGood(*store, lkg, trusted, audited);
    if (!loaded.ok() || !loaded->activated) {
      std::fprintf(stderr, "activation failed: %s\n", loaded.ok() ? "not activated" : loaded.status().ToString().c_str());
      std::abort();
    }
    const double activate_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rss_peak_delta = StatusMib("VmHWM") - rss_before;
    state.PauseTiming();
    store.reset();
    engine = std::move(Engine::Create({})).value();
    const auto reopen_start = std::chrono::steady_clock::now();
    auto reopened = PolicyStore::Open(kv.get(), engine.get(), &SystemClock::Get());
    if (!reopened.ok() || engine->Current()->tenant_count() != kTenants) std::abort();
    state.counters["activate_s"] = activate_s;
    state.counters["reopen_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - reopen_start).count();
    state.counters["rss_delta_mib"] = rss_peak_delta;
    reopened->reset();
    ledger.reset();
    kv.reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_StartActivatesAMillionTenantBundle)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace geoledger::residency

BENCHMARK_MAIN();
