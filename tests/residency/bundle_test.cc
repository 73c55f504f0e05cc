#include "residency/bundle.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/encoding.h"
#include "common/files.h"
#include "tests/residency/fixtures.h"

namespace geoledger::residency {
namespace {

using testing::At;
using testing::Jur;
using testing::R;
using testing::T;

crypto::Ed25519Signer Signer(char fill) {
  auto s = crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::CopyFrom(std::string(32, fill)));
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

PolicyDocument Doc(uint64_t version) {
  PolicyDocument doc;
  doc.version = version;
  doc.regions = {R("eu-west-1", "IE"), R("eu-central-1", "DE")};
  doc.tenants = {T("acme", R"({"home_region":"eu-west-1","status":"active",
      "allowed_regions":{"personal":["eu-central-1"]}})"),
                 T("beta", R"({"home_region":"eu-central-1","status":"active"})")};
  return doc;
}

// Re-signs nothing: rewrites the payload and keeps the original signature.
std::string EditPayload(const std::string& bundle, const std::function<void(std::string&)>& edit) {
  nlohmann::json outer = nlohmann::json::parse(bundle);
  std::string payload = *Base64Decode(outer["payload"].get<std::string>());
  edit(payload);
  outer["payload"] = Base64Encode(payload);
  return outer.dump();
}

// A bundle of `payload` exactly as given, signed by `signer`.
std::string SignRaw(const std::string& payload, const crypto::Ed25519Signer& signer) {
  return nlohmann::json{{"format", kBundleFormat},
                        {"key_id", BundleKeyId(signer.public_key())},
                        {"payload", Base64Encode(payload)},
                        {"signature", Base64Encode(signer.Sign(std::string(kBundleFormat) + "\n" + payload))}}
      .dump();
}

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("geoledger-bundle-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A policy store on a fresh memory store, as a start opens it; null
  // (with a failure recorded) if it does not open.
  struct Opened {
    std::unique_ptr<KvStore> kv;
    std::unique_ptr<Engine> engine;
    std::unique_ptr<PolicyStore> store;
  };
  Opened OpenStore() {
    Opened o{NewMemoryKvStore(), testing::NewEngine(), nullptr};
    auto store = PolicyStore::Open(o.kv.get(), o.engine.get(), &clock_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (store.ok()) o.store = std::move(store).value();
    return o;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  std::filesystem::path dir_;
  ManualClock clock_;
  crypto::Ed25519Signer signer_ = Signer('k');
  std::vector<std::string> trusted_ = {Signer('o').public_key(), signer_.public_key()};
};

TEST_F(BundleTest, SignedBundleVerifiesToTheSamePolicy) {
  const std::string bundle = SignBundle(Doc(5), signer_);
  auto doc = VerifyBundle(bundle, trusted_, Jur());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->version, 5u);
  EXPECT_EQ(doc->tenants, Doc(5).tenants);
  EXPECT_EQ(doc->regions[0].id, "eu-central-1");  // canonical order
  EXPECT_EQ(CanonicalPolicyJson(*doc), CanonicalPolicyJson(Doc(5)));
}

TEST_F(BundleTest, FlippedPayloadByteIsRejected) {
  const std::string bundle = SignBundle(Doc(5), signer_);
  const std::string tampered = EditPayload(bundle, [](std::string& p) { p[p.size() / 2] ^= 0x01; });
  EXPECT_EQ(VerifyBundle(tampered, trusted_, Jur()).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(BundleTest, FlippedSignatureByteIsRejected) {
  nlohmann::json outer = nlohmann::json::parse(SignBundle(Doc(5), signer_));
  std::string sig = *Base64Decode(outer["signature"].get<std::string>());
  sig[0] ^= 0x80;
  outer["signature"] = Base64Encode(sig);
  EXPECT_EQ(VerifyBundle(outer.dump(), trusted_, Jur()).status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(BundleTest, EditedVersionIsRejected) {
  const std::string bundle = SignBundle(Doc(5), signer_);
  const std::string tampered = EditPayload(bundle, [](std::string& p) {
    const size_t at = p.find("\"version\":5");
    ASSERT_NE(at, std::string::npos);
    p.replace(at, 11, "\"version\":9");
  });
  EXPECT_EQ(VerifyBundle(tampered, trusted_, Jur()).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(BundleTest, UntrustedKeyIsRejectedEvenWithAMatchingKeyId) {
  const crypto::Ed25519Signer stranger = Signer('s');
  EXPECT_EQ(VerifyBundle(SignBundle(Doc(5), stranger), trusted_, Jur()).status().code(),
            StatusCode::kPermissionDenied);
  nlohmann::json outer = nlohmann::json::parse(SignBundle(Doc(5), stranger));
  outer["key_id"] = BundleKeyId(signer_.public_key());  // claims a trusted key
  EXPECT_EQ(VerifyBundle(outer.dump(), trusted_, Jur()).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(VerifyBundle(SignBundle(Doc(5), signer_), {}, Jur()).status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(BundleTest, MalformedBundlesAreInvalidArgument) {
  for (const char* bad : {"", "{", "[]", R"({"format":"x","key_id":"a","payload":"b","signature":"c"})",
                          R"({"format":"geoledger-residency-bundle/1","key_id":"a","payload":"!!","signature":"c"})"}) {
    EXPECT_EQ(VerifyBundle(bad, trusted_, Jur()).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  // A well-signed bundle whose key_id is not BundleKeyId's form (16
  // lowercase hex digits) is malformed, not merely untrusted.
  for (const std::string& key_id : {std::string("a"), BundleKeyId(signer_.public_key()) + "0", std::string(16, 'G'),
                                   std::string("0123456789ABCDEF")}) {
    nlohmann::json outer = nlohmann::json::parse(SignBundle(Doc(5), signer_));
    outer["key_id"] = key_id;
    auto r = VerifyBundle(outer.dump(), trusted_, Jur());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << key_id;
    EXPECT_EQ(r.status().message(), "policy bundle: key_id must be 16 lowercase hex digits");
  }
}

TEST_F(BundleTest, NonCanonicalPayloadIsRejectedEvenWhenSigned) {
  // A trusted key signing pretty-printed JSON: one policy, one byte string.
  const std::string payload = nlohmann::json::parse(CanonicalPolicyJson(Doc(5))).dump(2);
  const std::string message = std::string(kBundleFormat) + "\n" + payload;
  nlohmann::json outer = {{"format", kBundleFormat},
                          {"key_id", BundleKeyId(signer_.public_key())},
                          {"payload", Base64Encode(payload)},
                          {"signature", Base64Encode(signer_.Sign(message))}};
  auto r = VerifyBundle(outer.dump(), trusted_, Jur());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("canonical"), std::string::npos);
}

// Sorted, compact JSON whose tenant leaves out a member its rendering always
// has: the same policy as the canonical payload, another byte string.
TEST_F(BundleTest, APayloadThatRendersAnEntityDifferentlyIsRejectedEvenWhenSigned) {
  std::string payload = CanonicalPolicyJson(Doc(5));
  const std::string beta = R"({"allowed_regions":{},"home_region":"eu-central-1")";
  const size_t at = payload.find(beta);
  ASSERT_NE(at, std::string::npos) << payload;
  payload.replace(at, beta.size(), R"({"home_region":"eu-central-1")");
  ASSERT_EQ(nlohmann::json::parse(payload).dump(), payload);  // still sorted and compact
  auto r = VerifyBundle(SignRaw(payload, signer_), trusted_, Jur());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("canonical"), std::string::npos);
}

TEST_F(BundleTest, ImportActivatesAtomicallyRefusesRollbackAndSavesLastKnownGood) {
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string lkg = (dir_ / "policy-bundle.json").string();

  auto rec = ImportBundle(*store, SignBundle(Doc(5), signer_), trusted_, lkg, "bundle:test", testing::Audited(kv));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->change.version, 5u);
  EXPECT_TRUE(rec->last_known_good.ok()) << rec->last_known_good.ToString();
  EXPECT_EQ(engine->version(), 5u);
  EXPECT_TRUE(engine->Decide("acme", "personal", "store", "eu-central-1", At("2025-06-15")).allow);
  ASSERT_TRUE(std::filesystem::exists(lkg));

  // Same version and older versions are rollbacks.
  for (uint64_t v : {5u, 4u}) {
    auto again = ImportBundle(*store, SignBundle(Doc(v), signer_), trusted_, lkg, "bundle:test", testing::Audited(kv));
    EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition) << v;
  }
  // A tampered bundle changes nothing, on disk or in memory.
  const std::string tampered =
      EditPayload(SignBundle(Doc(6), signer_), [](std::string& p) { p[20] ^= 0x02; });
  EXPECT_FALSE(ImportBundle(*store, tampered, trusted_, lkg, "bundle:test", testing::Audited(kv)).ok());
  EXPECT_EQ(engine->version(), 5u);
  EXPECT_EQ(Read(lkg), SignBundle(Doc(5), signer_));
  for (const auto& entry : std::filesystem::directory_iterator(dir_))  // no temporary or pending file left
    EXPECT_EQ(entry.path().filename().string(), "policy-bundle.json");
}

// The bundle is saved before the import is written: one that cannot be
// saved is not imported (before, it was activated and then reported unsaved,
// and the next start did not find it).
TEST_F(BundleTest, AnImportWhoseBundleCannotBeSavedIsRefusedAndChangesNothing) {
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string lkg = (dir_ / "missing-dir" / "policy-bundle.json").string();
  auto rec = ImportBundle(*store, SignBundle(Doc(5), signer_), trusted_, lkg, "bundle:test", testing::Audited(kv));
  EXPECT_EQ(rec.status().code(), StatusCode::kInternal);
  EXPECT_NE(rec.status().message().find("was not imported"), std::string::npos) << rec.status().ToString();
  EXPECT_EQ(engine->version(), 0u);
  EXPECT_EQ(store->version(), 0u);
}

// A crash while the last-known-good or the pending file was being written
// leaves WriteFileAtomically's temporary file beside it; the start removes
// those, and nothing else.
TEST_F(BundleTest, AStartRemovesTemporaryFilesACrashLeft) {
  const std::string lkg = (dir_ / "policy-bundle.json").string();
  const std::string left[] = {lkg + ".tmp.a1B2c3", PendingImportPath(lkg) + ".tmp.Zz0099"};
  const std::string kept[] = {lkg + ".tmp.toolong1", (dir_ / "other.json.tmp.a1B2c3").string(),
                              (dir_ / "notes.txt").string()};
  for (const std::string& f : left) ASSERT_TRUE(WriteFileAtomically(f, "partial").ok());
  for (const std::string& f : kept) ASSERT_TRUE(WriteFileAtomically(f, "keep").ok());
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  auto loaded = LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->temporaries_removed, 2u);
  for (const std::string& f : left) EXPECT_FALSE(std::filesystem::exists(f)) << f;
  for (const std::string& f : kept) EXPECT_TRUE(std::filesystem::exists(f)) << f;
}

// A directory where the last-known-good file belongs is named as such; it
// was read as an empty file ("not valid JSON").
TEST_F(BundleTest, ADirectoryInPlaceOfTheLastKnownGoodFileIsNamed) {
  const std::string lkg = (dir_ / "policy-bundle.json").string();
  std::filesystem::create_directory(lkg);
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  auto loaded = LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv));
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("not a regular file"), std::string::npos) << loaded.status().ToString();
}

// A tenant's adequacy_opt_out travels in a bundle: signed, verified,
// imported, and exported again to the same bytes.
TEST_F(BundleTest, AnOptedOutTenantRoundTripsThroughABundle) {
  PolicyDocument doc = Doc(3);
  doc.tenants.push_back(T("optco", R"({"home_region":"eu-west-1","status":"active","adequacy_opt_out":["KR","JP"]})"));
  std::sort(doc.tenants.begin(), doc.tenants.end(), [](const Tenant& a, const Tenant& b) { return a.id < b.id; });
  const std::string bundle = SignBundle(doc, signer_);
  auto verified = VerifyBundle(bundle, trusted_, Jur());
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(ImportBundle(*store, bundle, trusted_, "", "a", testing::Audited(kv)).ok());
  auto optco = store->GetTenant("optco");
  ASSERT_TRUE(optco.ok() && optco->has_value());
  EXPECT_EQ((*optco)->adequacy_opt_out, (std::vector<std::string>{"JP", "KR"}));
  auto exported = store->Export();
  ASSERT_TRUE(exported.ok());
  EXPECT_EQ(SignBundle(*exported, signer_), bundle);
  // A dated DPF declaration travels the same way, and an exported bundle of
  // an undated one is what it was before the dated form existed.
  PolicyDocument next = *exported;
  next.version = 4;
  next.tenants.push_back(T("uscorp", R"({"home_region":"eu-west-1","status":"active","certifications":[
      {"name":"dpf","reference":"Example Cloud Inc.","valid_from":"2025-07-01","valid_until":"2026-06-30"}]})"));
  next.tenants.push_back(T("usold", R"({"home_region":"eu-west-1","status":"active","certifications":["dpf"]})"));
  std::sort(next.tenants.begin(), next.tenants.end(), [](const Tenant& a, const Tenant& b) { return a.id < b.id; });
  const std::string dated = SignBundle(next, signer_);
  ASSERT_TRUE(ImportBundle(*store, dated, trusted_, "", "a", testing::Audited(kv)).ok());
  auto uscorp = store->GetTenant("uscorp");
  ASSERT_TRUE(uscorp.ok() && uscorp->has_value());
  ASSERT_EQ((*uscorp)->certifications.size(), 1u);
  EXPECT_EQ((*uscorp)->certifications[0].reference, "Example Cloud Inc.");
  auto again = store->Export();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(SignBundle(*again, signer_), dated);
  const std::string payload_text = *Base64Decode(nlohmann::json::parse(dated)["payload"].get<std::string>());
  EXPECT_NE(payload_text.find(R"("certifications":["dpf"],"home_region":"eu-west-1","id":"usold")"), std::string::npos)
      << payload_text;
  // An unsorted list is not the canonical form: refused even when signed.
  const std::string unsorted = EditPayload(bundle, [](std::string& p) {
    const size_t at = p.find(R"(["JP","KR"])");
    ASSERT_NE(at, std::string::npos);
    p.replace(at, 11, R"(["KR","JP"])");
  });
  nlohmann::json outer = nlohmann::json::parse(unsorted);
  const std::string payload = *Base64Decode(outer["payload"].get<std::string>());
  EXPECT_EQ(VerifyBundle(SignRaw(payload, signer_), trusted_, Jur()).status().code(), StatusCode::kInvalidArgument);
}

// What a start does with a pending file an import left: a crash between
// the import's write and the rename of its file leaves the import stored
// and the file pending; an import that never reached the store leaves a
// file for nothing; and an operator may have placed a newer bundle since.
TEST_F(BundleTest, AStartSettlesAPendingImportFile) {
  const std::string lkg = (dir_ / "policy-bundle.json").string();
  const std::string pending = PendingImportPath(lkg);
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(ImportBundle(*store, SignBundle(Doc(4), signer_), trusted_, lkg, "a", testing::Audited(kv)).ok());
  ASSERT_TRUE(ImportBundle(*store, SignBundle(Doc(5), signer_), trusted_, "", "a", testing::Audited(kv)).ok());
  // Leaves `bytes` as the pending file and starts: the file is settled
  // (promoted or removed) whatever it held.
  auto settle = [&](const std::string& bytes) {
    EXPECT_TRUE(WriteFileAtomically(pending, bytes).ok());
    auto loaded = LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv));
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_TRUE(loaded.ok() && loaded->pending.has_value());
    EXPECT_FALSE(std::filesystem::exists(pending));
    return loaded;
  };

  // Stored, not renamed: the pending bundle becomes the last-known-good one.
  auto loaded = settle(SignBundle(Doc(5), signer_));
  ASSERT_TRUE(loaded.ok() && loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, PendingImport::kSaved);
  EXPECT_FALSE(loaded->activated.has_value());
  EXPECT_EQ(Read(lkg), SignBundle(Doc(5), signer_));

  // Not stored (no import at version 7, though a newer version than 5 would
  // otherwise be activated): removed, never activated.
  loaded = settle(SignBundle(Doc(7), signer_));
  ASSERT_TRUE(loaded.ok() && loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, PendingImport::kNotStored);
  EXPECT_FALSE(loaded->activated.has_value());
  EXPECT_EQ(engine->version(), 5u);
  EXPECT_EQ(Read(lkg), SignBundle(Doc(5), signer_));

  // Stored, but a newer bundle was placed as the file since: the file wins
  // and is activated; the pending one is removed.
  ASSERT_TRUE(WriteFileAtomically(lkg, SignBundle(Doc(9), signer_)).ok());
  loaded = settle(SignBundle(Doc(5), signer_));
  ASSERT_TRUE(loaded.ok() && loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, PendingImport::kSuperseded);
  ASSERT_TRUE(loaded->activated.has_value());
  EXPECT_EQ(engine->version(), 9u);
  EXPECT_EQ(Read(lkg), SignBundle(Doc(9), signer_));

  // Unreadable: removed.
  loaded = settle("{");
  ASSERT_TRUE(loaded.ok() && loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, PendingImport::kUnverified);
  EXPECT_FALSE(loaded->pending->version.has_value());

  // Stored version, but signed by no trusted key (altered, or placed by
  // someone else): removed, and the last-known-good file is left as it is.
  loaded = settle(SignBundle(Doc(9), Signer('s')));
  ASSERT_TRUE(loaded.ok() && loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, PendingImport::kUnverified);
  EXPECT_EQ(Read(lkg), SignBundle(Doc(9), signer_));

  // A last-known-good file that does not verify does not supersede a
  // verified pending bundle the store holds, whatever version it claims.
  ASSERT_TRUE(ImportBundle(*store, SignBundle(Doc(12), signer_), trusted_, "", "a", testing::Audited(kv)).ok());
  ASSERT_TRUE(WriteFileAtomically(lkg, SignBundle(Doc(99), Signer('s'))).ok());
  loaded = settle(SignBundle(Doc(12), signer_));
  ASSERT_TRUE(loaded.ok() && loaded->pending.has_value());
  EXPECT_EQ(loaded->pending->outcome, PendingImport::kSaved);
  EXPECT_EQ(Read(lkg), SignBundle(Doc(12), signer_));
}

TEST_F(BundleTest, LastKnownGoodBundleIsLoadedAtStartupWhenNewer) {
  const std::string lkg = (dir_ / "policy-bundle.json").string();
  ASSERT_TRUE(WriteFileAtomically(lkg, SignBundle(Doc(8), signer_)).ok());
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  auto loaded = LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->activated.has_value());
  EXPECT_EQ(engine->version(), 8u);
  // Not newer any more: nothing to do. Absent file: nothing to do.
  auto again = LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->activated.has_value());
  EXPECT_TRUE(again->not_newer_unverified.ok());
  auto absent = LoadLastKnownGood(*store, (dir_ / "none.json").string(), trusted_, testing::Audited(kv));
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->activated.has_value());
  // A file signed by nobody we trust is an error, not a silent skip.
  ASSERT_TRUE(WriteFileAtomically(lkg, SignBundle(Doc(9), Signer('s'))).ok());
  EXPECT_EQ(LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(engine->version(), 8u);
}

