// Every policy change is audit-logged, through the real server and SIGKILL.
// Clients change tenants over persistent connections (each PUT flips a
// tenant's status, so each one is a change); geoledgerd is killed at a
// random moment and restarted on the same data dir, again and again. After
// every restart:
//   - every change answered 200 is in its tenant's history, with the
//     audit_index and policy version it was answered with;
//   - every history record names an entry for that tenant and version;
//   - every tenant entry in the log has its history record: no entry for a
//     change that was never stored;
//   - the engine decides by the stored status (suspended denies).
// The schedule comes from a fixed seed; the outcome does not depend on where
// exactly the kills land.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

constexpr int kRounds = 10;
constexpr uint32_t kSeed = 0x706f6c69;  // "poli"
constexpr uint64_t kPage = 1000;        // the server's page limit

std::string TenantBody(bool suspended) {
  return nlohmann::json{{"home_region", "eu-west-1"},
                        {"status", suspended ? "suspended" : "active"},
                        {"allowed_regions", {{"personal", {"eu-west-1"}}}}}
      .dump();
}

// A change the server answered 200 for.
struct Ack {
  std::string tenant;
  uint64_t audit_index;
  uint64_t version;
};

struct ClientResult {
  std::vector<Ack> acks;
  int failures_before_kill = 0;
  std::vector<std::string> unexpected;
};

// Flips tenant `tenant`'s status over one persistent connection until the
// server goes away.
void ChangeUntilKilled(uint16_t port, const std::string& token, const std::string& tenant, bool suspended,
                       const std::atomic<bool>& killed, ClientResult* out) {
  auto conn = std::make_unique<RawConnection>(port);
  while (true) {
    suspended = !suspended;
    RawResponse r;
    if (!conn->connected() || !conn->Send(RequestBytes("PUT", "/v1/tenants/" + tenant, token, TenantBody(suspended))) ||
        !conn->ReadResponse(&r, std::chrono::seconds(20))) {
      if (killed.load()) return;  // cut off by the kill: not acknowledged
      if (++out->failures_before_kill > 3) return;
      conn = std::make_unique<RawConnection>(port);
      suspended = !suspended;  // not answered: try the same change again
      continue;
    }
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 200 || !body.is_object() || !body.value("changed", false) || !body.contains("audit_index")) {
      out->unexpected.push_back(std::to_string(r.status) + " " + r.body);
      return;
    }
    out->acks.push_back({tenant, body["audit_index"].get<uint64_t>(), body["policy_version"].get<uint64_t>()});
  }
}

// The stored status of every client tenant, from the restarted server.
struct Recovered {
  uint64_t log_size = 0;
  size_t history_records = 0;
};

void Verify(TestServer& server, const std::string& admin, int round, const std::vector<std::string>& tenants,
            const std::vector<Ack>& acks, Recovered* out) {
  const std::string where = "round " + std::to_string(round) + ": ";
  // The log's tenant entries: index -> (tenant, policy version).
  RawResponse sized = server.Authed(admin, "GET", "/v1/audit/entries?start=0&end=0");
  ASSERT_EQ(sized.status, 200) << where << sized.body;
  const uint64_t size = nlohmann::json::parse(sized.body)["size"].get<uint64_t>();
  out->log_size = size;
  std::map<uint64_t, std::pair<std::string, std::string>> entries;
  for (uint64_t start = 0; start < size; start += kPage) {
    const uint64_t end = std::min(size, start + kPage);
    RawResponse page = server.Authed(
        admin, "GET", "/v1/audit/entries?start=" + std::to_string(start) + "&end=" + std::to_string(end));
    ASSERT_EQ(page.status, 200) << where << page.body;
    const nlohmann::json listed = nlohmann::json::parse(page.body);
    for (const auto& e : listed["entries"]) {
      const std::string resource = e.value("resource", "");
      const std::string action = e.value("action", "");
      if (resource.rfind("tenant/", 0) != 0 || (action != "tenant.created" && action != "tenant.updated")) continue;
      std::string version;
      if (e.contains("details") && e["details"].is_object()) version = e["details"].value("policy_version", "");
      entries[e["index"].get<uint64_t>()] = {resource.substr(7), version};
    }
  }
  // Each tenant's history against the log.
  std::map<uint64_t, std::string> history_indexes;
  for (const auto& tenant : tenants) {
    RawResponse h = server.Authed(admin, "GET", "/v1/tenants/" + tenant + "/history");
    ASSERT_EQ(h.status, 200) << where << h.body;
    auto changes = nlohmann::json::parse(h.body)["changes"];
    for (const auto& c : changes) {
      ASSERT_TRUE(c.contains("audit_index")) << where << tenant << ": history record without audit_index " << c.dump();
      const uint64_t index = c["audit_index"].get<uint64_t>();
      const uint64_t version = c["version"].get<uint64_t>();
      history_indexes[index] = tenant;
      auto it = entries.find(index);
      if (it == entries.end()) {
        ADD_FAILURE() << where << tenant << " v" << version << ": its audit_index " << index
                      << " is no tenant entry in the log (size " << size << ")";
      } else {
        EXPECT_EQ(it->second.first, tenant) << where << "entry " << index;
        EXPECT_EQ(it->second.second, std::to_string(version)) << where << "entry " << index;
      }
    }
    out->history_records += changes.size();
    // The engine decides by the last stored status.
    ASSERT_FALSE(changes.empty()) << where << tenant;
    bool suspended = false;
    for (const auto& f : changes.back()["changes"])
      if (f["field"] == "status") suspended = f["to"] == "suspended";
    RawResponse stored = server.Authed(admin, "GET", "/v1/tenants/" + tenant);
    ASSERT_EQ(stored.status, 200) << where << stored.body;
    EXPECT_EQ(nlohmann::json::parse(stored.body)["status"], suspended ? "suspended" : "active") << where << tenant;
    RawResponse decided = server.Authed(
        admin, "POST", "/v1/decisions",
        nlohmann::json{{"tenant", tenant}, {"category", "personal"}, {"operation", "store"}, {"region", "eu-west-1"}}
            .dump());
    ASSERT_EQ(decided.status, 200) << where << decided.body;
    EXPECT_EQ(nlohmann::json::parse(decided.body)["allow"], !suspended) << where << tenant << " " << decided.body;
  }
  // No entry for a change that is not stored.
  for (const auto& [index, entry] : entries)
    EXPECT_EQ(history_indexes.count(index), 1u)
        << where << "entry " << index << " records a change of " << entry.first << " to v" << entry.second
        << " that no history record has: the change is not stored";
  // Every acknowledged change is there.
  for (const Ack& a : acks)
    EXPECT_EQ(history_indexes[a.audit_index], a.tenant)
        << where << "acknowledged change of " << a.tenant << " to v" << a.version << " (entry " << a.audit_index
        << ") is missing from its history";
}

