// In-process audit ledger benchmarks (Google Benchmark).
//
//   BM_DurableAppend/events_per_call:E/real_time/threads:T
//       T threads call Ledger::Append with E events each, against a ledger
//       over RocksDB in a fresh directory (on disk: $GEOLEDGER_BENCH_TMPDIR,
//       else $TMPDIR, else /tmp). Append returns only once the batch is
//       synced, so items_per_second is durable appends per second. Each
//       serialized entry is ~300 bytes (counter entry_bytes, measured from
//       the stored entries after the run). events_per_commit is how many
//       events the writer group-committed per sync on average.
//
//   BM_AsyncDecisionAppend/linger_us:{0,2000}
//       one thread hands the ledger one event per call with AppendAsync,
//       Durability::kLazy, as the HTTP threads do for decisions audited in
//       async mode, paced at 50 events per millisecond, in blocks of 20,000
//       it waits to be durable; linger_us is Options::lazy_delay (0: every
//       append prompt). cpu_us_per_event is the process's CPU time per event:
//       what the ledger costs per decision at that rate.
//
//   BM_EntryEncoding/direct:{0,1}
//       the bytes of one ~300-byte entry (the event BM_DurableAppend appends):
//       0 fills a reused protobuf message and serializes it deterministically,
//       as the ledger's writer did; 1 is the writer's direct encoding
//       (audit/internal/entry_encoding.h), the same bytes.
//
//   BM_RocksDbLedgerPattern/key_order:{0,1}
//       the ledger's RocksDB write pattern alone (2048 entries + their
//       subtree hashes per synced batch), puts in the ledger's order vs.
//       sorted by key; items_per_second is entries per second.
//
//   BM_RocksDbSyncedWrite/wal_options:{0,1}
//       one synced RocksDB put per call, store options vs. recycled WAL files.
//
//   BM_VerifyExport_{Memory,File}
//       VerifyExport over an export of 100,000 ~300-byte entries (built once
//       with an in-memory ledger); items_per_second is entries verified per
//       second. _File reads it from a file with std::ifstream, as
//       `geoledger audit verify` does.
//   BM_Sha256_PerEntry      SHA-256 of each of the same 100,000 entries.
//       (crypto::Sha256, what the verifier calls).
//   BM_Sha256_PerEntry_EvpReused, BM_Sha256_PerEntry_Sodium
//       the same hashes through an EVP_MD fetched once and a reused
//       EVP_MD_CTX, and through libsodium: the raw speed of SHA-256 here.
//   BM_Sha256_Bulk          SHA-256 of all entry bytes as one message.
//   BM_ProtobufParse_PerEntry, BM_LeafAndChainHashes_PerEntry
//       the two halves of what VerifyExport does per entry, for attribution.
//
// After the run the binary prints "ratio verify/sha256 = ..." lines when both
// sides ran in this invocation.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <streambuf>
#include <thread>
#include <string>
#include <vector>

#include "audit/export.h"
#include "audit/internal/entry_encoding.h"
#include "audit/ledger.h"
#include "audit/merkle.h"
#include "common/clock.h"
#include "bench/bench_fs.h"
#include "common/kv_store.h"
#include "common/proto_util.h"
#include "crypto/hash.h"
#include "crypto/secret.h"
#include "crypto/signer.h"
#include "geoledger/v1/audit.pb.h"

#include <openssl/evp.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <sodium.h>