// A key taken off the trusted list after it signed the active bundle: the
// file is not newer, would not be activated whoever signed it, and no longer
// stops the start; that it does not verify is reported. The same for a
// not-newer file that was altered. A newer one must verify (above).
TEST_F(BundleTest, LastKnownGoodFileThatIsNotNewerAndDoesNotVerifyIsLeftAloneAndReported) {
  const std::string lkg = (dir_ / "policy-bundle.json").string();
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(ImportBundle(*store, SignBundle(Doc(8), Signer('o')), trusted_, lkg, "a", testing::Audited(kv)).ok());
  const std::vector<std::string> rotated = {signer_.public_key()};  // 'o' is no longer trusted
  int audits = 0;
  AuditChange count = [&audits](const ChangeRecord&, const ChangeWrites&) -> StatusOr<uint64_t> {
    return Internal("no change should be audited, change " + std::to_string(audits++));
  };
  auto loaded = LoadLastKnownGood(*store, lkg, rotated, count);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE(loaded->activated.has_value());
  EXPECT_EQ(loaded->not_newer_unverified.code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(WriteFileAtomically(lkg, EditPayload(SignBundle(Doc(7), signer_), [](std::string& p) {
                                    p[30] ^= 0x01;
                                  })).ok());
  loaded = LoadLastKnownGood(*store, lkg, rotated, count);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE(loaded->activated.has_value());
  EXPECT_FALSE(loaded->not_newer_unverified.ok());
  EXPECT_EQ(audits, 0);
  EXPECT_EQ(engine->version(), 8u);
  // Newer and signed by the key no longer trusted: refused, as before.
  ASSERT_TRUE(WriteFileAtomically(lkg, SignBundle(Doc(9), Signer('o'))).ok());
  EXPECT_EQ(LoadLastKnownGood(*store, lkg, rotated, count).status().code(), StatusCode::kPermissionDenied);
  // A file whose version cannot be read at all (truncated) counts as newer: refused.
  const std::string whole = SignBundle(Doc(7), signer_);
  ASSERT_TRUE(WriteFileAtomically(lkg, whole.substr(0, whole.size() / 2)).ok());
  EXPECT_EQ(LoadLastKnownGood(*store, lkg, rotated, count).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->version(), 8u);
}

TEST_F(BundleTest, ExportedStoreRoundTripsThroughABundle) {
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutRegion("admin", R("eu-west-1", "IE"), testing::Audited(kv)).ok());
  ASSERT_TRUE(store->PutTenant("admin", T("acme", R"({"home_region":"eu-west-1","status":"active"})"), testing::Audited(kv)).ok());
  auto doc = store->Export();
  ASSERT_TRUE(doc.ok());
  const std::string bundle = SignBundle(*doc, signer_);
  // Another region's instance imports it.
  auto kv2 = NewMemoryKvStore();
  auto engine2 = testing::NewEngine();
  auto store2 = PolicyStore::Open(kv2.get(), engine2.get(), &clock_);
  ASSERT_TRUE(store2.ok());
  ASSERT_TRUE(ImportBundle(**store2, bundle, trusted_, "", "bundle:peer", testing::Audited(kv2)).ok());
  EXPECT_EQ(engine2->version(), 2u);
  EXPECT_TRUE(engine2->Decide("acme", "personal", "store", "eu-west-1", At("2025-06-15")).allow);
}

