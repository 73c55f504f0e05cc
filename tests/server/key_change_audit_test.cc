// A key change and its audit entry are one write: the key routes over a real
// keyring and a real ledger on one KvStore. When the ledger takes no entry,
// the change is not made; when it does, both are stored.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "audit/ledger.h"
#include "common/clock.h"
#include "common/kv_store.h"
#include "crypto/keyring.h"
#include "geoledger/v1/audit.pb.h"
#include "server/dispatcher.h"
#include "server/key_routes.h"
#include "server/metrics.h"
#include "server/token_store.h"
#include "tests/residency/fixtures.h"

namespace geoledger::server {
namespace {

class KeyChangeAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signer_.emplace(std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32))));
    audit::Ledger::Options lo;
    lo.region = "eu-west-1";
    auto ledger = audit::Ledger::Open(kv_.get(), &*signer_, &SystemClock::Get(), lo);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(*ledger);
    crypto::KeyringOptions ko;
    ko.region = "eu-west-1";
    auto keyring = crypto::Keyring::Open(kv_.get(), root_, &SystemClock::Get(), ko);
    ASSERT_TRUE(keyring.ok()) << keyring.status().ToString();
    keyring_ = std::move(*keyring);
    engine_ = residency::testing::NewEngine();
    rewrap_ = std::make_unique<RewrapWorker>(keyring_.get(), ledger_.get());  // not started
    tokens_ = std::move(*TokenStore::Open(kv_.get(), &clock_));
    Dispatcher::Options o;
    o.access_log = false;
    d_ = std::make_unique<Dispatcher>(o, &clock_, &metrics_);
    d_->SetTokenStore(tokens_.get());
    KeyRouteDeps deps;
    deps.keyring = [this] { return keyring_.get(); };
    deps.ledger = [this] { return ledger_.get(); };
    deps.engine = [this]() -> const residency::Engine* { return engine_.get(); };
    deps.rewrap = [this] { return rewrap_.get(); };
    deps.pseudonymizer = &pseudonymizer_;
    deps.region = "eu-west-1";
    RegisterKeyRoutes(*d_, deps);
    keys_ = tokens_->Create("keys", {"keys"}, "", "test")->token;
  }
  void TearDown() override {
    d_->StopBlockingWorkers();
    (void)ledger_->Close();
  }
  HttpResponse Post(const std::string& path, const std::string& body) {
    HttpRequest r;
    r.method = "POST";
    r.path = path;
    r.headers.emplace_back("authorization", "Bearer " + keys_);
    r.headers.emplace_back("content-type", "application/json");
    r.body = body;
    return d_->Handle(r);
  }
  std::string Action(uint64_t index) {
    auto entries = ledger_->Entries(index, index + 1);
    EXPECT_TRUE(entries.ok()) << entries.status().ToString();
    v1::AuditEntry e;
    if (entries.ok()) {
      EXPECT_TRUE(e.ParseFromString((*entries)[0].bytes));
    }
    return e.action();
  }

  std::unique_ptr<KvStore> kv_ = NewMemoryKvStore();
  crypto::SecretBytes root_ = crypto::SecretBytes::Random(32);
  Pseudonymizer pseudonymizer_{&root_};
  std::optional<crypto::Ed25519Signer> signer_;
  std::unique_ptr<audit::Ledger> ledger_;
  std::unique_ptr<crypto::Keyring> keyring_;
  std::unique_ptr<residency::Engine> engine_;
  std::unique_ptr<RewrapWorker> rewrap_;
  ManualClock clock_;
  HttpMetrics metrics_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<Dispatcher> d_;
  std::string keys_;
};

TEST_F(KeyChangeAuditTest, AKeyChangeAndItsEntryAreStoredTogether) {
  const std::string alice = pseudonymizer_.Pseudonym("acme", "alice");
  auto sealed = keyring_->Seal("acme", alice, "r1", "to be forgotten");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  HttpResponse rotated = Post("/v1/tenants/acme/keys/rotate", "{}");
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  EXPECT_EQ(Action(nlohmann::json::parse(rotated.body)["audit_index"]), "key.rotated");
  HttpResponse shredded = Post("/v1/keys/shred", R"({"tenant":"acme","subject":"alice"})");
  ASSERT_EQ(shredded.status, 200) << shredded.body;
  EXPECT_EQ(Action(nlohmann::json::parse(shredded.body)["audit_index"]), "key.shredded");
  EXPECT_EQ(keyring_->Open("acme", alice, "r1", sealed->ciphertext).status().code(), StatusCode::kErased);
}

TEST_F(KeyChangeAuditTest, ALedgerThatTakesNoEntryRefusesTheChangeAndKeepsTheKeys) {
  const std::string alice = pseudonymizer_.Pseudonym("acme", "alice");
  auto sealed = keyring_->Seal("acme", alice, "r1", "kept");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  const uint64_t size = ledger_->size();
  ASSERT_TRUE(ledger_->Close().ok());  // from now on every append is refused
  HttpResponse shred = Post("/v1/keys/shred", R"({"tenant":"acme","subject":"alice"})");
  EXPECT_EQ(shred.status, 503) << shred.body;
  auto open = keyring_->Open("acme", alice, "r1", sealed->ciphertext);
  ASSERT_TRUE(open.ok()) << "shredded without its entry: " << open.status().ToString();
  EXPECT_EQ(*open, "kept");
  HttpResponse rotate = Post("/v1/tenants/acme/keys/rotate", "{}");
  EXPECT_EQ(rotate.status, 503) << rotate.body;
  EXPECT_EQ(keyring_->Info("acme")->current_version, 1u);
  EXPECT_EQ(ledger_->size(), size);
}

}  // namespace
}  // namespace geoledger::server
