#include "crypto/aead.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "crypto/secret.h"

namespace geoledger::crypto {
namespace {

std::string Unhex(std::string_view h) { return *HexDecode(h); }

// AEAD_XChaCha20_Poly1305 known answer from draft-irtf-cfrg-xchacha-03,
// Appendix A.3.1 ("Developer-Friendly Test Vectors"; same values as A.1),
// https://datatracker.ietf.org/doc/html/draft-irtf-cfrg-xchacha-03#appendix-A.3.1
// (checked against the draft source, github.com/bikeshedders/xchacha-rfc,
// draft-irtf-cfrg-xchacha-rfc-03.txt).
constexpr char kVectorKey[] = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
constexpr char kVectorNonce[] = "404142434445464748494a4b4c4d4e4f5051525354555657";
constexpr char kVectorAad[] = "50515253c0c1c2c3c4c5c6c7";
constexpr char kVectorPlaintext[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    "future, sunscreen would be it.";
constexpr char kVectorCiphertext[] =
    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
    "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
    "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
    "21f9664c97637da9768812f615c68b13b52e";
constexpr char kVectorTag[] = "c0875924c1c7987947deafd8780acf49";

Aead VectorAead() {
  auto aead = Aead::FromKey(SecretBytes::CopyFrom(Unhex(kVectorKey)));
  EXPECT_TRUE(aead.ok()) << aead.status().ToString();
  return std::move(aead).value();
}

// nonce || ciphertext || tag of the draft vector.
std::string VectorSealed() {
  return Unhex(kVectorNonce) + Unhex(kVectorCiphertext) + Unhex(kVectorTag);
}

Aead RandomAead() {
  auto aead = Aead::FromKey(SecretBytes::Random(kAeadKeyBytes));
  EXPECT_TRUE(aead.ok()) << aead.status().ToString();
  return std::move(aead).value();
}

void ExpectDecryptionFailed(const StatusOr<std::string>& result) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(result.status().message(), "aead: decryption failed");
}

TEST(AeadTest, KnownAnswerXChaChaDraftA31Encrypts) {
  ASSERT_EQ(std::string(kVectorPlaintext).size(), 114u);  // the draft's plaintext, byte for byte
  Aead aead = VectorAead();
  auto sealed =
      aead.EncryptWithNonceForTesting(Unhex(kVectorNonce), kVectorPlaintext, Unhex(kVectorAad));
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(HexEncode(*sealed), std::string(kVectorNonce) + kVectorCiphertext + kVectorTag);
}

TEST(AeadTest, KnownAnswerXChaChaDraftA31Decrypts) {
  auto opened = VectorAead().Decrypt(VectorSealed(), Unhex(kVectorAad));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, kVectorPlaintext);
}

TEST(AeadTest, RoundTripsAndSealedSizeIsPlaintextPlusOverhead) {
  Aead aead = RandomAead();
  const std::string plaintext = "subject record 42";
  auto sealed = aead.Encrypt(plaintext, "tenant=t1");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), plaintext.size() + kAeadOverheadBytes);
  EXPECT_EQ(sealed->find(plaintext), std::string::npos);
  auto opened = aead.Decrypt(*sealed, "tenant=t1");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, plaintext);
}

TEST(AeadTest, EmptyPlaintextRoundTrips) {
  Aead aead = RandomAead();
  for (std::string_view ad : {std::string_view(), std::string_view("ctx")}) {
    auto sealed = aead.Encrypt("", ad);
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed->size(), kAeadOverheadBytes);
    auto opened = aead.Decrypt(*sealed, ad);
    ASSERT_TRUE(opened.ok());
    EXPECT_TRUE(opened->empty());
  }
}

TEST(AeadTest, EncryptingTwiceUsesFreshNonces) {
  Aead aead = RandomAead();
  auto a = aead.Encrypt("same plaintext", "ad");
  auto b = aead.Encrypt("same plaintext", "ad");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->substr(0, kAeadNonceBytes), b->substr(0, kAeadNonceBytes));
  EXPECT_NE(*a, *b);
  EXPECT_EQ(*aead.Decrypt(*a, "ad"), *aead.Decrypt(*b, "ad"));
}

TEST(AeadTest, FlippingAnyByteOfNonceCiphertextOrTagFails) {
  Aead aead = VectorAead();
  const std::string sealed = VectorSealed();
  const std::string aad = Unhex(kVectorAad);
  ASSERT_TRUE(aead.Decrypt(sealed, aad).ok());
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string tampered = sealed;
      tampered[i] = static_cast<char>(static_cast<unsigned char>(tampered[i]) ^ mask);
      SCOPED_TRACE("byte " + std::to_string(i) + " mask " + std::to_string(mask));
      ExpectDecryptionFailed(aead.Decrypt(tampered, aad));
    }
  }
}

