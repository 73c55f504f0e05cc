// The key hierarchy through the real geoledgerd: data keys for other
// services, residency-gated issue, crypto-shredding, rotation with a
// background rewrap (also across a kill -9), audit entries without key
// material, and nothing in plaintext in the data dir.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "audit/export.h"
#include "common/encoding.h"
#include "common/kv_store.h"
#include "geoledger/v1/keys.pb.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

nlohmann::json Json(const RawResponse& r) { return nlohmann::json::parse(r.body, nullptr, false); }

class KeysApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestServer::Start();
    ASSERT_TRUE(server_->started()) << server_->log();
    admin_ = server_->admin_token();
    Put("/v1/regions/eu-west-1", {{"country", "IE"}, {"name", "Ireland"}});
    Put("/v1/regions/us-east-1", {{"country", "US"}, {"name", "Virginia"}});
    Put("/v1/tenants/acme", {{"home_region", "eu-west-1"}, {"status", "active"},
                             {"allowed_regions", {{"personal", {"eu-west-1"}}}}});
    Put("/v1/tenants/usonly", {{"home_region", "us-east-1"}, {"status", "active"},
                               {"allowed_regions", {{"personal", {"us-east-1"}}}}});
    keys_ = server_->CreateToken("keysvc", {"keys"});
    reader_ = server_->CreateToken("auditor", {"audit:read"});
    ASSERT_FALSE(keys_.empty());
  }
  void Put(const std::string& path, const nlohmann::json& body) {
    RawResponse r = server_->Authed(admin_, "PUT", path, body.dump());
    ASSERT_TRUE(r.status == 200 || r.status == 201) << path << " " << r.body;
  }
  RawResponse Post(const std::string& path, const nlohmann::json& body, const std::string& token = "") {
    return server_->Authed(token.empty() ? keys_ : token, "POST", path, body.dump());
  }
  RawResponse DataKey(const std::string& tenant, const std::string& subject) {
    return Post("/v1/keys/datakey", {{"tenant", tenant}, {"subject", subject}});
  }
  RawResponse Unwrap(const std::string& tenant, const std::string& subject, const std::string& wrapped) {
    return Post("/v1/keys/unwrap", {{"tenant", tenant}, {"subject", subject}, {"wrapped_key", wrapped}});
  }
  nlohmann::json Entry(uint64_t index) {
    RawResponse r = server_->Authed(reader_, "GET", "/v1/audit/entries?start=" + std::to_string(index) +
                                                        "&end=" + std::to_string(index + 1));
    EXPECT_EQ(r.status, 200) << r.body;
    return Json(r)["entries"][0];
  }
  std::unique_ptr<TestServer> server_;
  std::string admin_, keys_, reader_;
};

TEST_F(KeysApiTest, DataKeyUnwrapsAndIsAuditedWithoutKeyMaterial) {
  RawResponse r = DataKey("acme", "alice@example.com");
  ASSERT_EQ(r.status, 200) << r.body;
  auto issued = Json(r);
  auto plaintext = Base64Decode(issued["plaintext_key"].get<std::string>());
  ASSERT_TRUE(plaintext.has_value());
  EXPECT_EQ(plaintext->size(), 32u);
  EXPECT_EQ(issued["key_id"].get<std::string>().size(), 32u);
  RawResponse back = Unwrap("acme", "alice@example.com", issued["wrapped_key"]);
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(Json(back)["plaintext_key"], issued["plaintext_key"]);
  EXPECT_EQ(Json(back)["key_id"], issued["key_id"]);

  uint64_t index = issued["audit_index"];
  auto issued_entry = Entry(index), created_entry = Entry(index - 1);
  EXPECT_EQ(issued_entry["action"], "key.datakey.issued");
  EXPECT_EQ(created_entry["action"], "key.created");
  EXPECT_TRUE(issued_entry.contains("subject_pseudonym"));
  for (const auto& e : {issued_entry, created_entry}) {
    std::string text = e.dump();
    EXPECT_EQ(text.find("alice"), std::string::npos) << text;
    EXPECT_EQ(text.find(issued["plaintext_key"].get<std::string>()), std::string::npos) << text;
  }
  // Another subject, the wrong tenant binding: refused and audited.
  RawResponse wrong = Unwrap("acme", "bob@example.com", issued["wrapped_key"]);
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  EXPECT_EQ(Entry(Json(wrong)["audit_index"])["action"], "key.unwrap.refused");
}

