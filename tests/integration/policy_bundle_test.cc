// Signed policy bundles through the real servers: export from one instance,
// import into another that trusts its key; tampered, untrusted and older
// bundles change nothing; the last-known-good file seeds a fresh instance.
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "common/encoding.h"
#include "crypto/hash.h"
#include "tests/integration/residency_policy.h"
#include "tests/integration/test_server.h"

namespace geoledger::testing {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class PolicyBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    editor_ = TestServer::Start();
    ASSERT_TRUE(editor_->started()) << editor_->log();
    LoadResidencyPolicy(*editor_);
    dir_ = MakeTempDir();
    trusted_ = dir_ + "/trusted.keys";
    std::ofstream(trusted_) << "# the editor instance\n" << ReadText(editor_->data_dir() + "/policy-public.key");
    follower_ = TestServer::Start({"--policy-trusted-keys", trusted_});
    ASSERT_TRUE(follower_->started()) << follower_->log();
    reader_ = follower_->CreateToken("auditor", {"audit:read"});
  }
  void TearDown() override { RemoveTree(dir_); }
  std::string Export() {
    RawResponse r = editor_->Authed(editor_->admin_token(), "GET", "/v1/policy/bundle");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }
  RawResponse Import(TestServer& to, const std::string& bundle) {
    return to.Authed(to.admin_token(), "POST", "/v1/policy/bundle", bundle);
  }
  uint64_t Version(TestServer& s) {
    RawResponse r = s.Request("GET", "/readyz");
    return nlohmann::json::parse(r.body, nullptr, false).value("policy_version", uint64_t{0});
  }
  // The first audit entry of `s` with `action`; null when there is none.
  nlohmann::json FirstEntry(TestServer& s, const std::string& reader, const std::string& action) {
    for (auto& e : AuditEntries(s, reader, 0, AuditSize(s, reader)))
      if (e["action"] == action) return e;
    return nullptr;
  }
  std::vector<std::string> AuditActions(TestServer& s, const std::string& reader) {
    std::vector<std::string> out;
    for (const auto& e : AuditEntries(s, reader, 0, AuditSize(s, reader))) out.push_back(e["action"]);
    return out;
  }
  std::unique_ptr<TestServer> editor_, follower_;
  std::string dir_, trusted_, reader_;
};

