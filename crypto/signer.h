// Ed25519 signatures (libsodium, RFC 8032).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/secret.h"

namespace geoledger::crypto {

inline constexpr size_t kEd25519SeedBytes = 32;
inline constexpr size_t kEd25519PublicKeyBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;

// A signing key handle. The private key never leaves guarded memory.
// Thread-safe for concurrent Sign calls.
class Ed25519Signer {
 public:
  // Derives the key pair from a 32-byte seed (RFC 8032 private key).
  static StatusOr<Ed25519Signer> FromSeed(const SecretBytes& seed);

  // Raw 32-byte public key.
  const std::string& public_key() const { return public_key_; }
  // 64-byte detached signature of `message`.
  std::string Sign(std::string_view message) const;

 private:
  Ed25519Signer() = default;
  SecretBytes secret_key_;  // libsodium's 64-byte expanded secret key
  std::string public_key_;
};

// True only when `signature` is a valid Ed25519 signature of `message` by
// `public_key`. Wrong sizes are simply invalid.
[[nodiscard]] bool Ed25519Verify(std::string_view public_key, std::string_view message,
                                 std::string_view signature);

// The C2SP signed-note verifier key text for `name`:
//   <name>+<hex of key hash[0:4]>+<base64(0x01 || public_key)>
// where key hash = SHA-256(name || "\n" || 0x01 || public_key).
std::string NoteVerifierKey(std::string_view name, std::string_view public_key);

}  // namespace geoledger::crypto