TEST_F(KeysApiTest, RegionNotAllowedForPersonalDataIsRefusedAndAudited) {
  for (const char* tenant : {"usonly", "nosuchtenant"}) {
    RawResponse r = DataKey(tenant, "alice");
    EXPECT_EQ(r.status, 403) << r.body;
    auto doc = Json(r);
    EXPECT_EQ(doc["type"], "urn:geoledger:problem:forbidden");
    ASSERT_TRUE(doc.contains("audit_index")) << r.body;
    auto entry = Entry(doc["audit_index"]);
    EXPECT_EQ(entry["action"], "key.datakey.refused");
    EXPECT_EQ(entry["outcome"], "denied");
  }
  // Suspending a tenant stops its keys at once.
  RawResponse ok = DataKey("acme", "carol");
  ASSERT_EQ(ok.status, 200);
  Put("/v1/tenants/acme", {{"home_region", "eu-west-1"}, {"status", "suspended"},
                           {"allowed_regions", {{"personal", {"eu-west-1"}}}}});
  EXPECT_EQ(Unwrap("acme", "carol", Json(ok)["wrapped_key"]).status, 403);
}

TEST_F(KeysApiTest, AfterShreddingEveryPathSaysErased) {
  auto issued = Json(DataKey("acme", "dave"));
  RawResponse shred = Post("/v1/keys/shred", {{"tenant", "acme"}, {"subject", "dave"}});
  ASSERT_EQ(shred.status, 200) << shred.body;
  EXPECT_EQ(Entry(Json(shred)["audit_index"])["action"], "key.shredded");
  RawResponse after = Unwrap("acme", "dave", issued["wrapped_key"]);
  EXPECT_EQ(after.status, 410) << after.body;
  EXPECT_EQ(Json(after)["type"], "urn:geoledger:problem:erased");
  EXPECT_EQ(Entry(Json(after)["audit_index"])["outcome"], "erased");
  EXPECT_EQ(Post("/v1/keys/shred", {{"tenant", "acme"}, {"subject", "dave"}}).status, 404);
  // A new key for the same subject does not revive the old one.
  auto fresh = Json(DataKey("acme", "dave"));
  EXPECT_EQ(Unwrap("acme", "dave", issued["wrapped_key"]).status, 410);
  EXPECT_EQ(Unwrap("acme", "dave", fresh["wrapped_key"]).status, 200);
}

TEST_F(KeysApiTest, BadInputGetsA400AndChangesNothing) {
  EXPECT_EQ(Post("/v1/keys/datakey", {{"tenant", "acme"}}).status, 400);
  EXPECT_EQ(Post("/v1/keys/datakey", {{"tenant", "acme"}, {"subject", 7}}).status, 400);
  EXPECT_EQ(Post("/v1/keys/datakey", {{"tenant", "a/b"}, {"subject", "x"}}).status, 400);
  EXPECT_EQ(Post("/v1/keys/datakey", {{"tenant", "acme"}, {"subject", "x"}, {"extra", 1}}).status, 400);
  EXPECT_EQ(Unwrap("acme", "x", "not base64!").status, 400);
  EXPECT_EQ(Unwrap("acme", "x", "AAAA").status, 400);
  EXPECT_EQ(Post("/v1/tenants/acme/keys/retire", {{"min_decryption_version", -1}}).status, 400);
  EXPECT_EQ(server_->Authed(keys_, "GET", "/v1/tenants/acme/keys").status, 404);  // no key made yet
  std::string bound = server_->CreateToken("acme-only", {"keys"}, "acme");
  EXPECT_EQ(Post("/v1/keys/datakey", {{"tenant", "usonly"}, {"subject", "x"}}, bound).status, 403);
  EXPECT_EQ(Post("/v1/keys/datakey", {{"tenant", "acme"}, {"subject", "x"}}, bound).status, 200);
  std::string reader_only = server_->CreateToken("nokeys", {"audit:read"});
  EXPECT_EQ(Post("/v1/keys/datakey", {{"tenant", "acme"}, {"subject", "x"}}, reader_only).status, 403);
}