TEST_F(PolicyBundleTest, ExportedBundleImportsIntoASecondInstanceAndDecidesTheSame) {
  std::string bundle = Export();
  auto j = nlohmann::json::parse(bundle);
  EXPECT_EQ(j["format"], "geoledger-residency-bundle/1");
  uint64_t version = Version(*editor_);
  ASSERT_GT(version, 0u);
  EXPECT_EQ(Version(*follower_), 0u);

  RawResponse r = Import(*follower_, bundle);
  ASSERT_EQ(r.status, 200) << r.body;
  auto answer = nlohmann::json::parse(r.body);
  EXPECT_EQ(answer["policy_version"], version);
  EXPECT_EQ(answer["last_known_good"], "saved");
  EXPECT_TRUE(answer["audit_index"].is_number_unsigned());
  EXPECT_EQ(Version(*follower_), version);
  auto ready = nlohmann::json::parse(follower_->Request("GET", "/readyz").body);
  EXPECT_EQ(ready["policy_loaded"], true);

  std::string decide = follower_->CreateToken("gw", {"decide"});
  RawResponse d = follower_->Authed(decide, "GET", "/v1/gateway/check", "",
                                    GatewayHeaders("acme", "personal", "store", "eu-central-1"));
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(d.Header("x-residency-policy-version"), std::to_string(version));
  auto actions = AuditActions(*follower_, reader_);
  EXPECT_NE(std::find(actions.begin(), actions.end(), "policy.bundle.imported"), actions.end());
  // The bundle is kept as the last-known-good file, owner-only.
  struct stat st {};
  ASSERT_EQ(::stat((follower_->data_dir() + "/policy-bundle.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  EXPECT_EQ(ReadText(follower_->data_dir() + "/policy-bundle.json"), bundle);
}

// The last-known-good file cannot be written (a directory is in its place):
// the bundle is active all the same, so the import is audit-logged and the
// answer says the file was not saved (it answered 500 and logged nothing,
// and a retry was refused as not newer, so the change was never audited).
TEST_F(PolicyBundleTest, AnImportWhoseFileCannotBeSavedIsActiveAuditedAndSaysSo) {
  std::string bundle = Export();
  const uint64_t version = Version(*editor_);
  ASSERT_EQ(::mkdir((follower_->data_dir() + "/policy-bundle.json").c_str(), 0700), 0);
  RawResponse r = Import(*follower_, bundle);
  ASSERT_EQ(r.status, 200) << r.body;
  auto answer = nlohmann::json::parse(r.body);
  EXPECT_EQ(answer["policy_version"], version);
  // The reason names the data dir's path: logged, not answered.
  EXPECT_EQ(answer["last_known_good"], "not saved (see the log)") << r.body;
  EXPECT_EQ(r.body.find(follower_->data_dir()), std::string::npos) << r.body;
  EXPECT_EQ(Version(*follower_), version);
  const nlohmann::json imported = FirstEntry(*follower_, reader_, "policy.bundle.imported");
  ASSERT_FALSE(imported.is_null());
  EXPECT_EQ(imported["details"]["policy_version"], std::to_string(version)) << imported.dump();
  EXPECT_EQ(imported["details"]["previous_version"], "0") << imported.dump();
  EXPECT_EQ(answer["previous_version"], 0);
  EXPECT_EQ(imported["index"], answer["audit_index"]) << imported.dump();
  // It names the signing key and the SHA-256 of the signed payload, which
  // the holder of the bundle file recomputes.
  const nlohmann::json outer = nlohmann::json::parse(bundle);
  EXPECT_EQ(imported["details"]["key_id"], outer["key_id"]) << imported.dump();
  const std::string payload = *Base64Decode(outer["payload"].get<std::string>());
  EXPECT_EQ(imported["details"]["payload_sha256"], HexEncode(crypto::AsView(crypto::Sha256(payload))))
      << imported.dump();
  // The import's entry is written before the file; the failed save gets its own, after it.
  const nlohmann::json unsaved = FirstEntry(*follower_, reader_, "policy.bundle.last_known_good");
  ASSERT_FALSE(unsaved.is_null());
  EXPECT_GT(unsaved["index"].get<uint64_t>(), imported["index"].get<uint64_t>()) << unsaved.dump();
  EXPECT_EQ(unsaved["outcome"], "failed") << unsaved.dump();
  EXPECT_EQ(unsaved["details"]["policy_version"], std::to_string(version)) << unsaved.dump();
  EXPECT_NE(follower_->log().find("last-known-good file was not saved"), std::string::npos);
}

TEST_F(PolicyBundleTest, TamperedOrUntrustedBundlesChangeNothing) {
  std::string bundle = Export();
  ASSERT_EQ(Import(*follower_, bundle).status, 200);
  uint64_t version = Version(*follower_);
  // A newer policy on the editor, then tampered copies of its bundle.
  ASSERT_EQ(editor_->Authed(editor_->admin_token(), "PUT", "/v1/tenants/acme",
                            R"({"home_region":"eu-west-1","status":"suspended"})").status, 200);
  auto j = nlohmann::json::parse(Export());
  std::string payload = *Base64Decode(j["payload"].get<std::string>());
  auto pos = payload.find("suspended");
  ASSERT_NE(pos, std::string::npos);
  payload.replace(pos, 9, "active");  // a well-formed policy, not the one signed
  auto tampered = j;
  tampered["payload"] = Base64Encode(payload);
  RawResponse r = Import(*follower_, tampered.dump());
  // The signature is checked before the payload is read.
  EXPECT_EQ(r.status, 403) << r.body;
  auto bad_sig = j;
  std::string sig = *Base64Decode(j["signature"].get<std::string>());
  sig[0] ^= 1;
  bad_sig["signature"] = Base64Encode(sig);
  EXPECT_EQ(Import(*follower_, bad_sig.dump()).status, 403);
  EXPECT_EQ(Import(*follower_, "{\"format\":1}").status, 400);
  EXPECT_EQ(Import(*follower_, "not json").status, 400);
  EXPECT_EQ(Version(*follower_), version);  // nothing changed
  RawResponse t = follower_->Authed(follower_->admin_token(), "GET", "/v1/tenants/acme");
  EXPECT_EQ(nlohmann::json::parse(t.body)["status"], "active");

  // An instance that does not trust the editor's key refuses its bundle.
  auto stranger = TestServer::Start();
  ASSERT_TRUE(stranger->started());
  EXPECT_EQ(Import(*stranger, j.dump()).status, 403);
  EXPECT_EQ(Version(*stranger), 0u);
  // It has no policy to export either.
  RawResponse none = stranger->Authed(stranger->admin_token(), "GET", "/v1/policy/bundle");
  EXPECT_EQ(none.status, 404) << none.body;
  EXPECT_EQ(none.Header("content-type"), "application/problem+json");

  // The three bundles read and refused are audited; a body that is not JSON
  // at all is refused before any bundle is read, like on any route.
  auto actions = AuditActions(*follower_, reader_);
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "policy.bundle.refused"), 3);
  // The untampered newer bundle still imports.
  EXPECT_EQ(Import(*follower_, j.dump()).status, 200);
  EXPECT_GT(Version(*follower_), version);
}

TEST_F(PolicyBundleTest, OlderOrSameVersionIsRefusedAsRollback) {
  std::string v1 = Export();
  ASSERT_EQ(editor_->Authed(editor_->admin_token(), "PUT", "/v1/regions/eu-north-1",
                            R"({"country":"SE","name":"Stockholm"})").status, 201);
  std::string v2 = Export();
  ASSERT_EQ(Import(*follower_, v2).status, 200);
  uint64_t version = Version(*follower_);
  const std::string last_known_good = follower_->data_dir() + "/policy-bundle.json";
  ASSERT_EQ(ReadText(last_known_good), v2);
  RawResponse r = Import(*follower_, v1);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(Import(*follower_, v2).status, 409);  // not newer either
  EXPECT_EQ(Version(*follower_), version);
  EXPECT_EQ(ReadText(last_known_good), v2);  // the newer bundle stays the one kept
  // Both refusals are audited as such, against the active version.
  int refused = 0;
  for (const auto& e : AuditEntries(*follower_, reader_, 0, AuditSize(*follower_, reader_))) {
    if (e["action"] != "policy.bundle.refused") continue;
    ++refused;
    EXPECT_EQ(e["details"]["reason"], "not-newer") << e.dump();
    EXPECT_EQ(e["details"]["active_version"], std::to_string(version)) << e.dump();
  }
  EXPECT_EQ(refused, 2);
}

TEST_F(PolicyBundleTest, LastKnownGoodBundleSeedsAFreshInstance) {
  std::string bundle = Export();
  ASSERT_EQ(Import(*follower_, bundle).status, 200);
  uint64_t version = Version(*follower_);
  std::string scratch = MakeTempDir();  // holds the data dir and the server's log beside it
  std::string fresh = scratch + "/data";
  ASSERT_EQ(::mkdir(fresh.c_str(), 0700), 0);
  std::ofstream(fresh + "/policy-bundle.json") << bundle;
  auto seeded = TestServer::Start({"--policy-trusted-keys", trusted_}, fresh);
  ASSERT_TRUE(seeded->started()) << seeded->log();
  EXPECT_EQ(Version(*seeded), version);
  // Audited with an import's details, the version it replaced included.
  const std::string reader = seeded->CreateToken("seed-reader", {"audit:read"});
  const nlohmann::json loaded = FirstEntry(*seeded, reader, "policy.bundle.loaded");
  ASSERT_FALSE(loaded.is_null());
  EXPECT_EQ(loaded["details"]["policy_version"], std::to_string(version)) << loaded.dump();
  EXPECT_EQ(loaded["details"]["previous_version"], "0") << loaded.dump();
  EXPECT_TRUE(loaded["details"].contains("payload_sha256")) << loaded.dump();
  EXPECT_EQ(seeded->Terminate(), 0);
  RemoveTree(scratch);
}

// Whoever can write the trusted-keys file decides which policies are
// accepted: one that group or others may write stops the start.
TEST_F(PolicyBundleTest, ATrustedKeysFileOthersMayWriteStopsTheStart) {
  ASSERT_EQ(::chmod(trusted_.c_str(), 0666), 0);
  auto refused = TestServer::Start({"--policy-trusted-keys", trusted_});
  EXPECT_FALSE(refused->started());
  EXPECT_NE(refused->log().find("is writable by group or others"), std::string::npos) << refused->log();
  ASSERT_EQ(::chmod(trusted_.c_str(), 0644), 0);
  auto started = TestServer::Start({"--policy-trusted-keys", trusted_});
  EXPECT_TRUE(started->started()) << started->log();
  EXPECT_EQ(started->Terminate(), 0);
}

// The key that signed the active bundle is taken off the trusted list (a
// rotation): the last-known-good file it signed is not newer than the
// stored policy and no longer stops the start (it did, as untrusted).
TEST_F(PolicyBundleTest, ARestartWithoutTheKeyThatSignedTheActiveBundleStarts) {
  ASSERT_EQ(Import(*follower_, Export()).status, 200);
  const uint64_t version = Version(*follower_);
  const std::string data = follower_->data_dir();
  ASSERT_EQ(follower_->Terminate(), 0);
  std::ofstream(trusted_, std::ios::trunc) << "# the editor's old key is retired\n";
  auto restarted = TestServer::Start({"--policy-trusted-keys", trusted_}, data);
  ASSERT_TRUE(restarted->started()) << restarted->log();
  EXPECT_EQ(Version(*restarted), version);
  EXPECT_NE(restarted->log().find("last-known-good policy bundle does not verify"), std::string::npos)
      << restarted->log();
  // Its bundles are refused from now on.
  EXPECT_EQ(Import(*restarted, Export()).status, 403);
  EXPECT_EQ(restarted->Terminate(), 0);
}

TEST_F(PolicyBundleTest, TenantBoundTokensCannotExportOrImport) {
  std::string bound = editor_->CreateToken("acme-admin", {"admin"}, "acme");
  ASSERT_FALSE(bound.empty());
  EXPECT_EQ(editor_->Authed(bound, "GET", "/v1/policy/bundle").status, 403);
  EXPECT_EQ(follower_->Authed(follower_->CreateToken("ro", {"decide"}), "GET", "/v1/policy/bundle").status, 403);
}

}  // namespace
}  // namespace geoledger::testing
