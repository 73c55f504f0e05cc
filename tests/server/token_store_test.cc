#include "server/token_store.h"

#include <gtest/gtest.h>

namespace geoledger::server {
namespace {

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = NewMemoryKvStore();
    auto s = TokenStore::Open(kv_.get(), &clock_);
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  ManualClock clock_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<TokenStore> store_;
};

TEST_F(TokenStoreTest, CreatedTokenAuthenticatesWithSortedScopes) {
  auto issued = store_->Create("gw", {"decide", "audit:write"}, "", "admin");
  ASSERT_TRUE(issued.ok());
  auto who = store_->Authenticate(issued->token);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->name, "gw");
  EXPECT_EQ(who->scopes, (std::vector<std::string>{"audit:write", "decide"}));
  EXPECT_TRUE(who->HasScope("decide"));
  EXPECT_FALSE(who->HasScope("admin"));
}

TEST_F(TokenStoreTest, EverySingleByteChangeOfTheTokenIsRejected) {
  auto issued = store_->Create("gw", {"decide"}, "", "admin");
  ASSERT_TRUE(issued.ok());
  const std::string& t = issued->token;
  for (size_t i = 0; i < t.size(); ++i) {
    std::string bad = t;
    bad[i] = bad[i] == 'a' ? 'b' : 'a';
    if (bad == t) continue;
    EXPECT_EQ(store_->Authenticate(bad).status().code(), StatusCode::kUnauthenticated) << i;
  }
  EXPECT_FALSE(store_->Authenticate(t.substr(0, t.size() - 1)).ok());
  EXPECT_FALSE(store_->Authenticate(t + "A").ok());
  EXPECT_FALSE(store_->Authenticate("").ok());
}

TEST_F(TokenStoreTest, StoresOnlyTheSecretsHash) {
  auto issued = store_->Create("gw", {"decide"}, "", "admin");
  ASSERT_TRUE(issued.ok());
  std::string secret = issued->token.substr(issued->token.find('.') + 1);
  bool found = false;
  ASSERT_TRUE(kv_->Scan("tokens", "", [&](std::string_view, std::string_view v) {
                    if (std::string(v).find(secret) != std::string::npos) found = true;
                    return true;
                  }).ok());
  EXPECT_FALSE(found);
}

TEST_F(TokenStoreTest, ReopenRestoresTokensAndRevocations) {
  auto a = store_->Create("a", {"decide"}, "", "admin");
  auto b = store_->Create("b", {"keys"}, "acme", "admin");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(store_->Revoke(a->principal.id).ok());
  auto reopened = TokenStore::Open(kv_.get(), &clock_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->Authenticate(a->token).status().code(), StatusCode::kUnauthenticated);
  auto who = (*reopened)->Authenticate(b->token);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->tenant, "acme");
  EXPECT_EQ((*reopened)->List().size(), 2u);
}

TEST_F(TokenStoreTest, ValidatesNamesScopesAndUniqueness) {
  EXPECT_EQ(store_->Create("", {"decide"}, "", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create("a/b", {"decide"}, "", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create(std::string(65, 'a'), {"decide"}, "", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create("a", {}, "", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create("a", {"root"}, "", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create("a", {"keys", "keys"}, "", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create("a", {"keys"}, "bad tenant", "x").status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->Create("a", {"keys"}, "", "x").ok());
  EXPECT_EQ(store_->Create("a", {"decide"}, "", "x").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Revoke("0000000000000000").code(), StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, LastUnrestrictedAdminStays) {
  auto admin = store_->Create("admin", {"admin"}, "", "x");
  auto tenant_admin = store_->Create("t-admin", {"admin"}, "acme", "x");
  ASSERT_TRUE(admin.ok() && tenant_admin.ok());
  EXPECT_EQ(store_->Revoke(admin->principal.id).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Revoke(tenant_admin->principal.id).ok());
  auto second = store_->Create("admin-2", {"admin"}, "", "x");
  EXPECT_TRUE(store_->Revoke(admin->principal.id).ok());
  EXPECT_EQ(store_->Find(second->principal.id)->name, "admin-2");
}

TEST_F(TokenStoreTest, CorruptRecordFailsOpen) {
  KvBatch b;
  b.Put("tokens", "tok/abc", "\xff\xff not a proto");
  ASSERT_TRUE(kv_->Write(b, true).ok());
  EXPECT_EQ(TokenStore::Open(kv_.get(), &clock_).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace geoledger::server
