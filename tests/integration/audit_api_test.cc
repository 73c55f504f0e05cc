// The audit API through the real server: durable appends, signed checkpoints
// that verify with the published key, proofs that verify offline, audited
// token administration, and no subject id on disk.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/socket.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "audit/checkpoint.h"
#include "cli/audit_verify.h"
#include "audit/merkle.h"
#include "common/encoding.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

audit::Hash ToHash(const std::string& b64) { return *audit::HashFromBytes(*Base64Decode(b64)); }

class AuditApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestServer::Start();
    ASSERT_TRUE(server_->started()) << server_->log();
    writer_ = server_->CreateToken("app", {"audit:write"});
    reader_ = server_->CreateToken("auditor", {"audit:read"});
    ASSERT_FALSE(writer_.empty());
  }
  RawResponse Post(const nlohmann::json& body) {
    return server_->Authed(writer_, "POST", "/v1/audit/events", body.dump());
  }
  nlohmann::json Get(const std::string& path) {
    RawResponse r = server_->Authed(reader_, "GET", path);
    EXPECT_EQ(r.status, 200) << path << " " << r.body;
    return nlohmann::json::parse(r.body, nullptr, false);
  }
  std::unique_ptr<TestServer> server_;
  std::string writer_, reader_;
};

TEST_F(AuditApiTest, EventsAreIndexedAndTheCheckpointVerifiesWithThePublishedKey) {
  nlohmann::json events = nlohmann::json::array();
  for (int i = 0; i < 5; ++i)
    events.push_back({{"tenant", "acme"}, {"action", "record.read"}, {"resource", "orders/" + std::to_string(i)},
                      {"outcome", "allowed"}, {"subject", "alice@example.com"}, {"details", {{"n", std::to_string(i)}}}});
  RawResponse r = Post({{"events", events}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto indexes = nlohmann::json::parse(r.body)["indexes"];
  ASSERT_EQ(indexes.size(), 5u);
  // The bootstrap token and the two test tokens came first (indexes 0-2).
  EXPECT_EQ(indexes[0], 3);
  EXPECT_EQ(indexes[4], 7);

  RawResponse key = server_->Request("GET", "/v1/audit/public-key");
  ASSERT_EQ(key.status, 200);
  auto vk = audit::ParseVerifierKey(key.body);
  ASSERT_TRUE(vk.ok()) << key.body;
  // A checkpoint follows within the checkpoint interval (1 s); wait for it, bounded.
  StatusOr<audit::Checkpoint> cp = InvalidArgument("none yet");
  for (int attempt = 0; attempt < 200; ++attempt) {
    RawResponse note = server_->Authed(reader_, "GET", "/v1/audit/checkpoint");
    ASSERT_EQ(note.status, 200);
    cp = audit::OpenCheckpoint(note.body, "geoledger/eu-west-1", vk->public_key);
    ASSERT_TRUE(cp.ok()) << cp.status().ToString() << "\n" << note.body;
    if (cp->size == 8) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(cp->size, 8u);

  // Every entry's inclusion proof verifies against the signed root, offline.
  auto entries = Get("/v1/audit/entries?start=0&end=8")["entries"];
  ASSERT_EQ(entries.size(), 8u);
  audit::Hash root = *audit::HashFromBytes(cp->root_hash);
  for (uint64_t i = 0; i < 8; ++i) {
    auto proof = Get("/v1/audit/proof/inclusion?index=" + std::to_string(i) + "&tree_size=8");
    std::vector<audit::Hash> path;
    for (const auto& h : proof["proof"]) path.push_back(ToHash(h));
    EXPECT_EQ(proof["leaf_hash"], entries[i]["leaf_hash"]);
    EXPECT_TRUE(audit::VerifyInclusion(ToHash(proof["leaf_hash"]), i, 8, path, root).ok()) << i;
  }
  EXPECT_EQ(entries[3]["actor"], "app");
  EXPECT_EQ(entries[3]["action"], "record.read");
  EXPECT_EQ(entries[0]["action"], "token.created");
  EXPECT_EQ(entries[0]["details"]["bootstrap"], "true");
  // The subject id is replaced by a stable keyed pseudonym.
  EXPECT_EQ(entries[3]["subject_pseudonym"], entries[4]["subject_pseudonym"]);
  EXPECT_EQ(entries.dump().find("alice@example.com"), std::string::npos);
}

// `geoledger audit verify-inclusion` on the server's own answers: it hashes
// the entry it is given, so bytes edited on the way fail against a genuine
// proof.
TEST_F(AuditApiTest, InclusionVerifiesOfflineWithTheCliVerifierFromTheEntryItself) {
  ASSERT_EQ(Post({{"events", {{{"tenant", "acme"}, {"action", "record.read"}, {"resource", "orders/7"}, {"outcome", "allowed"}}}}}).status,
            200);
  std::string dir = server_->data_dir();
  std::string admin = server_->admin_token();
  ASSERT_EQ(server_->Terminate(), 0);  // the final checkpoint covers all 4 entries
  auto s = TestServer::Start({}, dir);
  ASSERT_TRUE(s->started()) << s->log();
  std::string work = MakeTempDir();
  DirGuard guard{work};
  auto save = [&](const std::string& name, const std::string& path) {
    RawResponse r = s->Authed(admin, "GET", path);
    EXPECT_EQ(r.status, 200) << path << " " << r.body;
    std::ofstream(work + "/" + name, std::ios::binary) << r.body;
    return r.body;
  };
  save("key.txt", "/v1/audit/public-key");
  save("checkpoint.txt", "/v1/audit/checkpoint");
  save("proof.json", "/v1/audit/proof/inclusion?index=3&tree_size=4");
  std::string page = save("entries.json", "/v1/audit/entries?start=0&end=4");
  auto run = [&](const std::string& entry_file, std::string* out) {
    std::FILE* o = std::tmpfile();
    std::FILE* e = std::tmpfile();
    int rc = cli::RunVerifyInclusion({work + "/proof.json", work + "/" + entry_file, work + "/checkpoint.txt",
                                      work + "/key.txt"},
                                     o, e);
    std::rewind(o);
    char buf[2048] = {0};
    size_t n = std::fread(buf, 1, sizeof buf - 1, o);
    *out = std::string(buf, n);
    std::fclose(o);
    std::fclose(e);
    return rc;
  };
  std::string out;
  EXPECT_EQ(run("entries.json", &out), 0);
  EXPECT_NE(out.find("OK: entry 3 is in the signed tree of size 4"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("resource":"orders/7")"), std::string::npos) << out;
  // The same answer with the entry's bytes edited (orders/7 -> orders/8).
  auto j = nlohmann::json::parse(page);
  std::string bytes = *Base64Decode(j["entries"][3]["entry"].get<std::string>());
  size_t at = bytes.find("orders/7");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 7] = '8';
  j["entries"][3]["entry"] = Base64Encode(bytes);
  j["entries"][3]["resource"] = "orders/8";
  std::ofstream(work + "/edited.json", std::ios::binary) << j.dump();
  EXPECT_EQ(run("edited.json", &out), 1);
  EXPECT_EQ(out.find("OK"), std::string::npos) << out;
}

// Entries of 64 large details render to ~170 KB each: a page of them stops
// at its byte budget, says where to go on, and the pages together hold every
// entry once.
TEST_F(AuditApiTest, LargeEntriesArePagedByBytesAndTheRestFollows) {
  nlohmann::json details = nlohmann::json::object();
  for (int d = 0; d < 64; ++d) details[std::string(118, 'k') + std::to_string(10 + d)] = std::string(1000, 'v');
  for (int request = 0; request < 3; ++request) {
    nlohmann::json events = nlohmann::json::array();
    for (int i = 0; i < 12; ++i)
      events.push_back({{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"}, {"details", details}});
    ASSERT_EQ(Post({{"events", events}}).status, 200);
  }
  const uint64_t size = 3 + 36;
  constexpr size_t kBudget = 4 * 1024 * 1024;
  std::vector<uint64_t> seen;
  uint64_t start = 0;
  int pages = 0;
  while (true) {
    RawResponse r = server_->Authed(reader_, "GET", "/v1/audit/entries?start=" + std::to_string(start) +
                                                        "&end=" + std::to_string(size));
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 200);
    auto page = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(page.is_object()) << r.body.substr(0, 200);
    ASSERT_FALSE(page["entries"].empty());
    EXPECT_EQ(page["size"], size);
    for (const auto& e : page["entries"]) seen.push_back(e["index"]);
    ++pages;
    if (!page["more"].get<bool>()) {
      EXPECT_FALSE(page.contains("next_start"));
      break;
    }
    // Past the budget by at most the last entry it took.
    EXPECT_GE(r.body.size(), kBudget);
    EXPECT_LT(r.body.size(), kBudget + page["entries"].back().dump().size() + 64);
    ASSERT_EQ(page["next_start"], seen.back() + 1);
    start = page["next_start"];
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 2);
  ASSERT_EQ(seen.size(), size);
  for (uint64_t i = 0; i < size; ++i) EXPECT_EQ(seen[i], i);
  // A page within the budget says so and names no next start.
  auto small = Get("/v1/audit/entries?start=0&end=3");
  EXPECT_EQ(small["more"], false);
  EXPECT_FALSE(small.contains("next_start"));
}

TEST_F(AuditApiTest, ConsistencyProofLinksTwoCheckpoints) {
  ASSERT_EQ(Post({{"events", {{{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"}}}}}).status, 200);
  auto vk = audit::ParseVerifierKey(server_->Request("GET", "/v1/audit/public-key").body);
  auto first = audit::OpenCheckpoint(server_->Authed(reader_, "GET", "/v1/audit/checkpoint").body,
                                     "geoledger/eu-west-1", vk->public_key);
  ASSERT_TRUE(first.ok());
  nlohmann::json many = nlohmann::json::array();
  for (int i = 0; i < 20; ++i) many.push_back({{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"}});
  ASSERT_EQ(Post({{"events", many}}).status, 200);
  // Sizes are whatever the server checkpointed; prove between them.
  auto second = audit::OpenCheckpoint(server_->Authed(reader_, "GET", "/v1/audit/checkpoint").body,
                                      "geoledger/eu-west-1", vk->public_key);
  ASSERT_TRUE(second.ok());
  ASSERT_GE(second->size, first->size);
  auto proof = Get("/v1/audit/proof/consistency?first=" + std::to_string(first->size) +
                   "&second=" + std::to_string(second->size));
  std::vector<audit::Hash> hashes;
  for (const auto& h : proof["proof"]) hashes.push_back(ToHash(h));
  EXPECT_TRUE(audit::VerifyConsistency(first->size, second->size, *audit::HashFromBytes(first->root_hash),
                                       *audit::HashFromBytes(second->root_hash), hashes)
                  .ok());
}

TEST_F(AuditApiTest, TokenAdministrationIsAudited) {
  RawResponse r = server_->Authed(server_->admin_token(), "POST", "/v1/admin/tokens",
                                  R"({"name":"svc","scopes":["decide"]})");
  ASSERT_EQ(r.status, 201);
  auto created = nlohmann::json::parse(r.body);
  ASSERT_TRUE(created.contains("audit_index"));
  uint64_t idx = created["audit_index"];
  auto entry = Get("/v1/audit/entries?start=" + std::to_string(idx) + "&end=" + std::to_string(idx + 1))["entries"][0];
  EXPECT_EQ(entry["action"], "token.created");
  EXPECT_EQ(entry["actor"], "bootstrap-admin");
  EXPECT_EQ(entry["resource"], "token/" + created["id"].get<std::string>());
  RawResponse revoked = server_->Authed(server_->admin_token(), "DELETE", "/v1/admin/tokens/" + created["id"].get<std::string>());
  ASSERT_EQ(revoked.status, 200);
  EXPECT_EQ(nlohmann::json::parse(revoked.body)["audit_index"], idx + 1);
}

// A writer that closes its sending side once its request is out (HTTP/1.1
// allows it; `nc -N` does it) still gets the acknowledgement of its durable
// append, which comes after the server has seen the end of its input;
// without it, it could not know the events were logged and would send them
// again.
TEST_F(AuditApiTest, AWriterThatHalfClosesStillGetsItsAcknowledgement) {
  const std::string body =
      nlohmann::json{{"events", {{{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"}}}}}.dump();
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("POST /v1/audit/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + writer_ +
                     "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + body));
  ASSERT_EQ(::shutdown(c.fd(), SHUT_WR), 0);
  RawResponse r;
  ASSERT_TRUE(c.ReadResponse(&r)) << "no acknowledgement";
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["indexes"], nlohmann::json::array({3}));
  EXPECT_TRUE(c.WaitForClose(std::chrono::seconds(10)));
  EXPECT_EQ(Get("/v1/audit/entries?start=0&end=0")["size"], 4);  // three token creations and this event
}

TEST_F(AuditApiTest, BadEventsGet400AndAppendNothing) {
  for (const char* body : {R"({})", R"({"events":[]})", R"({"events":[{"tenant":"acme"}]})",
                           R"({"events":[{"tenant":"a b","action":"x","resource":"r","outcome":"ok"}]})",
                           R"({"events":[{"tenant":"acme","action":"x","resource":"r","outcome":"ok","ssn":"1"}]})",
                           R"({"events":[{"tenant":"acme","action":"x","resource":"r","outcome":"ok","details":{"a":1}}]})",
                           R"({"events":[{"tenant":"acme","action":"x","resource":"r","outcome":"ok"},7]})"}) {
    RawResponse r = server_->Authed(writer_, "POST", "/v1/audit/events", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  EXPECT_EQ(Get("/v1/audit/entries?start=0&end=3")["size"], 3);  // only the three token creations
  EXPECT_EQ(server_->Authed(reader_, "GET", "/v1/audit/entries?start=0&end=99").status, 400);
  EXPECT_EQ(server_->Authed(reader_, "GET", "/v1/audit/entries?start=x&end=1").status, 400);
  EXPECT_EQ(server_->Authed(reader_, "GET", "/v1/audit/proof/inclusion?index=5&tree_size=3").status, 400);
  EXPECT_EQ(server_->Authed(writer_, "GET", "/v1/audit/checkpoint").status, 403);
}

TEST_F(AuditApiTest, LogSurvivesRestartAndShutdownSignsAFinalCheckpoint) {
  nlohmann::json events = nlohmann::json::array();
  for (int i = 0; i < 3; ++i)
    events.push_back({{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"},
                      {"subject", "bob-the-subject-42"}});
  ASSERT_EQ(Post({{"events", events}}).status, 200);
  std::string dir = server_->data_dir();
  std::string admin = server_->admin_token();
  ASSERT_EQ(server_->Terminate(), 0) << server_->log();
  std::string out;
  EXPECT_EQ(RunCommand({"grep", "-rqF", "-e", "bob-the-subject-42", dir}, &out), 1) << "subject id found on disk";
  auto again = TestServer::Start({}, dir);
  ASSERT_TRUE(again->started()) << again->log();
  RawResponse note = again->Authed(admin, "GET", "/v1/audit/checkpoint");
  auto vk = audit::ParseVerifierKey(again->Request("GET", "/v1/audit/public-key").body);
  auto cp = audit::OpenCheckpoint(note.body, "geoledger/eu-west-1", vk->public_key);
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(cp->size, 6u);
  RawResponse r = again->Authed(admin, "POST", "/v1/audit/events",
                                R"({"events":[{"tenant":"acme","action":"a","resource":"r","outcome":"ok"}]})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["indexes"][0], 6);
  RawResponse m = again->Request("GET", "/metrics");
  EXPECT_NE(m.body.find("geoledger_audit_entries 7"), std::string::npos);
}

TEST_F(AuditApiTest, ExportVerifiesOfflineWithTheCliVerifier) {
  nlohmann::json events = nlohmann::json::array();
  for (int i = 0; i < 10; ++i) events.push_back({{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"}});
  ASSERT_EQ(Post({{"events", events}}).status, 200);
  std::string dir = server_->data_dir();
  std::string admin = server_->admin_token();
  ASSERT_EQ(server_->Terminate(), 0);  // the final checkpoint covers all 13 entries
  auto s = TestServer::Start({}, dir);
  ASSERT_TRUE(s->started()) << s->log();
  std::string work = MakeTempDir();
  std::ofstream(work + "/key.txt") << s->Request("GET", "/v1/audit/public-key").body;
  auto verify = [&](const std::string& query, std::string* out) {
    RawResponse r = s->Authed(admin, "GET", "/v1/audit/export" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/octet-stream");
    std::ofstream(work + "/export.bin", std::ios::binary) << r.body;
    std::FILE* o = std::tmpfile();
    std::FILE* e = std::tmpfile();
    int rc = cli::RunAuditVerify({work + "/export.bin", work + "/key.txt", ""}, o, e);
    std::rewind(o);
    char buf[512] = {0};
    size_t n = std::fread(buf, 1, sizeof buf - 1, o);
    *out = std::string(buf, n);
    std::fclose(o);
    std::fclose(e);
    return rc;
  };
  std::string out;
  EXPECT_EQ(verify("", &out), 0);
  EXPECT_NE(out.find("OK: 13 entries verified; tree size 13"), std::string::npos) << out;
  EXPECT_EQ(verify("?start=5&end=13", &out), 0);
  EXPECT_NE(out.find("OK: 8 entries verified; tree size 13"), std::string::npos) << out;
  // An end that was never checkpointed cannot be verified, so it is refused.
  EXPECT_EQ(s->Authed(admin, "GET", "/v1/audit/export?end=7").status, 400);
  EXPECT_EQ(s->Authed(admin, "GET", "/v1/audit/export?start=20").status, 400);
  RemoveTree(work);
}

}  // namespace
}  // namespace geoledger::testing