TEST(PolicyCrashTest, KillNineNeverLeavesAChangeWithoutItsEntryOrAnEntryWithoutItsChange) {
  DirGuard guard{MakeTempDir()};
  ASSERT_FALSE(guard.dir.empty());
  const std::string data_dir = guard.dir + "/data";
  auto server = TestServer::Start({}, data_dir);
  ASSERT_TRUE(server->started()) << server->log();
  const std::string admin = server->admin_token();
  ASSERT_EQ(server->Authed(admin, "PUT", "/v1/regions/eu-west-1", R"({"country":"IE","name":"Dublin"})").status, 201);
  const std::vector<std::string> tenants = {"crash-a", "crash-b", "crash-c"};
  for (const auto& t : tenants) ASSERT_EQ(server->Authed(admin, "PUT", "/v1/tenants/" + t, TenantBody(false)).status, 201);

  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> delay_dist(20, 200);
  std::vector<Ack> acks;
  for (int round = 0; round < kRounds; ++round) {
    // Each client starts from the status its tenant has now.
    std::vector<bool> suspended;
    for (const auto& t : tenants)
      suspended.push_back(nlohmann::json::parse(server->Authed(admin, "GET", "/v1/tenants/" + t).body)["status"] ==
                          "suspended");
    const int delay_ms = delay_dist(rng);
    std::atomic<bool> killed{false};
    std::vector<ClientResult> results(tenants.size());
    std::string death;
    {
      std::vector<std::jthread> clients;
      for (size_t t = 0; t < tenants.size(); ++t)
        clients.emplace_back(ChangeUntilKilled, server->port(), admin, tenants[t], static_cast<bool>(suspended[t]),
                             std::cref(killed), &results[t]);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      killed.store(true);
      death = KillNine(server->pid());
    }
    ASSERT_EQ(death, "SIGKILL") << "round " << round << "\n" << server->log();
    server.reset();  // reaps the zombie
    size_t round_acks = 0;
    for (size_t t = 0; t < tenants.size(); ++t) {
      EXPECT_EQ(results[t].failures_before_kill, 0) << "round " << round << " " << tenants[t];
      EXPECT_TRUE(results[t].unexpected.empty()) << "round " << round << " " << tenants[t] << ": "
                                                 << results[t].unexpected.front();
      round_acks += results[t].acks.size();
      acks.insert(acks.end(), results[t].acks.begin(), results[t].acks.end());
    }
    server = TestServer::Start({}, data_dir);
    ASSERT_TRUE(server->started()) << "round " << round << ": not ready after SIGKILL\n" << server->log();
    Recovered recovered;
    Verify(*server, admin, round, tenants, acks, &recovered);
    if (::testing::Test::HasFatalFailure()) return;
    std::printf("[ round %2d ] kill after %3d ms: %3zu changes acked; log %5llu, history records %zu\n", round,
                delay_ms, round_acks, static_cast<unsigned long long>(recovered.log_size), recovered.history_records);
  }
  EXPECT_GT(acks.size(), 0u);
}

}  // namespace
}  // namespace geoledger::testing
