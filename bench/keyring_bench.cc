// Key hierarchy benchmarks (Google Benchmark), each next to the raw libsodium
// primitive measured in the same run.
//
// Stores: "memory" is NewMemoryKvStore(); "rocksdb" is OpenRocksDbKvStore in a
// fresh directory on disk ($GEOLEDGER_BENCH_TMPDIR, else $TMPDIR, else /tmp),
// removed at exit. Each store gets one Keyring (region eu-west-1, tenant
// "acme") with kSubjects subjects whose data keys exist before any timing.
//
//   BM_IssueDataKey/<store>          Keyring::IssueDataKey on an existing
//       subject (round-robin over the pre-created subjects): the steady-state
//       wrap. Per call: read the subject key record, unwrap the subject key
//       under the (cached) tenant KEK, wrap a fresh 32-byte data key under
//       the subject key. items_per_second = wraps per second.
//   BM_UnwrapDataKey/<store>         Keyring::UnwrapDataKey of keys issued
//       before timing (one per subject). Per call: read and unwrap the
//       subject key, then open the wrapped data key.
//   BM_IssueDataKey_NewSubject/<store>   IssueDataKey where every call names a
//       new subject: the subject's data key is created and written with a
//       synced batch (first use), then the data key is wrapped.
//   BM_KeyringSeal/<store>, BM_KeyringOpen/<store>
//       Keyring::Seal / Keyring::Open of a 4 KiB record of an existing
//       subject; bytes_per_second counts plaintext bytes.
//   BM_AeadEncrypt/bytes:N, BM_AeadDecrypt/bytes:N
//       crypto::Aead on N-byte messages (32: a data key; 4096: a record) with
//       associated data of the size the keyring binds for that use.
//   BM_SodiumEncrypt/bytes:N, BM_SodiumDecrypt/bytes:N
//       raw crypto_aead_xchacha20poly1305_ietf_encrypt / _decrypt with the
//       same message and associated-data sizes, key in ordinary memory and the
//       nonce advanced with sodium_increment (no random draw): the primitive
//       alone.
//   BM_SodiumRandomNonce             randombytes_buf of one 24-byte nonce, and
//   BM_SecretBytesCycle              one SecretBytes(32) allocate + wipe + free
//       (sodium_malloc / sodium_free), for attributing the per-call overhead.
//
// After the run the binary prints "ratio ..." lines: each product operation's
// rate divided by its raw libsodium peer's rate from this same run.
#include <benchmark/benchmark.h>

#include <sodium.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "bench/bench_fs.h"
#include "common/kv_store.h"
#include "crypto/aead.h"
#include "crypto/keyring.h"
#include "crypto/secret.h"

