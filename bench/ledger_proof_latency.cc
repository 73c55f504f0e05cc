// Proof latency of the audit ledger at a large size.
//
//   ledger_proof_latency --dir DIR [--entries N] [--samples S] [--max-seconds T]
//
// DIR is laid out like a geoledgerd data directory: DIR/db (RocksDB),
// DIR/keys/audit-signing.key and DIR/keys/root.key (32 random bytes each,
// mode 0600), so `geoledgerd --data-dir DIR --region eu-west-1 --dev` can
// serve the same ledger. When DIR/db holds fewer than N entries, the tool
// appends ~300-byte entries until it holds N (resumable; an existing ledger
// of at least N entries is reused as is). Then it times, one call at a time
// on one thread, S calls of each of
//   inclusion@latest     Ledger::InclusionProof(random index, size)
//   inclusion@random     Ledger::InclusionProof(random index, random tree_size > index)
//   consistency@latest   Ledger::ConsistencyProof(random first, size)
//   consistency@random   Ledger::ConsistencyProof(random first, random second >= first)
// and prints p50/p90/p99/p99.9/max/mean of the individual wall-clock
// latencies, plus p50/p99 of each call's thread CPU time. Each
// kind stops early after T seconds. Some proofs of each kind are checked
// against RootAt (untimed) so a wrong answer cannot pass as a fast one.
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "audit/ledger.h"
#include "audit/merkle.h"
#include "common/clock.h"
#include "common/kv_store.h"
#include "crypto/hash.h"
#include "crypto/secret.h"
#include "crypto/signer.h"

namespace {

using geoledger::SystemClock;
using geoledger::audit::AuditEvent;
using geoledger::audit::Hash;
using geoledger::audit::Ledger;
namespace crypto = geoledger::crypto;
namespace audit = geoledger::audit;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "ledger_proof_latency: %s\n", msg.c_str());
  std::exit(1);
}

template <typename T>
T Must(geoledger::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what + ": " + v.status().ToString());
  return std::move(*v);
}

// Reads a 32-byte key file, creating it (mode 0600) with random bytes when absent.
std::string KeyFile(const std::string& path) {
  if (!fs::exists(path)) {
    std::string bytes = crypto::RandomBytes(32);
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary);
      out << bytes;
      if (!out) Die("cannot write " + tmp);
    }
    if (chmod(tmp.c_str(), 0600) != 0) Die("chmod " + tmp);
    fs::rename(tmp, path);
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() != 32) Die(path + " is not 32 bytes");
  return bytes;
}

AuditEvent Event(uint64_t n) {
  AuditEvent e;
  e.tenant = "acme-corp";
  e.actor = "bench";
  e.action = "record.read";
  e.resource = "customers/" + std::to_string(1'000'000 + n % 1'000'000);
  e.outcome = "allowed";
  e.subject_pseudonym = std::string(32, '\x5a');
  // Brings the serialized entry to ~300 bytes (about 305 at indexes near 10M).
  e.details["note"] = std::string(147, 'x');
  return e;
}

// CPU time of the calling thread: wall time minus this is time spent waiting
// (descheduled, page faults, I/O), which tells contention from work.
double ThreadCpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

