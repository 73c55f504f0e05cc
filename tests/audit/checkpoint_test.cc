#include "audit/checkpoint.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "crypto/hash.h"

namespace geoledger::audit {
namespace {

// Known answer from golang.org/x/mod/sumdb/note, the reference
// implementation of C2SP signed notes (its package documentation and
// TestSign): the PeterNeumann key, text and signed note.
constexpr char kGoSigner[] = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";  // 0x01 || seed
constexpr char kGoVerifier[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr char kGoText[] =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
constexpr char kGoNote[] =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
    "\xe2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

crypto::Ed25519Signer GoSigner() {
  std::string typed = *Base64Decode(kGoSigner);
  return std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::CopyFrom(typed.substr(1))));
}

crypto::Ed25519Signer FreshSigner() {
  return std::move(*crypto::Ed25519Signer::FromSeed(crypto::SecretBytes::Random(32)));
}

Checkpoint Sample() {
  auto root = crypto::Sha256("root");
  return Checkpoint{"geoledger/eu-west-1", 42, std::string(crypto::AsView(root))};
}

TEST(SignedNoteTest, SignsAndOpensTheGoReferenceNote) {
  auto signer = GoSigner();
  auto vk = ParseVerifierKey(kGoVerifier);
  ASSERT_TRUE(vk.ok()) << vk.status().ToString();
  EXPECT_EQ(vk->name, "PeterNeumann");
  EXPECT_EQ(vk->public_key, signer.public_key());
  EXPECT_EQ(SignNote(kGoText, "PeterNeumann", signer), kGoNote);
  auto text = OpenNote(kGoNote, "PeterNeumann", vk->public_key);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, kGoText);
}

TEST(SignedNoteTest, VerifierKeyWithWrongHashOrTypeIsRejected) {
  EXPECT_FALSE(ParseVerifierKey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").ok());
  EXPECT_FALSE(ParseVerifierKey("PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").ok());
  EXPECT_FALSE(ParseVerifierKey("Peter+Neumann").ok());
  EXPECT_FALSE(ParseVerifierKey("").ok());
}

TEST(CheckpointTest, RoundTripsThroughTheSignedNote) {
  auto signer = FreshSigner();
  Checkpoint cp = Sample();
  std::string note = SignCheckpoint(cp, signer);
  EXPECT_EQ(note.rfind("geoledger/eu-west-1\n42\n" + Base64Encode(cp.root_hash) + "\n\n\xe2\x80\x94 geoledger/eu-west-1 ", 0), 0u);
  auto opened = OpenCheckpoint(note, cp.origin, signer.public_key());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->size, 42u);
  EXPECT_EQ(opened->root_hash, cp.root_hash);
}

TEST(CheckpointTest, ForgedOrEditedCheckpointsAreRejected) {
  auto signer = FreshSigner();
  auto other = FreshSigner();
  Checkpoint cp = Sample();
  std::string note = SignCheckpoint(cp, signer);
  // Edited size.
  std::string edited = note;
  edited.replace(edited.find("\n42\n"), 4, "\n43\n");
  EXPECT_EQ(OpenCheckpoint(edited, cp.origin, signer.public_key()).status().code(), StatusCode::kPermissionDenied);
  // Signed by another key under the same name (a forgery).
  EXPECT_EQ(OpenCheckpoint(SignCheckpoint(cp, other), cp.origin, signer.public_key()).status().code(),
            StatusCode::kPermissionDenied);
  // Wrong origin.
  EXPECT_FALSE(OpenCheckpoint(note, "geoledger/us-east-1", signer.public_key()).ok());
  // Every single-byte flip is caught.
  for (size_t i = 0; i < note.size(); ++i) {
    std::string bad = note;
    bad[i] ^= 0x01;
    EXPECT_FALSE(OpenCheckpoint(bad, cp.origin, signer.public_key()).ok()) << "byte " << i;
  }
}

TEST(CheckpointTest, CosignaturesByOtherKeysAreIgnored) {
  auto signer = FreshSigner();
  auto witness = FreshSigner();
  Checkpoint cp = Sample();
  std::string witness_line = SignNote(cp.Body(), "witness.example", witness);
  witness_line = witness_line.substr(witness_line.find("\n\n") + 2);
  std::string note = SignCheckpoint(cp, signer);
  std::string cosigned = note.substr(0, note.find("\n\n") + 2) + witness_line + note.substr(note.find("\n\n") + 2);
  EXPECT_TRUE(OpenCheckpoint(cosigned, cp.origin, signer.public_key()).ok());
}

TEST(CheckpointTest, MalformedNotesAreRejectedWithoutCrashing) {
  auto signer = FreshSigner();
  for (std::string bad : {std::string(""), std::string("geoledger/x\n"), std::string("a\n1\nAAAA\n"),
                          std::string("a\n01\nAAAA\n\n\xe2\x80\x94 a AAAAAAAA\n"),
                          std::string("a\n1\n\n\n\xe2\x80\x94 a AAAA\n"), std::string("\n\n"),
                          std::string(70000, 'x')}) {
    EXPECT_FALSE(OpenCheckpoint(bad, "a", signer.public_key()).ok()) << bad.substr(0, 40);
  }
}

}  // namespace
}  // namespace geoledger::audit