namespace {

using geoledger::KvStore;
using geoledger::SystemClock;
namespace crypto = geoledger::crypto;
namespace fs = std::filesystem;

constexpr char kRegion[] = "eu-west-1";
constexpr char kTenant[] = "acme";
constexpr char kRecordId[] = "rec-000001";
constexpr size_t kSubjects = 1024;
constexpr size_t kRecordBytes = 4096;

// Associated-data sizes the keyring builds (crypto/internal/keyring_format.h):
// a label, then each field as be32(length) || bytes.
constexpr size_t kDataKeyAdBytes = (sizeof("geoledger/datakey/v1") - 1) + (4 + sizeof(kRegion) - 1) +
                                   (4 + sizeof(kTenant) - 1) + (4 + crypto::kPseudonymBytes) +
                                   (4 + crypto::kKeyIdBytes) + (4 + crypto::kKeyIdBytes);
constexpr size_t kRecordAdBytes = (sizeof("geoledger/record/v1") - 1) + (4 + sizeof(kRegion) - 1) +
                                  (4 + sizeof(kTenant) - 1) + (4 + crypto::kPseudonymBytes) +
                                  (4 + crypto::kKeyIdBytes) + (4 + 4) + (4 + sizeof(kRecordId) - 1);
size_t AdBytesFor(size_t message_bytes) { return message_bytes <= 64 ? kDataKeyAdBytes : kRecordAdBytes; }

using geoledger::bench::BenchTmpBase;
using geoledger::bench::FsTypeOf;

// A 32-byte pseudonym for subject number n (deterministic, distinct).
std::string Pseudonym(uint64_t n) {
  std::string p(crypto::kPseudonymBytes, '\x5a');
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return p;
}

enum StoreKind { kMemory = 0, kRocksDb = 1 };

struct KeyringFixture {
  std::string dir;  // RocksDB directory, empty for memory
  std::unique_ptr<KvStore> kv;
  std::unique_ptr<crypto::Keyring> keyring;
  std::vector<std::string> pseudonyms;  // existing subjects
  std::vector<std::string> wrapped;     // one issued data key per subject
  std::vector<std::string> records;     // one sealed 4 KiB record per subject
  std::atomic<uint64_t> next_new_subject{1ull << 40};
  double setup_seconds = 0;  // creating the kSubjects subject keys
};

std::mutex g_fixture_mu;
std::unique_ptr<KeyringFixture> g_fixtures[2];

const std::string& RecordPlaintext() {
  static const std::string p(kRecordBytes, 'r');
  return p;
}

// Creates the store's fixture on first use; nullptr (and a message) on error.
KeyringFixture* Fixture(StoreKind kind, std::string* error) {
  std::lock_guard<std::mutex> lock(g_fixture_mu);
  if (g_fixtures[kind]) return g_fixtures[kind].get();
  auto fx = std::make_unique<KeyringFixture>();
  if (kind == kMemory) {
    fx->kv = geoledger::NewMemoryKvStore();
  } else {
    std::string tmpl = BenchTmpBase() + "/geoledger-keyring-bench.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      *error = "mkdtemp failed under " + BenchTmpBase();
      return nullptr;
    }
    fx->dir = tmpl;
    auto kv = geoledger::OpenRocksDbKvStore(fx->dir + "/db", geoledger::KnownNamespaces());
    if (!kv.ok()) {
      *error = "OpenRocksDbKvStore: " + kv.status().ToString();
      return nullptr;
    }
    fx->kv = std::move(*kv);
  }
  crypto::KeyringOptions options;
  options.region = kRegion;
  auto keyring = crypto::Keyring::Open(fx->kv.get(), crypto::SecretBytes::Random(32), &SystemClock::Get(), options);
  if (!keyring.ok()) {
    *error = "Keyring::Open: " + keyring.status().ToString();
    return nullptr;
  }
  fx->keyring = std::move(*keyring);
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < kSubjects; ++i) {
    fx->pseudonyms.push_back(Pseudonym(i));
    auto created = fx->keyring->EnsureSubjectKey(kTenant, fx->pseudonyms.back());
    if (!created.ok()) {
      *error = "EnsureSubjectKey: " + created.status().ToString();
      return nullptr;
    }
  }
  fx->setup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& p : fx->pseudonyms) {
    auto issued = fx->keyring->IssueDataKey(kTenant, p);
    auto sealed = fx->keyring->Seal(kTenant, p, kRecordId, RecordPlaintext());
    if (!issued.ok() || !sealed.ok() || issued->subject_key_created || sealed->subject_key_created) {
      *error = "fixture: issuing or sealing under an existing subject failed";
      return nullptr;
    }
    fx->wrapped.push_back(std::move(issued->wrapped));
    fx->records.push_back(std::move(sealed->ciphertext));
  }
  g_fixtures[kind] = std::move(fx);
  return g_fixtures[kind].get();
}

