// Invariant 2 through the real server: an acknowledged audit append is
// durable. geoledgerd is killed with SIGKILL at a random moment while several
// clients append over persistent connections and a gateway asks for
// sync-audited decisions, then restarted on the same data dir, again and
// again. After every restart each append that was answered 200
// must be in the log with the resource it was sent with, each decision
// answered (allow or deny) at the index its answer named, with its id, the hash chain and
// the leaf hashes must hold, the signed checkpoint must verify with the
// published key and match the recomputed tree, and the checkpoint must never
// go backwards. Requests cut off by the kill were never acknowledged: they may
// or may not be in the log, but at most once.
//
// The schedule comes from a fixed seed; the outcome does not depend on where
// exactly the kills land.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "common/encoding.h"
#include "crypto/hash.h"
#include "tests/integration/residency_policy.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

constexpr int kRounds = 20;
constexpr uint32_t kSeed = 0x6c656467;  // "ledg"
constexpr int kMaxEventsPerRequest = 20;
constexpr uint64_t kPage = 1000;  // the server's page limit
// Every few rounds the test waits (bounded) for the restarted server to sign a
// checkpoint that covers everything it recovered, so the equality of the full
// recomputed root with a signed root is checked too, not only a prefix.
constexpr int kCheckpointCatchUpEvery = 4;

// An append the server answered 200 for.
struct Ack {
  uint64_t index;
  std::string resource;
  int round;
};

// What one client thread did in one round.
struct ClientResult {
  std::vector<Ack> acks;
  int requests_acked = 0;
  int failures_before_kill = 0;  // connection failures while the server was meant to be alive
  std::vector<std::string> unexpected;  // non-200 answers
};

// Appends batches of 1-20 events over one persistent connection until the
// server goes away. Each event's resource is unique: "w<thread>-r<round>-<n>".
void AppendUntilKilled(uint16_t port, const std::string& token, int round, int thread, const std::atomic<bool>& killed,
                       ClientResult* out) {
  std::mt19937 rng(kSeed ^ static_cast<uint32_t>(round * 131 + thread * 7 + 1));
  std::uniform_int_distribution<int> batch_size(1, kMaxEventsPerRequest);
  std::uniform_int_distribution<int> pause_ms(2, 10);
  auto conn = std::make_unique<RawConnection>(port);
  int n = 0;
  while (true) {
    if (!conn->connected()) {
      if (killed.load()) return;
      out->failures_before_kill++;
      if (out->failures_before_kill > 3) return;
      conn = std::make_unique<RawConnection>(port);
      continue;
    }
    const int count = batch_size(rng);
    std::vector<std::string> resources;
    nlohmann::json events = nlohmann::json::array();
    for (int k = 0; k < count; ++k) {
      resources.push_back("w" + std::to_string(thread) + "-r" + std::to_string(round) + "-" + std::to_string(n++));
      events.push_back({{"tenant", "acme"}, {"action", "record.read"}, {"resource", resources.back()},
                        {"outcome", "allowed"}});
    }
    RawResponse r;
    if (!conn->Send(RequestBytes("POST", "/v1/audit/events", token, nlohmann::json{{"events", events}}.dump())) ||
        !conn->ReadResponse(&r, std::chrono::seconds(20))) {
      // Cut off: not acknowledged. Expected once the kill has been sent.
      if (killed.load()) return;
      out->failures_before_kill++;
      if (out->failures_before_kill > 3) return;
      conn = std::make_unique<RawConnection>(port);
      continue;
    }
    if (r.status != 200) {
      out->unexpected.push_back(std::to_string(r.status) + " " + r.body);
      if (out->unexpected.size() > 3) return;
      continue;
    }
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("indexes") || !body["indexes"].is_array() ||
        body["indexes"].size() != resources.size()) {
      out->unexpected.push_back("200 with a malformed body: " + r.body);
      return;
    }
    for (size_t k = 0; k < resources.size(); ++k)
      out->acks.push_back({body["indexes"][k].get<uint64_t>(), resources[k], round});
    out->requests_acked++;
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
  }
}

