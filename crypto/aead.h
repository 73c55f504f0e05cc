// Authenticated encryption with associated data: XChaCha20-Poly1305-IETF
// (libsodium crypto_aead_xchacha20poly1305_ietf_*, draft-irtf-cfrg-xchacha).
//
// The wire format of a sealed message is
//
//   nonce (kAeadNonceBytes) || ciphertext (= plaintext length) || tag (kAeadTagBytes)
//
// Encrypt draws a fresh random 192-bit nonce for every call, so one key can
// seal an effectively unlimited number of messages without tracking nonces.
// The associated data is authenticated but neither encrypted nor stored:
// the caller must present the same bytes again to Decrypt (bind a ciphertext
// to its context, e.g. tenant, subject and key version, here).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "crypto/secret.h"

namespace geoledger::crypto {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 24;
inline constexpr size_t kAeadTagBytes = 16;
// Bytes a sealed message carries beyond its plaintext.
inline constexpr size_t kAeadOverheadBytes = kAeadNonceBytes + kAeadTagBytes;

// A key handle for XChaCha20-Poly1305. The key lives only in guarded memory
// (SecretBytes) and is never returned, logged or put into a Status message.
//
// Move-only. All const methods are safe to call concurrently on one handle.
// A moved-from handle holds no key; every operation on it fails with
// kFailedPrecondition.
class Aead {
 public:
  // Copies `key` (exactly kAeadKeyBytes) into a new handle; the caller keeps
  // and eventually releases its own SecretBytes.
  // kInvalidArgument when the key has any other size.
  [[nodiscard]] static StatusOr<Aead> FromKey(const SecretBytes& key);
  // Takes ownership of `key` (no copy: one locked allocation fewer).
  [[nodiscard]] static StatusOr<Aead> FromKey(SecretBytes&& key);

  Aead(Aead&&) noexcept = default;
  Aead& operator=(Aead&&) noexcept = default;
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  // Seals `plaintext` (may be empty) under a fresh random nonce, binding
  // `associated_data` (may be empty). Returns nonce || ciphertext || tag,
  // i.e. plaintext.size() + kAeadOverheadBytes bytes.
  // kInvalidArgument when the plaintext exceeds libsodium's message limit.
  [[nodiscard]] StatusOr<std::string> Encrypt(std::string_view plaintext,
                                              std::string_view associated_data) const;

  // Opens a message produced by Encrypt under this key with the same
  // `associated_data`. On any failure no plaintext, partial or otherwise, is
  // returned, and the message names no key material:
  //   kDataLoss "aead: ciphertext too short" when fewer than
  //     kAeadOverheadBytes bytes are given;
  //   kDataLoss "aead: decryption failed" when the tag does not verify
  //     (wrong key, wrong associated data, or any modified byte).
  [[nodiscard]] StatusOr<std::string> Decrypt(std::string_view ciphertext,
                                              std::string_view associated_data) const;

  // KNOWN-ANSWER TESTS ONLY. Like Encrypt, but with a caller-chosen `nonce`
  // (exactly kAeadNonceBytes, else kInvalidArgument). Sealing two different
  // messages under one key and one nonce destroys confidentiality and lets an
  // attacker forge messages: never call this outside tests, and never reuse a
  // nonce.
  [[nodiscard]] StatusOr<std::string> EncryptWithNonceForTesting(
      std::string_view nonce, std::string_view plaintext, std::string_view associated_data) const;

 private:
  explicit Aead(SecretBytes key) : key_(std::move(key)) {}

  // Seals with `nonce` (kAeadNonceBytes, already validated).
  StatusOr<std::string> Seal(std::string_view nonce, std::string_view plaintext,
                             std::string_view associated_data) const;

  SecretBytes key_;  // kAeadKeyBytes; immutable after construction
};

}  // namespace geoledger::crypto