TEST_F(KeysApiTest, RotationRewrapsInTheBackgroundAndOldKeysStillUnwrap) {
  std::vector<nlohmann::json> issued;
  for (int i = 0; i < 5; ++i) issued.push_back(Json(DataKey("acme", "subject-" + std::to_string(i))));
  RawResponse rotated = Post("/v1/tenants/acme/keys/rotate", nlohmann::json::object());
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  EXPECT_EQ(Json(rotated)["version"], 2);
  EXPECT_EQ(Entry(Json(rotated)["audit_index"])["action"], "key.rotated");
  nlohmann::json info;
  for (int i = 0; i < 200; ++i) {  // bounded: the worker runs within a second
    info = Json(server_->Authed(keys_, "GET", "/v1/tenants/acme/keys"));
    if (!info["rewrap"]["active"].get<bool>()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(info["rewrap"]["active"].get<bool>()) << info.dump();
  EXPECT_EQ(info["rewrap"]["pending"], 0);
  EXPECT_EQ(info["rewrap"]["rewrapped"], 5);
  RawResponse retired = Post("/v1/tenants/acme/keys/retire", {{"min_decryption_version", 2}});
  ASSERT_EQ(retired.status, 200) << retired.body;
  EXPECT_EQ(Json(retired)["versions"], nlohmann::json::array({2}));
  const uint64_t retired_index = Json(retired)["audit_index"];
  auto retired_entry = Entry(retired_index);
  EXPECT_EQ(retired_entry["action"], "key.retired");
  EXPECT_EQ(retired_entry["details"]["min_decryption_version"], "2");
  // The finished rewrap is on record between the rotation and the retirement.
  int rewrapped_entries = 0;
  for (uint64_t i = Json(rotated)["audit_index"].get<uint64_t>() + 1; i < retired_index; ++i) {
    auto e = Entry(i);
    if (e["action"] != "key.rewrapped") continue;
    ++rewrapped_entries;
    EXPECT_EQ(e["details"]["version"], "2");
    EXPECT_EQ(e["details"]["rewrapped"], "5");
  }
  EXPECT_EQ(rewrapped_entries, 1);
  // Retired already: nothing changes, and nothing is audited.
  RawResponse again = Post("/v1/tenants/acme/keys/retire", {{"min_decryption_version", 2}});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_FALSE(Json(again).contains("audit_index")) << again.body;
  for (int i = 0; i < 5; ++i) {
    RawResponse r = Unwrap("acme", "subject-" + std::to_string(i), issued[i]["wrapped_key"]);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["plaintext_key"], issued[i]["plaintext_key"]);
  }
  RawResponse metrics = server_->Request("GET", "/metrics");
  EXPECT_NE(metrics.body.find("geoledger_keys_rewrapped_total 5"), std::string::npos);
}

TEST_F(KeysApiTest, RewrapInterruptedByKillNineResumesAndLosesNothing) {
  std::vector<nlohmann::json> issued;
  for (int i = 0; i < 300; ++i) {
    issued.push_back(Json(DataKey("acme", "s" + std::to_string(i))));
    ASSERT_TRUE(issued.back().contains("wrapped_key"));
  }
  ASSERT_EQ(Post("/v1/tenants/acme/keys/rotate", nlohmann::json::object()).status, 200);
  ::kill(server_->pid(), SIGKILL);  // somewhere in the rewrap (batches of 256)
  ::waitpid(server_->pid(), nullptr, 0);
  auto again = TestServer::Start({}, server_->data_dir());
  ASSERT_TRUE(again->started()) << again->log();
  nlohmann::json info;
  for (int i = 0; i < 200; ++i) {
    info = Json(again->Authed(keys_, "GET", "/v1/tenants/acme/keys"));
    if (!info["rewrap"]["active"].get<bool>()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(info["rewrap"]["active"].get<bool>()) << info.dump();
  EXPECT_EQ(info["rewrap"]["pending"], 0);
  EXPECT_EQ(info["subject_keys"], 300);
  for (int i = 0; i < 300; i += 7) {
    RawResponse r = again->Authed(keys_, "POST", "/v1/keys/unwrap",
                                  nlohmann::json{{"tenant", "acme"}, {"subject", "s" + std::to_string(i)},
                                                 {"wrapped_key", issued[i]["wrapped_key"]}}.dump());
    ASSERT_EQ(r.status, 200) << i << " " << r.body;
    EXPECT_EQ(Json(r)["plaintext_key"], issued[i]["plaintext_key"]);
  }
  EXPECT_EQ(again->Terminate(), 0);
}

TEST_F(KeysApiTest, PersonalDetailsAreSealedAndShreddingErasesThemWhileTheLogVerifies) {
  std::string writer = server_->CreateToken("app", {"audit:write"});
  std::string dsar = server_->CreateToken("privacy-desk", {"dsar"});
  nlohmann::json event = {{"tenant", "acme"}, {"action", "order.shipped"}, {"resource", "orders/1"},
                          {"outcome", "ok"}, {"subject", "erin"},
                          {"personal", {{"email", "erin@example.com"}, {"address", "1 Main St"}}}};
  RawResponse r = Post("/v1/audit/events", {{"events", {event}}}, writer);
  ASSERT_EQ(r.status, 200) << r.body;
  uint64_t index = Json(r)["indexes"][0];
  auto entry = Entry(index);
  EXPECT_TRUE(entry.contains("sealed_key_id")) << entry.dump();
  EXPECT_EQ(entry.dump().find("erin@example.com"), std::string::npos);
  EXPECT_EQ(Entry(index - 1)["action"], "key.created");  // the subject's key was made for this
  RawResponse personal = server_->Authed(dsar, "GET", "/v1/audit/entries/" + std::to_string(index) + "/personal");
  ASSERT_EQ(personal.status, 200) << personal.body;
  EXPECT_EQ(Json(personal)["personal"]["email"], "erin@example.com");
  EXPECT_EQ(server_->Authed(reader_, "GET", "/v1/audit/entries/" + std::to_string(index) + "/personal").status, 403);

  ASSERT_EQ(Post("/v1/keys/shred", {{"tenant", "acme"}, {"subject", "erin"}}).status, 200);
  RawResponse erased = server_->Authed(dsar, "GET", "/v1/audit/entries/" + std::to_string(index) + "/personal");
  EXPECT_EQ(erased.status, 410) << erased.body;
  // The log still verifies end to end, from an export taken after the erasure.
  std::string dir = server_->data_dir();
  ASSERT_EQ(server_->Terminate(), 0);  // final checkpoint
  auto again = TestServer::Start({}, dir);
  ASSERT_TRUE(again->started());
  RawResponse exported = again->Authed(admin_, "GET", "/v1/audit/export");
  ASSERT_EQ(exported.status, 200) << exported.body;
  std::ifstream key_file(dir + "/audit-public.key.bin", std::ios::binary);
  std::string public_key((std::istreambuf_iterator<char>(key_file)), std::istreambuf_iterator<char>());
  std::istringstream in(exported.body);
  auto verified = audit::VerifyExport(in, public_key, "geoledger/eu-west-1");
  EXPECT_TRUE(verified.ok()) << verified.status().ToString();
  ASSERT_EQ(again->Terminate(), 0);
  EXPECT_TRUE(FilesContaining(dir, "erin@example.com").empty());
}

TEST_F(KeysApiTest, PersonalDetailsAreRefusedWhereTheTenantsDataMayNotLive) {
  std::string writer = server_->CreateToken("app", {"audit:write"});
  uint64_t size = Json(server_->Authed(reader_, "GET", "/v1/audit/entries?start=0&end=0"))["size"];
  nlohmann::json event = {{"tenant", "usonly"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"},
                          {"subject", "frank"}, {"personal", {{"email", "frank@example.com"}}}};
  EXPECT_EQ(Post("/v1/audit/events", {{"events", {event}}}, writer).status, 403);
  event["tenant"] = "acme";
  event.erase("subject");
  EXPECT_EQ(Post("/v1/audit/events", {{"events", {event}}}, writer).status, 400);
  event["subject"] = "frank";
  event["personal"] = "not an object";
  EXPECT_EQ(Post("/v1/audit/events", {{"events", {event}}}, writer).status, 400);
  // The record id that binds the sealed details is the service's own.
  event["personal"] = {{"email", "frank@example.com"}};
  event["details"] = {{"sealed_record_id", "audit/forged"}};
  EXPECT_EQ(Post("/v1/audit/events", {{"events", {event}}}, writer).status, 400);
  EXPECT_EQ(Json(server_->Authed(reader_, "GET", "/v1/audit/entries?start=0&end=0"))["size"], size);
}

TEST_F(KeysApiTest, ARefusedRequestMakesNoSubjectKey) {
  // The first event would make a key for a new subject; the second is bad, so
  // the request is refused and must change nothing: the key is made (and its
  // key.created entry written) only by the next accepted request.
  std::string writer = server_->CreateToken("app", {"audit:write"});
  uint64_t size = Json(server_->Authed(reader_, "GET", "/v1/audit/entries?start=0&end=0"))["size"];
  nlohmann::json sealed = {{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"},
                           {"subject", "grace"}, {"personal", {{"email", "grace@example.com"}}}};
  nlohmann::json bad = {{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}};  // no outcome
  EXPECT_EQ(Post("/v1/audit/events", {{"events", {sealed, bad}}}, writer).status, 400);
  // Personal details of a tenant whose data may not live in this region.
  nlohmann::json elsewhere = {{"tenant", "usonly"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"},
                              {"subject", "heidi"}, {"personal", {{"email", "heidi@example.com"}}}};
  EXPECT_EQ(Post("/v1/audit/events", {{"events", {sealed, elsewhere}}}, writer).status, 403);
  // 64 details of its own leave no room for the service's sealed_record_id.
  nlohmann::json crowded = sealed;
  for (int i = 0; i < 64; ++i) crowded["details"]["k" + std::to_string(i)] = "v";
  RawResponse full = Post("/v1/audit/events", {{"events", {crowded}}}, writer);
  EXPECT_EQ(full.status, 400) << full.body;
  EXPECT_NE(full.body.find("at most 63"), std::string::npos) << full.body;
  EXPECT_EQ(Json(server_->Authed(reader_, "GET", "/v1/audit/entries?start=0&end=0"))["size"], size);
  RawResponse r = Post("/v1/audit/events", {{"events", {sealed}}}, writer);
  ASSERT_EQ(r.status, 200) << r.body;
  uint64_t index = Json(r)["indexes"][0];
  EXPECT_EQ(Entry(index - 1)["action"], "key.created") << "the refused request made the subject's key";
}

// A subject key's creation is audited at least once. The key is stored
// before its key.created entry is written; should that entry never become
// durable (the append failed, the process stopped), the key's next use
// writes it. Simulated here by marking stored keys of a stopped server as
// never confirmed, which is the state such a failure leaves.
TEST_F(KeysApiTest, AKeyWhoseCreationWasNeverAuditedIsAuditedByItsNextUse) {
  auto index_of = [](const RawResponse& r) { return nlohmann::json::parse(r.body)["audit_index"].get<uint64_t>(); };
  RawResponse first = DataKey("acme", "ivan@example.com");
  ASSERT_EQ(first.status, 200) << first.body;
  auto created = Entry(index_of(first) - 1);
  ASSERT_EQ(created["action"], "key.created");
  RawResponse second = DataKey("acme", "ivan@example.com");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(Entry(index_of(second) - 1)["action"], "key.datakey.issued") << "a confirmed creation is not audited again";

  // Two sealed events for one new subject in one request: one key.created.
  std::string writer = server_->CreateToken("app", {"audit:write"});
  nlohmann::json event = {{"tenant", "acme"}, {"action", "a"}, {"resource", "r"}, {"outcome", "ok"},
                          {"subject", "judy"}, {"personal", {{"email", "judy@example.com"}}}};
  RawResponse both = Post("/v1/audit/events", {{"events", {event, event}}}, writer);
  ASSERT_EQ(both.status, 200) << both.body;
  uint64_t a = Json(both)["indexes"][0], b = Json(both)["indexes"][1];
  EXPECT_EQ(Entry(a - 1)["action"], "key.created");
  EXPECT_EQ(b, a + 1);

  std::string dir = server_->data_dir();
  ASSERT_EQ(server_->Terminate(), 0);
  {
    auto kv = OpenRocksDbKvStore(dir + "/db", KnownNamespaces());
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    KvBatch batch;
    ASSERT_TRUE((*kv)->ScanFrom("keys", "s/acme/", "s/acme/", [&](std::string_view key, std::string_view value) {
                      v1::SubjectKeyRecord record;
                      EXPECT_TRUE(record.ParseFromArray(value.data(), static_cast<int>(value.size())));
                      EXPECT_FALSE(record.creation_unaudited()) << "confirmed once key.created was durable";
                      record.set_creation_unaudited(true);
                      batch.Put("keys", key, record.SerializeAsString());
                      return true;
                    }).ok());
    EXPECT_EQ(batch.ops().size(), 2u);  // ivan's and judy's keys
    ASSERT_TRUE((*kv)->Write(batch, true).ok());
  }
  server_ = TestServer::Start({}, dir);
  ASSERT_TRUE(server_->started()) << server_->log();
  RawResponse after = DataKey("acme", "ivan@example.com");
  ASSERT_EQ(after.status, 200) << after.body;
  auto again = Entry(index_of(after) - 1);
  EXPECT_EQ(again["action"], "key.created");
  EXPECT_EQ(again["subject_pseudonym"], created["subject_pseudonym"]);
  RawResponse last = DataKey("acme", "ivan@example.com");
  ASSERT_EQ(last.status, 200) << last.body;
  EXPECT_EQ(Entry(index_of(last) - 1)["action"], "key.datakey.issued");
}

TEST_F(KeysApiTest, DataDirHoldsNoPlaintextKeyOrSubjectId) {
  std::vector<std::string> plaintexts;
  for (int i = 0; i < 20; ++i) {
    auto issued = Json(DataKey("acme", "person-" + std::to_string(i) + "@example.org"));
    plaintexts.push_back(*Base64Decode(issued["plaintext_key"].get<std::string>()));
  }
  std::string dir = server_->data_dir();
  ASSERT_EQ(server_->Terminate(), 0);
  for (const auto& p : plaintexts) EXPECT_TRUE(FilesContaining(dir, p).empty()) << "a plaintext data key is in the data dir";
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(FilesContaining(dir, "person-" + std::to_string(i) + "@example.org").empty());
}

}  // namespace
}  // namespace geoledger::testing