// The server runs imports on two threads: two at once must leave the newest
// activated bundle, whole, as the last-known-good file (they shared one
// temporary file name, so one import reported a failed save and the file
// could hold a mix of both, which then stopped the next start).
TEST_F(BundleTest, ConcurrentImportsLeaveTheActiveBundleAsLastKnownGood) {
  PolicyDocument big = Doc(7);
  for (int t = 0; t < 200; ++t)
    big.tenants.push_back(T("t" + std::to_string(1000 + t), R"({"home_region":"eu-west-1","status":"active"})"));
  const std::string b6 = SignBundle(Doc(6), signer_), b7 = SignBundle(big, signer_);
  for (int i = 0; i < 50; ++i) {
    auto [kv, engine, store] = OpenStore();
    ASSERT_NE(store, nullptr);
    const std::string lkg = (dir_ / ("lkg-" + std::to_string(i) + ".json")).string();
    StatusOr<ImportedBundle> r6 = Internal("unset"), r7 = Internal("unset");
    std::thread t6([&] { r6 = ImportBundle(*store, b6, trusted_, lkg, "a", testing::Audited(kv)); });
    std::thread t7([&] { r7 = ImportBundle(*store, b7, trusted_, lkg, "b", testing::Audited(kv)); });
    t6.join();
    t7.join();
    ASSERT_TRUE(r7.ok()) << r7.status().ToString();  // v6 may be refused as older, v7 never
    EXPECT_TRUE(r7->last_known_good.ok()) << r7->last_known_good.ToString();
    if (r6.ok()) {
      EXPECT_TRUE(r6->last_known_good.ok()) << r6->last_known_good.ToString();
    }
    const std::string saved = Read(lkg);
    EXPECT_EQ(engine->version(), 7u);
    ASSERT_EQ(saved, b7) << "round " << i << ": the file is not the active bundle (" << saved.size() << " bytes)";
  }
}

