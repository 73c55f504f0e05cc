#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "common/encoding.h"
#include "crypto/hash.h"
#include "crypto/key_source.h"
#include "crypto/secret.h"
#include "crypto/signer.h"

namespace geoledger::crypto {
namespace {

std::string Hex(const Sha256Digest& d) { return HexEncode(AsView(d)); }
std::string Unhex(const std::string& h) { return *HexDecode(h); }

TEST(HashTest, Sha256KnownAnswers) {
  EXPECT_EQ(Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, HmacSha256Rfc4231Case2) {
  SecretBytes key = SecretBytes::CopyFrom("Jefe");
  EXPECT_EQ(Hex(HmacSha256(key, "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HashTest, ConstantTimeEqualsComparesLengthAndBytes) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_EQ(RandomBytes(32).size(), 32u);
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
}

TEST(SecretBytesTest, MoveTransfersOwnership) {
  SecretBytes a = SecretBytes::CopyFrom("secret");
  SecretBytes b = std::move(a);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  ASSERT_EQ(b.size(), 6u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.Reveal(SecretAccess::Grant())), 6), "secret");
}

struct Rfc8032Vector {
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};

TEST(Ed25519Test, Rfc8032Vectors) {
  const Rfc8032Vector vectors[] = {
      {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
       "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd"
       "25bf5f0595bbe24655141438e7a100b"},
      {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
       "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c3"
       "87b2eaeb4302aeeb00d291612bb0c00"},
  };
  for (const auto& v : vectors) {
    auto signer = Ed25519Signer::FromSeed(SecretBytes::CopyFrom(Unhex(v.seed)));
    ASSERT_TRUE(signer.ok());
    EXPECT_EQ(HexEncode(signer->public_key()), v.public_key);
    std::string msg = Unhex(v.message);
    std::string sig = signer->Sign(msg);
    EXPECT_EQ(HexEncode(sig), v.signature);
    EXPECT_TRUE(Ed25519Verify(signer->public_key(), msg, sig));
    std::string tampered = sig;
    tampered[10] ^= 1;
    EXPECT_FALSE(Ed25519Verify(signer->public_key(), msg, tampered));
    EXPECT_FALSE(Ed25519Verify(signer->public_key(), msg + "x", sig));
    EXPECT_FALSE(Ed25519Verify(signer->public_key(), msg, sig.substr(1)));
  }
  EXPECT_FALSE(Ed25519Signer::FromSeed(SecretBytes::CopyFrom("short")).ok());
}

TEST(Ed25519Test, NoteVerifierKeyMatchesC2spExample) {
  // From the C2SP signed-note specification.
  const std::string vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
  std::string typed = *Base64Decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  ASSERT_EQ(typed.size(), 33u);
  EXPECT_EQ(NoteVerifierKey("PeterNeumann", typed.substr(1)), vkey);
}

class KeySourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/keys-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::string dir_;
};

TEST_F(KeySourceTest, DevKeysAreCreatedOnceWithMode0600) {
  bool created = false;
  ASSERT_TRUE(GenerateDevKeys(dir_, &created).ok());
  EXPECT_TRUE(created);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/root.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto source = NewFileKeySource(dir_);
  auto root1 = source->LoadRootKey();
  ASSERT_TRUE(root1.ok());
  EXPECT_EQ(root1->size(), kRootKeyBytes);
  ASSERT_TRUE(GenerateDevKeys(dir_, &created).ok());
  EXPECT_FALSE(created);  // existing keys are never replaced
  auto root2 = source->LoadRootKey();
  EXPECT_EQ(std::memcmp(root1->Reveal(SecretAccess::Grant()), root2->Reveal(SecretAccess::Grant()), 32), 0);
  EXPECT_TRUE(source->LoadAuditSigningSeed().ok());
  EXPECT_TRUE(source->LoadPolicySigningSeed().ok());
  ASSERT_EQ(::stat((dir_ + "/policy-signing.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(KeySourceTest, MissingLooseOrMalformedKeysAreRefused) {
  auto source = NewFileKeySource(dir_);
  EXPECT_EQ(source->LoadRootKey().status().code(), StatusCode::kNotFound);
  bool created = false;
  ASSERT_TRUE(GenerateDevKeys(dir_, &created).ok());
  ::chmod((dir_ + "/root.key").c_str(), 0640);
  EXPECT_EQ(source->LoadRootKey().status().code(), StatusCode::kPermissionDenied);
  ::chmod((dir_ + "/root.key").c_str(), 0600);
  std::ofstream(dir_ + "/root.key", std::ios::app) << "x";
  EXPECT_EQ(source->LoadRootKey().status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace geoledger::crypto