namespace {

using geoledger::KvStore;
using geoledger::SystemClock;
using geoledger::audit::AuditEvent;
using geoledger::audit::Ledger;
namespace crypto = geoledger::crypto;
namespace fs = std::filesystem;

constexpr size_t kTargetEntryBytes = 300;
constexpr char kRegion[] = "eu-west-1";

// The serialized size of an entry for `e` as the ledger builds it, with a
// mid-range index and a current timestamp.
size_t SerializedSize(const AuditEvent& e) {
  geoledger::v1::AuditEntry entry;
  entry.set_index(5'000'000);
  entry.set_timestamp_unix_ms(SystemClock::Get().UnixMillis());
  entry.set_region(kRegion);
  entry.set_tenant(e.tenant);
  entry.set_actor(e.actor);
  entry.set_action(e.action);
  entry.set_resource(e.resource);
  entry.set_outcome(e.outcome);
  entry.set_subject_pseudonym(e.subject_pseudonym);
  for (const auto& [k, v] : e.details) {
    auto* d = entry.add_details();
    d->set_key(k);
    d->set_value(v);
  }
  entry.set_prev_entry_hash(std::string(32, '\x01'));
  return entry.ByteSizeLong();
}

AuditEvent BaseEvent(uint64_t n) {
  AuditEvent e;
  e.tenant = "acme-corp";
  e.actor = "bench";
  e.action = "record.read";
  e.resource = "customers/" + std::to_string(1'000'000 + n % 1'000'000);
  e.outcome = "allowed";
  e.subject_pseudonym = std::string(32, '\x5a');  // an HMAC-SHA256 pseudonym's size
  return e;
}

// A details value long enough to bring the serialized entry to ~300 bytes.
const std::string& Padding() {
  static const std::string pad = [] {
    AuditEvent e = BaseEvent(0);
    e.details["note"] = "";
    size_t base = SerializedSize(e);
    return std::string(base < kTargetEntryBytes ? kTargetEntryBytes - base : 0, 'x');
  }();
  return pad;
}

AuditEvent Event(uint64_t n) {
  AuditEvent e = BaseEvent(n);
  e.details["note"] = Padding();
  return e;
}

using geoledger::bench::BenchTmpBase;
using geoledger::bench::FsTypeOf;

std::string MakeTempDir(const std::string& tag) {
  std::string tmpl = BenchTmpBase() + "/geoledger-" + tag + ".XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  return buf.data();
}

template <typename T>
T Must(geoledger::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "bench: %s: %s\n", what, v.status().ToString().c_str());
    std::abort();
  }
  return std::move(*v);
}

crypto::Ed25519Signer NewSigner() {
  return Must(crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32)), "signer");
}

// ---------------------------------------------------------------------------
// Durable appends over RocksDB.

struct AppendFixture {
  std::string dir;
  std::unique_ptr<KvStore> kv;
  std::optional<crypto::Ed25519Signer> signer;
  std::unique_ptr<Ledger> ledger;
};
AppendFixture* g_append = nullptr;  // set by thread 0 before the timed loop
std::atomic<uint64_t> g_failures{0};

void BM_DurableAppend(benchmark::State& state) {
  const size_t per_call = static_cast<size_t>(state.range(0));
  if (state.thread_index() == 0) {
    g_append = new AppendFixture;
    g_append->dir = MakeTempDir("append");
    g_append->kv = Must(geoledger::OpenRocksDbKvStore(g_append->dir, geoledger::KnownNamespaces()), "open rocksdb");
    g_append->signer.emplace(NewSigner());
    Ledger::Options o;
    o.region = kRegion;
    g_append->ledger = Must(Ledger::Open(g_append->kv.get(), &*g_append->signer, &SystemClock::Get(), o), "open ledger");
    g_failures = 0;
  }
  // Each thread reuses its own prepared batch; only the contents are copied per call.
  std::vector<AuditEvent> proto;
  for (size_t i = 0; i < per_call; ++i) proto.push_back(Event(state.thread_index() * 1000 + i));
  for (auto _ : state) {
    auto r = g_append->ledger->Append(proto);
    if (!r.ok()) g_failures.fetch_add(1, std::memory_order_relaxed);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * per_call));
  if (state.thread_index() == 0) {
    Ledger& l = *g_append->ledger;
    auto stats = l.Stats();
    uint64_t n = std::min<uint64_t>(l.size(), 2000);
    auto entries = Must(l.Entries(l.size() - n, l.size()), "read back entries");
    double bytes = 0;
    for (const auto& e : entries) bytes += static_cast<double>(e.bytes.size());
    state.counters["entry_bytes"] = n ? bytes / static_cast<double>(n) : 0;
    state.counters["events_per_commit"] = stats.batches ? static_cast<double>(stats.size) / stats.batches : 0;
    state.counters["failed_calls"] = static_cast<double>(g_failures.load());
    if (g_failures.load() != 0) state.SkipWithError("some Append calls failed");
    g_append->ledger->Close().IgnoreError();
    g_append->ledger.reset();
    g_append->kv.reset();
    std::error_code ec;
    fs::remove_all(g_append->dir, ec);
    delete g_append;
    g_append = nullptr;
  }
}
BENCHMARK(BM_DurableAppend)
    ->ArgName("events_per_call")
    ->Arg(1)
    ->Arg(32)
    ->Threads(1)
    ->Threads(8)
    ->Threads(64)
    ->UseRealTime();

