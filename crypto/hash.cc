#include "crypto/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <cstdlib>

namespace geoledger::crypto {

namespace {

// The digest is fetched once and each thread reuses one context: OpenSSL 3's
// one-shot SHA256() looks the algorithm up and allocates a context per call,
// which costs more than hashing a small audit entry.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct ThreadDigestContext {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~ThreadDigestContext() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

Sha256Digest Sha256(std::initializer_list<std::string_view> parts) {
  thread_local ThreadDigestContext holder;
  Sha256Digest out;
  unsigned int len = 0;
  EVP_MD_CTX* ctx = holder.ctx;
  bool ok = ctx != nullptr && Sha256Md() != nullptr && EVP_DigestInit_ex2(ctx, Sha256Md(), nullptr) == 1;
  for (std::string_view p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out.size();
  if (!ok) std::abort();  // only fails on allocation failure inside OpenSSL
  return out;
}

Sha256Digest Sha256(std::string_view data) { return Sha256({data}); }

Sha256Digest HmacSha256WithDerivedKey(const Sha256Digest& key, std::string_view data) {
  Sha256Digest out;
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out.data(), &len) == nullptr ||
      len != out.size()) {
    std::abort();
  }
  return out;
}

void Wipe(Sha256Digest& digest) { sodium_memzero(digest.data(), digest.size()); }

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
