// SHA-256 and HMAC-SHA256 (OpenSSL), constant-time comparison, randomness.
#pragma once

#include <array>
#include <initializer_list>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/secret.h"

namespace geoledger::crypto {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

Sha256Digest Sha256(std::string_view data);
// SHA-256 of the concatenation of `parts`, without concatenating them.
Sha256Digest Sha256(std::initializer_list<std::string_view> parts);
// HMAC-SHA256 of `data` under `key`.
Sha256Digest HmacSha256(const SecretBytes& key, std::string_view data);
// HMAC-SHA256 under a key the caller derived for this call (e.g. a tenant's
// pseudonym key, itself an HMAC under a SecretBytes key) and wipes right
// after with Wipe(). Never pass a long-lived key: those stay in SecretBytes.
Sha256Digest HmacSha256WithDerivedKey(const Sha256Digest& key, std::string_view data);
// Overwrites `digest` with zeros in a way the compiler cannot drop.
void Wipe(Sha256Digest& digest);

inline std::string_view AsView(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

// True when a and b have the same length and bytes. Time depends only on the
// lengths, never on where the first difference is.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// `n` bytes from the OS CSPRNG (libsodium).
std::string RandomBytes(size_t n);

}  // namespace geoledger::crypto
