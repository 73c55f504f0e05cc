// SHA-256 and HMAC-SHA256 (OpenSSL), constant-time comparison, randomness.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/secret.h"

namespace geoledger::crypto {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

Sha256Digest Sha256(std::string_view data);
// HMAC-SHA256 of `data` under `key`.
Sha256Digest HmacSha256(const SecretBytes& key, std::string_view data);

inline std::string_view AsView(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

// True when a and b have the same length and bytes. Time depends only on the
// lengths, never on where the first difference is.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// `n` bytes from the OS CSPRNG (libsodium).
std::string RandomBytes(size_t n);

}  // namespace geoledger::crypto