// Asks for gateway checks over one persistent connection until the server
// goes away, as a gateway does: sync audit, so each answer (an allow or a
// deny) names the index of its durable entry. Recorded as acks whose
// resource is "decision:<decision id>".
void CheckUntilKilled(uint16_t port, const std::string& token, int round, const std::atomic<bool>& killed,
                      ClientResult* out) {
  std::mt19937 rng(kSeed ^ static_cast<uint32_t>(round * 131 + 997));
  std::uniform_int_distribution<int> pause_ms(1, 5);
  auto conn = std::make_unique<RawConnection>(port);
  for (int n = 0;; ++n) {
    if (!conn->connected()) {
      if (killed.load()) return;
      if (++out->failures_before_kill > 3) return;
      conn = std::make_unique<RawConnection>(port);
      continue;
    }
    const std::string region = n % 2 ? "eu-central-1" : "us-east-1";
    const std::string request =
        RequestBytes("GET", "/v1/gateway/check", token, "", GatewayHeaders("globex", "personal", "store", region));
    RawResponse r;
    if (!conn->Send(request) || !conn->ReadResponse(&r, std::chrono::seconds(20))) {
      if (killed.load()) return;
      if (++out->failures_before_kill > 3) return;
      conn = std::make_unique<RawConnection>(port);
      continue;
    }
    const int expected = n % 2 ? 200 : 403;
    const std::string index = r.Header("x-residency-audit-index"), id = r.Header("x-residency-decision-id");
    if (r.status != expected || index.empty() || id.empty()) {
      out->unexpected.push_back("gateway check: " + std::to_string(r.status) + " (expected " +
                                std::to_string(expected) + "), audit index '" + index + "'");
      if (out->unexpected.size() > 3) return;
      continue;
    }
    out->acks.push_back({std::stoull(index), "decision:" + id, round});
    out->requests_acked++;
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
  }
}

// What the previous verification saw; later rounds must extend it.
struct Seen {
  std::string verifier_key;
  uint64_t checkpoint_size = 0;
  std::vector<audit::Hash> leaves;  // leaf hashes of the whole log last time
};

struct RoundReport {
  uint64_t log_size = 0;
  uint64_t checkpoint_size = 0;
};