// ---------------------------------------------------------------------------
// One entry's bytes: a protobuf message filled and serialized (the writer
// before) against the direct encoding (the writer now).

void BM_EntryEncoding(benchmark::State& state) {
  const AuditEvent e = Event(7);
  const std::string prev(32, '\x5a');
  geoledger::v1::AuditEntry message;
  uint64_t n = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    const uint64_t index = 100000 + n++ % 100000;  // same-length varints for both variants
    std::string out;
    if (state.range(0) == 0) {
      geoledger::audit::internal::FillEntryMessage(index, 1764547200123, "eu-west-1", e, prev, &message);
      out = geoledger::DeterministicSerialize(message);
    } else {
      geoledger::audit::internal::EncodeEntry(index, 1764547200123, "eu-west-1", e, prev, out);
    }
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.counters["entry_bytes"] = static_cast<double>(bytes);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_EntryEncoding)->ArgName("direct")->Arg(0)->Arg(1);

// ---------------------------------------------------------------------------
// Decisions audited in async mode: one producer (as an HTTP thread) hands the
// ledger one event per decision with AppendAsync and does not wait for it,
// at a steady 50 events per millisecond (sleeping in between), which is about
// the rate at which the gateway benchmark's HTTP threads submit them. Each
// iteration submits 20,000 events and waits until all are durable.
// linger_us is Options::lazy_delay: 0 makes every append prompt (written and
// synced as soon as possible, as before lazy appends existed); 2000 is the
// server's default for async decision audit. cpu_us_per_event is the
// process's CPU time (all threads) per event.
void BM_AsyncDecisionAppend(benchmark::State& state) {
  constexpr uint64_t kBlock = 20000, kPerTick = 50;
  AppendFixture f;
  f.dir = MakeTempDir("lazy");
  f.kv = Must(geoledger::OpenRocksDbKvStore(f.dir, geoledger::KnownNamespaces()), "open rocksdb");
  f.signer.emplace(NewSigner());
  Ledger::Options o;
  o.region = kRegion;
  o.lazy_delay = std::chrono::microseconds(state.range(0));
  f.ledger = Must(Ledger::Open(f.kv.get(), &*f.signer, &SystemClock::Get(), o), "open ledger");
  const AuditEvent proto = Event(1);
  std::mutex mu;
  std::condition_variable cv;
  uint64_t durable = 0, failed = 0, submitted = 0;
  auto done = [&](geoledger::StatusOr<std::vector<uint64_t>> r) {
    std::lock_guard<std::mutex> lock(mu);
    (r.ok() ? durable : failed) += 1;
    cv.notify_one();
  };
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
  };
  const double cpu_start = cpu_now();
  for (auto _ : state) {
    auto tick = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < kBlock; ++i) {
      std::vector<AuditEvent> one;
      one.push_back(proto);
      while (!f.ledger->AppendAsync(std::move(one), done, geoledger::audit::Durability::kLazy).ok()) {
        one.assign(1, proto);
        std::this_thread::yield();
      }
      ++submitted;
      if (submitted % kPerTick == 0) std::this_thread::sleep_until(tick += std::chrono::milliseconds(1));
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return durable + failed == submitted; });
  }
  state.SetItemsProcessed(static_cast<int64_t>(submitted));
  state.counters["cpu_us_per_event"] = submitted ? (cpu_now() - cpu_start) / static_cast<double>(submitted) : 0;
  auto stats = f.ledger->Stats();
  state.counters["events_per_commit"] = stats.batches ? static_cast<double>(stats.size) / stats.batches : 0;
  if (failed != 0) state.SkipWithError("some appends failed");
  f.ledger->Close().IgnoreError();
  f.ledger.reset();
  f.kv.reset();
  std::error_code ec;
  fs::remove_all(f.dir, ec);
}
BENCHMARK(BM_AsyncDecisionAppend)->ArgName("linger_us")->Arg(0)->Arg(2000)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// The ledger's storage pattern without the ledger: batches of 2048 ~300-byte
// entries plus the subtree hashes they complete, written with sync=true as
// Ledger::Commit writes them (key_order:0, entry and subtree keys
// interleaved) and with the same puts ordered by key (key_order:1: all entry
// keys, then the subtree keys sorted). Same bytes, same number of puts; only
// the order of the puts inside each batch differs.