TEST_F(BundleTest, ConcurrentAtomicWritesLeaveOneWholeFile) {
  const std::string path = (dir_ / "file.json").string();
  const std::string a(200000, 'a'), b(1000, 'b');
  for (int i = 0; i < 100; ++i) {
    Status sa, sb;
    std::thread ta([&] { sa = WriteFileAtomically(path, a); });
    std::thread tb([&] { sb = WriteFileAtomically(path, b); });
    ta.join();
    tb.join();
    EXPECT_TRUE(sa.ok()) << sa.ToString();
    EXPECT_TRUE(sb.ok()) << sb.ToString();
    const std::string got = Read(path);
    ASSERT_TRUE(got == a || got == b) << "round " << i << ": " << got.size() << " bytes, neither write";
  }
}

// Versions only move forward: the version after 2^64 - 1 was 0, which reads
// as "no policy" (a restart then loaded nothing, and an old bundle was no
// longer a rollback). Bundles above 2^53 - 1 are refused, and at that
// version no further change is accepted.
TEST_F(BundleTest, PolicyVersionsStopAtTheHighestInsteadOfWrapping) {
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  for (uint64_t v : {UINT64_MAX, kMaxPolicyVersion + 1}) {
    auto r = ImportBundle(*store, SignBundle(Doc(v), signer_), trusted_, "", "b", testing::Audited(kv));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << v;
  }
  EXPECT_EQ(engine->version(), 0u);
  ASSERT_TRUE(ImportBundle(*store, SignBundle(Doc(kMaxPolicyVersion), signer_), trusted_, "", "b", testing::Audited(kv)).ok());
  auto put = store->PutRegion("admin", R("eu-south-1", "IT"), testing::Audited(kv));
  EXPECT_EQ(put.status().code(), StatusCode::kFailedPrecondition) << put.status().ToString();
  EXPECT_EQ(engine->version(), kMaxPolicyVersion);
  EXPECT_EQ(store->version(), kMaxPolicyVersion);
  auto region = store->GetRegion("eu-south-1");
  ASSERT_TRUE(region.ok());
  EXPECT_FALSE(region->has_value());
  // A restart finds the same policy, and an older bundle is still a rollback.
  auto engine2 = testing::NewEngine();
  auto reopened = PolicyStore::Open(kv.get(), engine2.get(), &clock_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(engine2->version(), kMaxPolicyVersion);
  EXPECT_TRUE(engine2->Decide("acme", "personal", "store", "eu-central-1", At("2025-06-15")).allow);
  auto old = ImportBundle(**reopened, SignBundle(Doc(1), signer_), trusted_, "", "b", testing::Audited(kv));
  EXPECT_EQ(old.status().code(), StatusCode::kFailedPrecondition);
}

// A start reads the last-known-good file's version from the end of its
// verified payload and parses the policy only when the file is newer: a
// million tenants take seconds to parse (bench/residency_bench,
// BM_VerifyBundle), and every start reads the file.
TEST_F(BundleTest, ALastKnownGoodFileThatIsNotNewerIsNotParsed) {
  const std::string lkg = (dir_ / "policy-bundle.json").string();
  auto [kv, engine, store] = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(ImportBundle(*store, SignBundle(Doc(8), signer_), trusted_, "", "a", testing::Audited(kv)).ok());
  // Signed by a trusted key, but no policy: it would not parse.
  const std::string unparsable = R"({"format":"geoledger-residency-bundle/1","regions":7,"version":)";
  ASSERT_TRUE(WriteFileAtomically(lkg, SignRaw(unparsable + "3}", signer_)).ok());
  auto loaded = LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE(loaded->activated.has_value());
  EXPECT_TRUE(loaded->not_newer_unverified.ok());  // its signature verifies
  // Newer, the same file is parsed, and refused.
  ASSERT_TRUE(WriteFileAtomically(lkg, SignRaw(unparsable + "9}", signer_)).ok());
  EXPECT_EQ(LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv)).status().code(),
            StatusCode::kInvalidArgument);
  // A payload that does not end as a canonical one does has no version that
  // can be read that way: it counts as newer, and must verify in full.
  for (const std::string& tail : {std::string(R"(3 })"), std::string(R"(03})"), std::string(R"("3"})"),
                                  std::string(R"(3})").substr(0, 1)}) {
    ASSERT_TRUE(WriteFileAtomically(lkg, SignRaw(unparsable + tail, signer_)).ok());
    EXPECT_EQ(LoadLastKnownGood(*store, lkg, trusted_, testing::Audited(kv)).status().code(),
              StatusCode::kInvalidArgument)
        << tail;
  }
  EXPECT_EQ(engine->version(), 8u);
}

// A payload whose fields have the wrong JSON type is a bad bundle (400), not
// an exception (500 over HTTP, a failed start from the last-known-good file).
TEST_F(BundleTest, APayloadFieldOfTheWrongTypeIsInvalidNotAnException) {
  const std::string payload = DumpJson(nlohmann::json{
      {"format", 1}, {"regions", nlohmann::json::array()}, {"tenants", nlohmann::json::array()}, {"version", 1}});
  StatusOr<PolicyDocument> r = Internal("unset");
  EXPECT_NO_THROW(r = VerifyBundle(SignRaw(payload, signer_), trusted_, Jur()));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
}

}  // namespace
}  // namespace geoledger::residency