TEST(AeadTest, WrongAssociatedDataFails) {
  Aead aead = VectorAead();
  const std::string sealed = VectorSealed();
  std::string aad = Unhex(kVectorAad);
  ExpectDecryptionFailed(aead.Decrypt(sealed, ""));
  ExpectDecryptionFailed(aead.Decrypt(sealed, aad + "x"));
  ExpectDecryptionFailed(aead.Decrypt(sealed, aad.substr(1)));
  aad[0] ^= 1;
  ExpectDecryptionFailed(aead.Decrypt(sealed, aad));

  Aead random = RandomAead();
  auto with_ad = random.Encrypt("pt", "ad");
  ASSERT_TRUE(with_ad.ok());
  ExpectDecryptionFailed(random.Decrypt(*with_ad, ""));
  auto without_ad = random.Encrypt("pt", "");
  ASSERT_TRUE(without_ad.ok());
  ExpectDecryptionFailed(random.Decrypt(*without_ad, "ad"));
}

TEST(AeadTest, TruncatedOrExtendedInputFails) {
  Aead aead = VectorAead();
  const std::string sealed = VectorSealed();
  const std::string aad = Unhex(kVectorAad);
  for (size_t len = 0; len < sealed.size(); ++len) {
    SCOPED_TRACE("length " + std::to_string(len));
    auto opened = aead.Decrypt(std::string_view(sealed).substr(0, len), aad);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
    if (len < kAeadOverheadBytes) {
      EXPECT_EQ(opened.status().message(), "aead: ciphertext too short");
    } else {
      EXPECT_EQ(opened.status().message(), "aead: decryption failed");
    }
  }
  // Dropping bytes from the front (the nonce) also fails.
  ExpectDecryptionFailed(aead.Decrypt(std::string_view(sealed).substr(1), aad));
  ExpectDecryptionFailed(aead.Decrypt(sealed + std::string(1, '\0'), aad));
}

TEST(AeadTest, WrongKeyFails) {
  auto other_key = Unhex(kVectorKey);
  other_key[31] ^= 1;
  auto other = Aead::FromKey(SecretBytes::CopyFrom(other_key));
  ASSERT_TRUE(other.ok());
  ExpectDecryptionFailed(other->Decrypt(VectorSealed(), Unhex(kVectorAad)));
  ExpectDecryptionFailed(RandomAead().Decrypt(VectorSealed(), Unhex(kVectorAad)));
}

TEST(AeadTest, FromKeyRejectsWrongSizes) {
  for (size_t size : {size_t{0}, size_t{16}, kAeadKeyBytes - 1, kAeadKeyBytes + 1, size_t{64}}) {
    auto aead = Aead::FromKey(SecretBytes::Random(size));
    ASSERT_FALSE(aead.ok()) << size;
    EXPECT_EQ(aead.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(AeadTest, FromKeyCopiesTheKey) {
  SecretBytes key = SecretBytes::CopyFrom(Unhex(kVectorKey));
  auto aead = Aead::FromKey(key);
  ASSERT_TRUE(aead.ok());
  key = SecretBytes();  // the caller releases its copy; the handle keeps working
  auto opened = aead->Decrypt(VectorSealed(), Unhex(kVectorAad));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, kVectorPlaintext);
}

TEST(AeadTest, EncryptWithNonceForTestingRejectsWrongNonceSize) {
  Aead aead = VectorAead();
  for (size_t size : {size_t{0}, size_t{12}, kAeadNonceBytes - 1, kAeadNonceBytes + 1}) {
    auto sealed = aead.EncryptWithNonceForTesting(std::string(size, 'n'), "pt", "ad");
    ASSERT_FALSE(sealed.ok()) << size;
    EXPECT_EQ(sealed.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(AeadTest, MovedFromHandleFailsClosed) {
  Aead a = RandomAead();
  Aead b = std::move(a);
  // NOLINTBEGIN(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(a.Encrypt("pt", "").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(a.Decrypt(std::string(64, 'x'), "").status().code(), StatusCode::kFailedPrecondition);
  // NOLINTEND(bugprone-use-after-move)
  auto sealed = b.Encrypt("pt", "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(*b.Decrypt(*sealed, ""), "pt");
}

TEST(AeadTest, ConcurrentUseOfOneHandle) {
  const Aead aead = RandomAead();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&aead, &failures, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string pt = "thread " + std::to_string(t) + " message " + std::to_string(i);
        auto sealed = aead.Encrypt(pt, "ad");
        if (!sealed.ok()) {
          ++failures[t];
          continue;
        }
        auto opened = aead.Decrypt(*sealed, "ad");
        if (!opened.ok() || *opened != pt) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace geoledger::crypto