struct Summary {
  std::string name;
  std::vector<double> us;      // wall time per call
  std::vector<double> cpu_us;  // thread CPU time per call
  uint64_t checked = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void Print(const Summary& s) {
  std::vector<double> v = s.us;
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  };
  double sum = 0;
  for (double x : v) sum += x;
  std::printf("%-20s %8zu %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8llu\n", s.name.c_str(), v.size(),
              pct(50), pct(90), pct(99), pct(99.9), v.back(), sum / static_cast<double>(v.size()),
              Percentile(s.cpu_us, 50), Percentile(s.cpu_us, 99), static_cast<unsigned long long>(s.checked));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  uint64_t target = 10'000'000;
  uint64_t samples = 100'000;
  double max_seconds = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--dir") dir = next();
    else if (a == "--entries") target = std::stoull(next());
    else if (a == "--samples") samples = std::stoull(next());
    else if (a == "--max-seconds") max_seconds = std::stod(next());
    else Die("unknown argument " + a);
  }
  if (dir.empty()) Die("--dir is required");
  if (target < 2) Die("--entries must be at least 2");

  fs::create_directories(dir + "/keys");
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
  fs::permissions(dir + "/keys", fs::perms::owner_all, fs::perm_options::replace);
  KeyFile(dir + "/keys/root.key");
  auto signer = Must(crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::CopyFrom(KeyFile(dir + "/keys/audit-signing.key"))),
                     "signer");
  fs::create_directories(dir + "/db");
  fs::permissions(dir + "/db", fs::perms::owner_all, fs::perm_options::replace);

  auto t_open = Clock::now();
  auto kv = Must(geoledger::OpenRocksDbKvStore(dir + "/db", geoledger::KnownNamespaces()), "open rocksdb");
  Ledger::Options o;
  o.region = "eu-west-1";
  auto ledger = Must(Ledger::Open(kv.get(), &signer, &SystemClock::Get(), o), "open ledger");
  std::printf("opened %s: %llu entries in %.2f s\n", dir.c_str(), static_cast<unsigned long long>(ledger->size()),
              std::chrono::duration<double>(Clock::now() - t_open).count());

  if (ledger->size() < target) {
    // Two appenders so the writer always finds the next full batch queued.
    const uint64_t start = ledger->size();
    auto t0 = Clock::now();
    std::atomic<uint64_t> next{start};
    std::atomic<bool> failed{false};
    auto appender = [&] {
      constexpr uint64_t kBatch = 8192;
      while (!failed) {
        uint64_t from = next.fetch_add(kBatch);
        if (from >= target) return;
        uint64_t to = std::min(target, from + kBatch);
        std::vector<AuditEvent> batch;
        batch.reserve(to - from);
        for (uint64_t n = from; n < to; ++n) batch.push_back(Event(n));
        auto r = ledger->Append(std::move(batch));
        if (!r.ok()) {
          std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
          failed = true;
        }
        if (to % (1u << 20) < kBatch) {
          double s = std::chrono::duration<double>(Clock::now() - t0).count();
          std::printf("  built %llu entries (%.0f/s)\n", static_cast<unsigned long long>(ledger->size()),
                      static_cast<double>(ledger->size() - start) / s);
          std::fflush(stdout);
        }
      }
    };
    std::thread a(appender), b(appender);
    a.join();
    b.join();
    if (failed) Die("building the ledger failed");
    std::printf("built %llu entries in %.1f s\n", static_cast<unsigned long long>(ledger->size()),
                std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const uint64_t size = ledger->size();
  {
    auto sample = Must(ledger->Entries(size / 2, size / 2 + 1000), "entries");
    double bytes = 0;
    for (const auto& e : sample) bytes += static_cast<double>(e.bytes.size());
    std::printf("ledger size %llu, mean entry %.1f bytes (1000 entries sampled)\n",
                static_cast<unsigned long long>(size), bytes / static_cast<double>(sample.size()));
  }

  std::mt19937_64 rng(20261123);
  auto uniform = [&](uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  constexpr uint64_t kCheckEvery = 997;

  auto run = [&](const std::string& name, const std::function<void(Summary&, bool check)>& one) {
    Summary s{name, {}, {}, 0};
    s.us.reserve(samples);
    s.cpu_us.reserve(samples);
    auto deadline = Clock::now() + std::chrono::duration<double>(max_seconds);
    for (uint64_t i = 0; i < samples; ++i) {
      one(s, i % kCheckEvery == 0);
      if ((i & 1023) == 0 && Clock::now() > deadline) break;
    }
    return s;
  };

  auto inclusion = [&](bool latest) {
    return [&, latest](Summary& s, bool check) {
      uint64_t tree_size = latest ? size : uniform(1, size);
      uint64_t index = uniform(0, tree_size - 1);
      double c0 = ThreadCpuMicros();
      auto t0 = Clock::now();
      auto proof = ledger->InclusionProof(index, tree_size);
      auto t1 = Clock::now();
      s.cpu_us.push_back(ThreadCpuMicros() - c0);
      if (!proof.ok()) Die("inclusion proof: " + proof.status().ToString());
      s.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      if (check) {
        auto leaf = Must(ledger->Entries(index, index + 1), "entry");
        auto root = Must(audit::HashFromBytes(Must(ledger->RootAt(tree_size), "root")), "root hash");
        std::vector<Hash> path;
        for (const auto& h : *proof) path.push_back(Must(audit::HashFromBytes(h), "proof hash"));
        auto st = audit::VerifyInclusion(audit::LeafHash(leaf[0].bytes), index, tree_size, path, root);
        if (!st.ok()) Die("inclusion proof does not verify: " + st.ToString());
        ++s.checked;
      }
    };
  };
  auto consistency = [&](bool latest) {
    return [&, latest](Summary& s, bool check) {
      uint64_t second = latest ? size : uniform(2, size);
      uint64_t first = uniform(1, second - 1);
      double c0 = ThreadCpuMicros();
      auto t0 = Clock::now();
      auto proof = ledger->ConsistencyProof(first, second);
      auto t1 = Clock::now();
      s.cpu_us.push_back(ThreadCpuMicros() - c0);
      if (!proof.ok()) Die("consistency proof: " + proof.status().ToString());
      s.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      if (check) {
        auto r1 = Must(audit::HashFromBytes(Must(ledger->RootAt(first), "root")), "root hash");
        auto r2 = Must(audit::HashFromBytes(Must(ledger->RootAt(second), "root")), "root hash");
        std::vector<Hash> path;
        for (const auto& h : *proof) path.push_back(Must(audit::HashFromBytes(h), "proof hash"));
        auto st = audit::VerifyConsistency(first, second, r1, r2, path);
        if (!st.ok()) Die("consistency proof does not verify: " + st.ToString());
        ++s.checked;
      }
    };
  };

  std::vector<Summary> results;
  results.push_back(run("inclusion@latest", inclusion(true)));
  results.push_back(run("inclusion@random", inclusion(false)));
  results.push_back(run("consistency@latest", consistency(true)));
  results.push_back(run("consistency@random", consistency(false)));

  std::printf("\nlatency per call in microseconds (one thread, sequential calls, tree of %llu entries)\n",
              static_cast<unsigned long long>(size));
  std::printf("%-20s %8s %9s %9s %9s %9s %9s %9s %9s %9s %8s\n", "kind", "calls", "p50", "p90", "p99", "p99.9", "max",
              "mean", "cpu p50", "cpu p99", "verified");
  for (const auto& s : results) Print(s);
  if (auto st = ledger->Close(); !st.ok()) Die("close: " + st.ToString());
  return 0;
}