void CleanupFixtures() {
  for (auto& fx : g_fixtures) {
    if (!fx) continue;
    std::string dir = fx->dir;
    fx.reset();
    if (!dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
}

#define FIXTURE_OR_SKIP(state, kind)                     \
  std::string fixture_error;                                \
  KeyringFixture* fx = Fixture(kind, &fixture_error);       \
  if (fx == nullptr) {                                      \
    (state).SkipWithError(fixture_error.c_str());           \
    return;                                                 \
  }

// ---- keyring: wrap / unwrap -------------------------------------------------

void BM_IssueDataKey(benchmark::State& state, StoreKind kind) {
  FIXTURE_OR_SKIP(state, kind);
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    auto issued = fx->keyring->IssueDataKey(kTenant, fx->pseudonyms[i++ % kSubjects]);
    if (!issued.ok() || issued->subject_key_created) {
      state.SkipWithError("IssueDataKey failed or created a subject key");
      break;
    }
    benchmark::DoNotOptimize(issued->wrapped.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(BM_IssueDataKey, memory, kMemory)->UseRealTime()->Unit(benchmark::kMicrosecond)->Threads(1)->Threads(2);
BENCHMARK_CAPTURE(BM_IssueDataKey, rocksdb, kRocksDb)->UseRealTime()->Unit(benchmark::kMicrosecond)->Threads(1)->Threads(2);

void BM_UnwrapDataKey(benchmark::State& state, StoreKind kind) {
  FIXTURE_OR_SKIP(state, kind);
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    size_t k = i++ % kSubjects;
    auto key = fx->keyring->UnwrapDataKey(kTenant, fx->pseudonyms[k], fx->wrapped[k]);
    if (!key.ok()) {
      state.SkipWithError(("UnwrapDataKey: " + key.status().ToString()).c_str());
      break;
    }
    benchmark::DoNotOptimize(key->key_id.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(BM_UnwrapDataKey, memory, kMemory)->UseRealTime()->Unit(benchmark::kMicrosecond)->Threads(1)->Threads(2);
BENCHMARK_CAPTURE(BM_UnwrapDataKey, rocksdb, kRocksDb)->UseRealTime()->Unit(benchmark::kMicrosecond)->Threads(1)->Threads(2);

void BM_IssueDataKey_NewSubject(benchmark::State& state, StoreKind kind) {
  FIXTURE_OR_SKIP(state, kind);
  for (auto _ : state) {
    std::string p = Pseudonym(fx->next_new_subject.fetch_add(1));
    auto issued = fx->keyring->IssueDataKey(kTenant, p);
    if (!issued.ok() || !issued->subject_key_created) {
      state.SkipWithError("IssueDataKey on a new subject failed or created no subject key");
      break;
    }
    benchmark::DoNotOptimize(issued->wrapped.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["setup_subjects_per_s"] = static_cast<double>(kSubjects) / fx->setup_seconds;
}
BENCHMARK_CAPTURE(BM_IssueDataKey_NewSubject, memory, kMemory)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_IssueDataKey_NewSubject, rocksdb, kRocksDb)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- keyring: 4 KiB records ----------------------------------------------------

void BM_KeyringSeal(benchmark::State& state, StoreKind kind) {
  FIXTURE_OR_SKIP(state, kind);
  size_t i = 0;
  for (auto _ : state) {
    auto sealed = fx->keyring->Seal(kTenant, fx->pseudonyms[i++ % kSubjects], kRecordId, RecordPlaintext());
    if (!sealed.ok() || sealed->subject_key_created) {
      state.SkipWithError("Seal failed or created a subject key");
      break;
    }
    benchmark::DoNotOptimize(sealed->ciphertext.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecordBytes));
}
BENCHMARK_CAPTURE(BM_KeyringSeal, memory, kMemory)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_KeyringSeal, rocksdb, kRocksDb)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_KeyringOpen(benchmark::State& state, StoreKind kind) {
  FIXTURE_OR_SKIP(state, kind);
  size_t i = 0;
  for (auto _ : state) {
    size_t k = i++ % kSubjects;
    auto plain = fx->keyring->Open(kTenant, fx->pseudonyms[k], kRecordId, fx->records[k]);
    if (!plain.ok() || plain->size() != kRecordBytes) {
      state.SkipWithError("Keyring::Open failed");
      break;
    }
    benchmark::DoNotOptimize(plain->data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecordBytes));
}
BENCHMARK_CAPTURE(BM_KeyringOpen, memory, kMemory)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_KeyringOpen, rocksdb, kRocksDb)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- crypto::Aead directly -------------------------------------------------------

crypto::Aead BenchAead() {
  auto aead = crypto::Aead::FromKey(crypto::SecretBytes::Random(crypto::kAeadKeyBytes));
  if (!aead.ok()) std::abort();
  return std::move(*aead);
}

void BM_AeadEncrypt(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const crypto::Aead aead = BenchAead();
  const std::string msg(n, 'm'), ad(AdBytesFor(n), 'a');
  for (auto _ : state) {
    auto sealed = aead.Encrypt(msg, ad);
    if (!sealed.ok()) {
      state.SkipWithError("Aead::Encrypt failed");
      break;
    }
    benchmark::DoNotOptimize(sealed->data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_AeadEncrypt)->ArgName("bytes")->Arg(32)->Arg(4096)->UseRealTime();

void BM_AeadDecrypt(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const crypto::Aead aead = BenchAead();
  const std::string msg(n, 'm'), ad(AdBytesFor(n), 'a');
  auto sealed = aead.Encrypt(msg, ad);
  if (!sealed.ok()) {
    state.SkipWithError("Aead::Encrypt failed");
    return;
  }
  for (auto _ : state) {
    auto plain = aead.Decrypt(*sealed, ad);
    if (!plain.ok()) {
      state.SkipWithError("Aead::Decrypt failed");
      break;
    }
    benchmark::DoNotOptimize(plain->data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_AeadDecrypt)->ArgName("bytes")->Arg(32)->Arg(4096)->UseRealTime();

// ---- raw libsodium ---------------------------------------------------------------

// Raw XChaCha20-Poly1305 with a fresh key and nonce, over a message and
// associated data of the sizes the product path uses: the ratios' peer.
struct RawAead {
  explicit RawAead(size_t n) : msg(n, 'm'), ad(AdBytesFor(n), 'a') {
    crypto_aead_xchacha20poly1305_ietf_keygen(key);
    randombytes_buf(nonce, sizeof nonce);
  }
  ~RawAead() { sodium_memzero(key, sizeof key); }
  RawAead(const RawAead&) = delete;
  RawAead& operator=(const RawAead&) = delete;

  void Encrypt(unsigned char* out, unsigned long long* out_len) const {
    crypto_aead_xchacha20poly1305_ietf_encrypt(out, out_len, Bytes(msg), msg.size(), Bytes(ad), ad.size(), nullptr,
                                               nonce, key);
  }
  bool Decrypt(unsigned char* out, unsigned long long* out_len, const unsigned char* sealed,
               unsigned long long sealed_len) const {
    return crypto_aead_xchacha20poly1305_ietf_decrypt(out, out_len, nullptr, sealed, sealed_len, Bytes(ad), ad.size(),
                                                      nonce, key) == 0;
  }
  static const unsigned char* Bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }

  unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
  unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  const std::string msg, ad;
};

void BM_SodiumEncrypt(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  RawAead raw(n);
  std::vector<unsigned char> out(n + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  for (auto _ : state) {
    unsigned long long out_len = 0;
    sodium_increment(raw.nonce, sizeof raw.nonce);
    raw.Encrypt(out.data(), &out_len);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_SodiumEncrypt)->ArgName("bytes")->Arg(32)->Arg(4096)->UseRealTime();

void BM_SodiumDecrypt(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  RawAead raw(n);
  std::vector<unsigned char> sealed(n + crypto_aead_xchacha20poly1305_ietf_ABYTES), plain(n);
  unsigned long long sealed_len = 0;
  raw.Encrypt(sealed.data(), &sealed_len);
  for (auto _ : state) {
    unsigned long long plain_len = 0;
    if (!raw.Decrypt(plain.data(), &plain_len, sealed.data(), sealed_len)) {
      state.SkipWithError("raw decrypt failed");
      break;
    }
    benchmark::DoNotOptimize(plain.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_SodiumDecrypt)->ArgName("bytes")->Arg(32)->Arg(4096)->UseRealTime();

void BM_SodiumRandomNonce(benchmark::State& state) {
  unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  for (auto _ : state) {
    randombytes_buf(nonce, sizeof nonce);
    benchmark::DoNotOptimize(nonce);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_SodiumRandomNonce)->UseRealTime();

void BM_SecretBytesCycle(benchmark::State& state) {
  for (auto _ : state) {
    crypto::SecretBytes s(crypto::kDataKeyBytes);
    benchmark::DoNotOptimize(s.size());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_SecretBytesCycle)->UseRealTime();

// ---- ratios ----------------------------------------------------------------------

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      for (const char* c : {"items_per_second", "bytes_per_second"}) {
        auto it = r.counters.find(c);
        if (it != r.counters.end()) rates_[r.benchmark_name()][c] = it->second.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintRatios() const {
    struct Pair {
      const char* product;
      const char* raw;
      bool bytes;  // compare MB/s, else operations/s
    };
    static const Pair kPairs[] = {
        {"BM_IssueDataKey/memory/real_time/threads:1", "BM_SodiumEncrypt/bytes:32/real_time", false},
        {"BM_IssueDataKey/rocksdb/real_time/threads:1", "BM_SodiumEncrypt/bytes:32/real_time", false},
        {"BM_IssueDataKey/memory/real_time/threads:2", "BM_SodiumEncrypt/bytes:32/real_time", false},
        {"BM_IssueDataKey/rocksdb/real_time/threads:2", "BM_SodiumEncrypt/bytes:32/real_time", false},
        {"BM_IssueDataKey_NewSubject/memory/real_time", "BM_SodiumEncrypt/bytes:32/real_time", false},
        {"BM_IssueDataKey_NewSubject/rocksdb/real_time", "BM_SodiumEncrypt/bytes:32/real_time", false},
        {"BM_UnwrapDataKey/memory/real_time/threads:1", "BM_SodiumDecrypt/bytes:32/real_time", false},
        {"BM_UnwrapDataKey/rocksdb/real_time/threads:1", "BM_SodiumDecrypt/bytes:32/real_time", false},
        {"BM_UnwrapDataKey/memory/real_time/threads:2", "BM_SodiumDecrypt/bytes:32/real_time", false},
        {"BM_UnwrapDataKey/rocksdb/real_time/threads:2", "BM_SodiumDecrypt/bytes:32/real_time", false},
        {"BM_AeadEncrypt/bytes:32/real_time", "BM_SodiumEncrypt/bytes:32/real_time", false},
        {"BM_AeadDecrypt/bytes:32/real_time", "BM_SodiumDecrypt/bytes:32/real_time", false},
        {"BM_KeyringSeal/memory/real_time", "BM_SodiumEncrypt/bytes:4096/real_time", true},
        {"BM_KeyringSeal/rocksdb/real_time", "BM_SodiumEncrypt/bytes:4096/real_time", true},
        {"BM_KeyringOpen/memory/real_time", "BM_SodiumDecrypt/bytes:4096/real_time", true},
        {"BM_KeyringOpen/rocksdb/real_time", "BM_SodiumDecrypt/bytes:4096/real_time", true},
        {"BM_AeadEncrypt/bytes:4096/real_time", "BM_SodiumEncrypt/bytes:4096/real_time", true},
        {"BM_AeadDecrypt/bytes:4096/real_time", "BM_SodiumDecrypt/bytes:4096/real_time", true},
    };
    std::printf("\nratios to raw libsodium (same run):\n");
    for (const auto& p : kPairs) {
      const char* metric = p.bytes ? "bytes_per_second" : "items_per_second";
      double a = Rate(p.product, metric), b = Rate(p.raw, metric);
      if (a <= 0 || b <= 0) continue;
      if (p.bytes)
        std::printf("ratio %-46s / %-38s = %.3f  (%.1f MB/s vs %.1f MB/s)\n", p.product, p.raw, a / b, a / 1e6, b / 1e6);
      else
        std::printf("ratio %-46s / %-38s = %.4f (%.0f ops/s vs %.0f ops/s)\n", p.product, p.raw, a / b, a, b);
    }
  }

 private:
  double Rate(const std::string& name, const char* metric) const {
    auto it = rates_.find(name);
    if (it == rates_.end()) return 0;
    auto m = it->second.find(metric);
    return m == it->second.end() ? 0 : m->second;
  }
  std::map<std::string, std::map<std::string, double>> rates_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  crypto::EnsureSodium();
  const std::string tmp = BenchTmpBase();
  benchmark::AddCustomContext("bench_tmpdir", tmp);
  benchmark::AddCustomContext("bench_tmpdir_fs", FsTypeOf(tmp));
  benchmark::AddCustomContext("subjects", std::to_string(kSubjects));
  benchmark::AddCustomContext("ad_bytes", "datakey " + std::to_string(kDataKeyAdBytes) + ", record " +
                                              std::to_string(kRecordAdBytes));
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  for (const auto& fx : g_fixtures)
    if (fx) std::printf("fixture: %s subjects created in %.3f s (%.0f/s, one synced write each)\n",
                        fx->dir.empty() ? "memory" : "rocksdb", fx->setup_seconds,
                        static_cast<double>(kSubjects) / fx->setup_seconds);
  CleanupFixtures();
  benchmark::Shutdown();
  return 0;
}