// Fetches and checks the whole log. Failures name the round and the index.
void VerifyLog(TestServer& server, const std::string& reader, int round, const std::vector<Ack>& acks, Seen* seen,
               RoundReport* report) {
  const std::string where = "round " + std::to_string(round) + ": ";
  RawResponse sized = server.Authed(reader, "GET", "/v1/audit/entries?start=0&end=0");
  ASSERT_EQ(sized.status, 200) << where << sized.body;
  const uint64_t size = nlohmann::json::parse(sized.body)["size"].get<uint64_t>();
  report->log_size = size;

  std::vector<std::string> bytes(size);
  std::vector<std::string> resources(size);
  std::vector<audit::Hash> leaves(size);
  int bad = 0;  // keep a broken log from flooding the output
  for (uint64_t start = 0; start < size; start += kPage) {
    const uint64_t end = std::min(size, start + kPage);
    const std::string path = "/v1/audit/entries?start=" + std::to_string(start) + "&end=" + std::to_string(end);
    RawResponse page = server.Authed(reader, "GET", path);
    ASSERT_EQ(page.status, 200) << where << path << " " << page.body;
    auto j = nlohmann::json::parse(page.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j["entries"].is_array()) << where << path;
    const auto& entries = j["entries"];
    ASSERT_EQ(entries.size(), end - start) << where << path;
    for (uint64_t i = start; i < end; ++i) {
      const auto& e = entries[i - start];
      ASSERT_EQ(e.value("index", UINT64_MAX), i) << where << "entry at position " << i << " carries another index";
      auto raw = Base64Decode(e.value("entry", ""));
      ASSERT_TRUE(raw.has_value() && !raw->empty()) << where << "index " << i << ": entry is not base64";
      bytes[i] = *raw;
      resources[i] = e.value("resource", "");
      // A decision is known by its id (its resource names only its tenant).
      if (e.value("action", "") == "residency.decision" && e.contains("details"))
        resources[i] = "decision:" + e["details"].value("decision_id", "");
      leaves[i] = audit::LeafHash(bytes[i]);
      auto leaf = Base64Decode(e.value("leaf_hash", ""));
      if (!leaf || *leaf != crypto::AsView(leaves[i])) {
        ADD_FAILURE() << where << "index " << i << ": leaf_hash is not SHA-256(0x00 || entry)";
        if (++bad > 10) return;
      }
      const std::string expected_prev =
          i == 0 ? std::string(crypto::kSha256Bytes, '\0') : std::string(crypto::AsView(crypto::Sha256(bytes[i - 1])));
      auto prev = Base64Decode(e.value("prev_entry_hash", ""));
      if (!prev || *prev != expected_prev) {
        ADD_FAILURE() << where << "index " << i << ": hash chain broken (prev_entry_hash is not SHA-256 of entry "
                      << (i == 0 ? std::string("-1: 32 zero bytes") : std::to_string(i - 1)) << ")";
        if (++bad > 10) return;
      }
    }
  }

  // Unacknowledged appends may be present, but nothing is ever written twice.
  std::unordered_map<std::string, uint64_t> first_at;
  for (uint64_t i = 0; i < size; ++i) {
    if (resources[i].empty() || resources[i][0] != 'w') continue;  // token administration entries
    auto [it, inserted] = first_at.emplace(resources[i], i);
    if (!inserted) {
      ADD_FAILURE() << where << "resource " << resources[i] << " is at index " << it->second << " and again at " << i;
      if (++bad > 10) return;
    }
  }

  // (1) Every acknowledged append, from this round and all earlier ones.
  for (const Ack& a : acks) {
    if (a.index >= size) {
      ADD_FAILURE() << where << "acknowledged index " << a.index << " (resource " << a.resource << ", acked in round "
                    << a.round << ") is missing: the log has only " << size << " entries";
    } else if (resources[a.index] != a.resource) {
      ADD_FAILURE() << where << "acknowledged index " << a.index << " (acked in round " << a.round
                    << ") should hold resource " << a.resource << " but holds '" << resources[a.index] << "'";
    } else {
      continue;
    }
    if (++bad > 10) return;
  }

  // What an earlier restart showed was on disk is still there, unchanged.
  ASSERT_GE(size, seen->leaves.size()) << where << "the log shrank from " << seen->leaves.size() << " to " << size;
  for (uint64_t i = 0; i < seen->leaves.size(); ++i) {
    if (seen->leaves[i] != leaves[i]) {
      ADD_FAILURE() << where << "index " << i << " changed since the previous restart";
      if (++bad > 10) return;
    }
  }

  // (4) The latest signed checkpoint verifies with the published key and
  // commits to a prefix of exactly this log.
  RawResponse key = server.Request("GET", "/v1/audit/public-key");
  ASSERT_EQ(key.status, 200) << where << key.body;
  auto vk = audit::ParseVerifierKey(key.body);
  ASSERT_TRUE(vk.ok()) << where << vk.status().ToString() << " " << key.body;
  if (seen->verifier_key.empty()) seen->verifier_key = key.body;
  EXPECT_EQ(key.body, seen->verifier_key) << where << "the published verifier key changed";
  RawResponse note = server.Authed(reader, "GET", "/v1/audit/checkpoint");
  ASSERT_EQ(note.status, 200) << where << note.body;
  auto cp = audit::OpenCheckpoint(note.body, vk->name, vk->public_key);
  ASSERT_TRUE(cp.ok()) << where << "checkpoint does not verify: " << cp.status().ToString() << "\n" << note.body;
  report->checkpoint_size = cp->size;
  ASSERT_LE(cp->size, size) << where << "checkpoint of size " << cp->size << " is ahead of the log (" << size << ")";
  const audit::Hash prefix_root = audit::RootFromLeafHashes(std::span<const audit::Hash>(leaves.data(), cp->size));
  EXPECT_EQ(cp->root_hash, crypto::AsView(prefix_root))
      << where << "the root of the first " << cp->size << " entries differs from the signed checkpoint's";
  if (cp->size == size) {
    EXPECT_EQ(cp->root_hash, crypto::AsView(audit::RootFromLeafHashes(leaves)))
        << where << "the root of the whole log (" << size << " entries) differs from the signed checkpoint's";
  }
  // (5) Signed checkpoints never go backwards.
  EXPECT_GE(cp->size, seen->checkpoint_size)
      << where << "checkpoint size went back from " << seen->checkpoint_size << " to " << cp->size;
  seen->checkpoint_size = std::max(seen->checkpoint_size, cp->size);
  seen->leaves = std::move(leaves);
}

