#include "crypto/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <cstdlib>

namespace geoledger::crypto {

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest out;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

Sha256Digest HmacSha256(const SecretBytes& key, std::string_view data) {
  Sha256Digest out;
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.Reveal(SecretAccess::Grant()), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &len) == nullptr ||
      len != out.size()) {
    std::abort();  // only fails on allocation failure inside OpenSSL
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RandomBytes(size_t n) {
  EnsureSodium();
  std::string out(n, '\0');
  if (n > 0) randombytes_buf(out.data(), n);
  return out;
}

}  // namespace geoledger::crypto