std::string BigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

void BM_RocksDbLedgerPattern(benchmark::State& state) {
  const bool sorted = state.range(0) != 0;
  constexpr uint64_t kBatch = 2048;
  std::string dir = MakeTempDir("kvorder");
  auto kv = Must(geoledger::OpenRocksDbKvStore(dir, geoledger::KnownNamespaces()), "open rocksdb");
  const std::string value(300, 'v');
  geoledger::audit::Frontier frontier;
  uint64_t next = 0;
  for (auto _ : state) {
    geoledger::KvBatch batch;
    std::vector<std::pair<std::string, std::string>> subtrees;
    for (uint64_t i = 0; i < kBatch; ++i, ++next) {
      std::string bytes = value + BigEndian64(next);
      batch.Put("audit", "e" + BigEndian64(next), bytes);
      std::vector<geoledger::audit::Subtree> completed;
      frontier.Append(geoledger::audit::LeafHash(bytes), &completed).IgnoreError();
      for (const auto& t : completed) {
        std::string key = "t" + std::string(1, static_cast<char>(t.id.level)) + BigEndian64(t.id.index);
        std::string h(crypto::AsView(t.hash));
        if (sorted) subtrees.emplace_back(std::move(key), std::move(h));
        else batch.Put("audit", key, h);
      }
    }
    if (sorted) {
      std::sort(subtrees.begin(), subtrees.end());
      for (const auto& [k, v] : subtrees) batch.Put("audit", k, v);
    }
    batch.Put("audit", "head", BigEndian64(next));
    if (auto st = kv->Write(batch, /*sync=*/true); !st.ok()) {
      state.SkipWithError("write failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  kv.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}
BENCHMARK(BM_RocksDbLedgerPattern)->ArgName("key_order")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// One synced ~400-byte RocksDB write per call from one thread, with the
// store's options (wal_options:0, as OpenRocksDbKvStore opens it) and with
// recycled WAL files (wal_options:1, recycle_log_file_num = 4, so steady-state
// WAL writes overwrite already allocated blocks instead of growing a file).
// The latency floor of a single durable append on this disk.

void BM_RocksDbSyncedWrite(benchmark::State& state) {
  std::string dir = MakeTempDir("walsync");
  rocksdb::Options options;
  options.create_if_missing = true;
  if (state.range(0) == 1) options.recycle_log_file_num = 4;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, dir, &raw).ok()) {
    state.SkipWithError("open failed");
    return;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const std::string value(400, 'v');
  uint64_t i = 0;
  for (auto _ : state) {
    if (!db->Put(wo, BigEndian64(i++), value).ok()) {
      state.SkipWithError("put failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  db->Close().PermitUncheckedError();
  db.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}
BENCHMARK(BM_RocksDbSyncedWrite)->ArgName("wal_options")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------------------
// Offline verification of a 100,000-entry export.

constexpr uint64_t kExportEntries = 100'000;

struct ExportFixture {
  std::string export_bytes;
  std::string public_key;
  std::string origin;
  std::vector<std::string> entries;  // the entry bytes, in order
  std::string file_path;             // export written to disk
  std::string dir;
  ~ExportFixture() {
    if (!dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
};

const ExportFixture& Export() {
  // Destroyed at exit, which removes its temporary directory.
  static std::unique_ptr<ExportFixture> f = [] {
    auto fx = std::make_unique<ExportFixture>();
    auto kv = geoledger::NewMemoryKvStore();
    auto signer = NewSigner();
    Ledger::Options o;
    o.region = kRegion;
    auto ledger = Must(Ledger::Open(kv.get(), &signer, &SystemClock::Get(), o), "open ledger");
    for (uint64_t done = 0; done < kExportEntries;) {
      std::vector<AuditEvent> batch;
      for (uint64_t i = 0; i < 5000 && done + i < kExportEntries; ++i) batch.push_back(Event(done + i));
      done += batch.size();
      Must(ledger->Append(std::move(batch)), "append");
    }
    if (auto st = ledger->Close(); !st.ok()) {
      std::fprintf(stderr, "bench: close: %s\n", st.ToString().c_str());
      std::abort();
    }
    fx->export_bytes = Must(ledger->Export(0, kExportEntries), "export");
    for (auto& e : Must(ledger->Entries(0, kExportEntries), "entries")) fx->entries.push_back(std::move(e.bytes));
    fx->public_key = signer.public_key();
    fx->origin = ledger->origin();
    fx->dir = MakeTempDir("export");
    fx->file_path = fx->dir + "/audit.export";
    std::ofstream(fx->file_path, std::ios::binary) << fx->export_bytes;
    return fx;
  }();
  return *f;
}

// A read-only streambuf over existing bytes (no copy per iteration).
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(const std::string& s) {
    char* p = const_cast<char*>(s.data());
    setg(p, p, p + s.size());
  }
};

void ReportExportShape(benchmark::State& state, const ExportFixture& fx) {
  double bytes = 0;
  for (const auto& e : fx.entries) bytes += static_cast<double>(e.size());
  state.counters["entry_bytes"] = bytes / static_cast<double>(fx.entries.size());
  state.counters["entries"] = static_cast<double>(fx.entries.size());
}

void BM_VerifyExport_Memory(benchmark::State& state) {
  const ExportFixture& fx = Export();
  for (auto _ : state) {
    ViewBuf buf(fx.export_bytes);
    std::istream in(&buf);
    auto r = geoledger::audit::VerifyExport(in, fx.public_key, fx.origin);
    if (!r.ok() || r->entries_checked != kExportEntries) {
      state.SkipWithError("VerifyExport failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kExportEntries));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * fx.export_bytes.size()));
  ReportExportShape(state, fx);
}
BENCHMARK(BM_VerifyExport_Memory)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_VerifyExport_File(benchmark::State& state) {
  const ExportFixture& fx = Export();
  for (auto _ : state) {
    std::ifstream in(fx.file_path, std::ios::binary);
    auto r = geoledger::audit::VerifyExport(in, fx.public_key, fx.origin);
    if (!r.ok() || r->entries_checked != kExportEntries) {
      state.SkipWithError("VerifyExport failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kExportEntries));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * fx.export_bytes.size()));
  ReportExportShape(state, fx);
}
BENCHMARK(BM_VerifyExport_File)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Sha256_PerEntry(benchmark::State& state) {
  const ExportFixture& fx = Export();
  for (auto _ : state)
    for (const auto& e : fx.entries) benchmark::DoNotOptimize(crypto::Sha256(e));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fx.entries.size()));
  ReportExportShape(state, fx);
}
BENCHMARK(BM_Sha256_PerEntry)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Sha256_PerEntry_EvpReused(benchmark::State& state) {
  const ExportFixture& fx = Export();
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char out[32];
  for (auto _ : state)
    for (const auto& e : fx.entries) {
      EVP_DigestInit_ex2(ctx, md, nullptr);
      EVP_DigestUpdate(ctx, e.data(), e.size());
      EVP_DigestFinal_ex(ctx, out, nullptr);
      benchmark::DoNotOptimize(out);
    }
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fx.entries.size()));
}
BENCHMARK(BM_Sha256_PerEntry_EvpReused)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Sha256_PerEntry_Sodium(benchmark::State& state) {
  const ExportFixture& fx = Export();
  if (sodium_init() < 0) state.SkipWithError("sodium_init failed");
  unsigned char out[crypto_hash_sha256_BYTES];
  for (auto _ : state)
    for (const auto& e : fx.entries) {
      crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(e.data()), e.size());
      benchmark::DoNotOptimize(out);
    }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fx.entries.size()));
}
BENCHMARK(BM_Sha256_PerEntry_Sodium)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Sha256_Bulk(benchmark::State& state) {
  const ExportFixture& fx = Export();
  std::string all;
  for (const auto& e : fx.entries) all += e;
  for (auto _ : state) benchmark::DoNotOptimize(crypto::Sha256(all));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * all.size()));
}
BENCHMARK(BM_Sha256_Bulk)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ProtobufParse_PerEntry(benchmark::State& state) {
  const ExportFixture& fx = Export();
  geoledger::v1::AuditEntry entry;
  for (auto _ : state)
    for (const auto& e : fx.entries) benchmark::DoNotOptimize(entry.ParseFromString(e));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fx.entries.size()));
}
BENCHMARK(BM_ProtobufParse_PerEntry)->Unit(benchmark::kMillisecond)->UseRealTime();

// The hashing VerifyExport does per entry: the chain hash, the leaf hash and
// the frontier's node hashes.
void BM_LeafAndChainHashes_PerEntry(benchmark::State& state) {
  const ExportFixture& fx = Export();
  for (auto _ : state) {
    geoledger::audit::Frontier frontier;
    for (const auto& e : fx.entries) {
      benchmark::DoNotOptimize(crypto::Sha256(e));
      frontier.Append(geoledger::audit::LeafHash(e), nullptr).IgnoreError();
    }
    benchmark::DoNotOptimize(frontier.Root());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fx.entries.size()));
}
BENCHMARK(BM_LeafAndChainHashes_PerEntry)->Unit(benchmark::kMillisecond)->UseRealTime();

// Remembers items_per_second per benchmark name for the ratio lines.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) rates_[r.benchmark_name()] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void PrintRatios() const {
    for (const char* sha : {"BM_Sha256_PerEntry/real_time", "BM_Sha256_PerEntry_EvpReused/real_time",
                            "BM_Sha256_PerEntry_Sodium/real_time"}) {
      auto s = rates_.find(sha);
      if (s == rates_.end() || s->second <= 0) continue;
      for (const char* v : {"BM_VerifyExport_Memory/real_time", "BM_VerifyExport_File/real_time"}) {
        auto it = rates_.find(v);
        if (it == rates_.end()) continue;
        std::printf("ratio verify/sha256 = %.3f (%s %.0f entries/s; %s %.0f hashes/s)\n", it->second / s->second,
                    v, it->second, sha, s->second);
      }
    }
  }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::string tmp = BenchTmpBase();
  benchmark::AddCustomContext("bench_tmpdir", tmp);
  benchmark::AddCustomContext("bench_tmpdir_fs", FsTypeOf(tmp));
  benchmark::AddCustomContext("entry_padding_bytes", std::to_string(Padding().size()));
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