// Waits (bounded) until the idle server has signed a checkpoint covering the
// whole log, and returns its size (0 on failure).
uint64_t WaitForFullCheckpoint(TestServer& server, const std::string& reader, uint64_t log_size,
                               const audit::VerifierKey& vk) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    RawResponse note = server.Authed(reader, "GET", "/v1/audit/checkpoint");
    if (note.status == 200) {
      auto cp = audit::OpenCheckpoint(note.body, vk.name, vk.public_key);
      if (cp.ok() && cp->size >= log_size) return cp->size;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

TEST(AuditCrashTest, KillNineNeverLosesAnAcknowledgedAppend) {
  const auto test_started = std::chrono::steady_clock::now();
  DirGuard guard{MakeTempDir()};
  ASSERT_FALSE(guard.dir.empty());
  const std::string data_dir = guard.dir + "/data";

  auto server = TestServer::Start({}, data_dir);
  ASSERT_TRUE(server->started()) << server->log();
  const std::string writer = server->CreateToken("crash-writer", {"audit:write"});
  const std::string reader = server->CreateToken("crash-reader", {"audit:read"});
  const std::string gateway = server->CreateToken("crash-gateway", {"decide"});
  ASSERT_FALSE(writer.empty());
  ASSERT_FALSE(reader.empty());
  ASSERT_FALSE(gateway.empty());
  LoadResidencyPolicy(*server);

  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> threads_dist(2, 4);
  std::uniform_int_distribution<int> delay_dist(5, 150);
  std::vector<Ack> acks;
  Seen seen;
  uint64_t total_acked = 0, total_decisions = 0;

  for (int round = 0; round < kRounds; ++round) {
    const auto round_started = std::chrono::steady_clock::now();
    const int threads = threads_dist(rng);
    const int delay_ms = delay_dist(rng);
    std::atomic<bool> killed{false};
    std::vector<ClientResult> results(threads + 1);  // the appenders, then the gateway
    std::string death;
    {
      std::vector<std::jthread> clients;
      for (int t = 0; t < threads; ++t)
        clients.emplace_back(AppendUntilKilled, server->port(), writer, round, t, std::cref(killed), &results[t]);
      clients.emplace_back(CheckUntilKilled, server->port(), gateway, round, std::cref(killed), &results[threads]);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      killed.store(true);  // before the signal: every failure after this may be the kill
      death = KillNine(server->pid());
    }  // clients see EOF/reset and stop; joined here
    ASSERT_EQ(death, "SIGKILL") << "round " << round << ": geoledgerd did not die by our SIGKILL\n" << server->log();
    server.reset();  // reaps the zombie

    uint64_t round_acked = 0;
    int round_requests = 0;
    for (int t = 0; t <= threads; ++t) {
      EXPECT_EQ(results[t].failures_before_kill, 0)
          << "round " << round << " thread " << t << ": connection failed while the server was alive";
      EXPECT_TRUE(results[t].unexpected.empty())
          << "round " << round << " thread " << t << ": " << results[t].unexpected.front();
      round_acked += results[t].acks.size();
      round_requests += results[t].requests_acked;
      acks.insert(acks.end(), results[t].acks.begin(), results[t].acks.end());
    }
    total_acked += round_acked;
    total_decisions += results[threads].acks.size();

    server = TestServer::Start({}, data_dir);
    ASSERT_TRUE(server->started()) << "round " << round << ": geoledgerd did not become ready after SIGKILL\n"
                                   << server->log();
    RawResponse ready = server->Request("GET", "/readyz");
    ASSERT_EQ(ready.status, 200) << "round " << round << ": " << ready.body;

    RoundReport report;
    VerifyLog(*server, reader, round, acks, &seen, &report);
    if (::testing::Test::HasFatalFailure()) return;

    if (round % kCheckpointCatchUpEvery == kCheckpointCatchUpEvery - 1) {
      auto vk = audit::ParseVerifierKey(seen.verifier_key);
      ASSERT_TRUE(vk.ok());
      uint64_t cp = WaitForFullCheckpoint(*server, reader, report.log_size, *vk);
      ASSERT_EQ(cp, report.log_size) << "round " << round
                                     << ": the restarted server never signed a checkpoint covering the recovered log";
      VerifyLog(*server, reader, round, acks, &seen, &report);  // now with full-root equality
      if (::testing::Test::HasFatalFailure()) return;
    }
    std::printf("[ round %2d ] %d appenders and a gateway, kill after %3d ms: %4llu entries acked in %3d requests; "
                "log %5llu, checkpoint %5llu; %lld ms\n",
                round, threads, delay_ms, static_cast<unsigned long long>(round_acked), round_requests,
                static_cast<unsigned long long>(report.log_size), static_cast<unsigned long long>(report.checkpoint_size),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - round_started)
                                           .count()));
  }

  // After all that, a graceful stop still signs a checkpoint over the whole log.
  ASSERT_EQ(server->Terminate(), 0) << server->log();
  server = TestServer::Start({}, data_dir);
  ASSERT_TRUE(server->started()) << server->log();
  RoundReport report;
  VerifyLog(*server, reader, kRounds, acks, &seen, &report);
  if (::testing::Test::HasFatalFailure()) return;
  EXPECT_EQ(report.checkpoint_size, report.log_size) << "after a clean shutdown the checkpoint must cover the log";
  EXPECT_GT(total_acked, total_decisions);
  EXPECT_GT(total_decisions, 0u);
  std::printf("[ total    ] %d kills, %llu events acknowledged, final log %llu, %lld ms\n", kRounds,
              static_cast<unsigned long long>(total_acked), static_cast<unsigned long long>(report.log_size),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - test_started)
                                         .count()));
}

}  // namespace
}  // namespace geoledger::testing
