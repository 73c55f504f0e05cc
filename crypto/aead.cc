#include "crypto/aead.h"

#include <sodium.h>

#include <algorithm>
#include <limits>

namespace geoledger::crypto {

static_assert(kAeadKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kAeadNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kAeadTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);

namespace {

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// The largest plaintext whose sealed form fits both libsodium's limit and a
// std::string.
size_t MaxPlaintextBytes() {
  const size_t sodium_max = crypto_aead_xchacha20poly1305_ietf_messagebytes_max();
  const size_t string_max = std::numeric_limits<size_t>::max() - kAeadOverheadBytes;
  return sodium_max < string_max ? sodium_max : string_max;
}

Status EmptyHandle() { return FailedPrecondition("aead: key handle holds no key"); }

}  // namespace

StatusOr<Aead> Aead::FromKey(const SecretBytes& key) {
  EnsureSodium();
  if (key.size() != kAeadKeyBytes) return InvalidArgument("aead: key must be 32 bytes");
  const auto* raw = reinterpret_cast<const char*>(key.Reveal(SecretAccess::Grant()));
  return Aead(SecretBytes::CopyFrom(std::string_view(raw, kAeadKeyBytes)));
}

StatusOr<Aead> Aead::FromKey(SecretBytes&& key) {
  EnsureSodium();
  if (key.size() != kAeadKeyBytes) return InvalidArgument("aead: key must be 32 bytes");
  return Aead(std::move(key));
}

StatusOr<std::string> Aead::Encrypt(std::string_view plaintext,
                                    std::string_view associated_data) const {
  std::string nonce(kAeadNonceBytes, '\0');
  randombytes_buf(nonce.data(), nonce.size());
  return Seal(nonce, plaintext, associated_data);
}

StatusOr<std::string> Aead::EncryptWithNonceForTesting(std::string_view nonce,
                                                       std::string_view plaintext,
                                                       std::string_view associated_data) const {
  if (nonce.size() != kAeadNonceBytes) return InvalidArgument("aead: nonce must be 24 bytes");
  return Seal(nonce, plaintext, associated_data);
}

StatusOr<std::string> Aead::Seal(std::string_view nonce, std::string_view plaintext,
                                 std::string_view associated_data) const {
  if (key_.size() != kAeadKeyBytes) return EmptyHandle();
  if (plaintext.size() > MaxPlaintextBytes()) return InvalidArgument("aead: plaintext too large");

  std::string out(kAeadNonceBytes + plaintext.size() + kAeadTagBytes, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  std::copy(nonce.begin(), nonce.end(), out.begin());
  unsigned long long sealed_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(
          dst + kAeadNonceBytes, &sealed_len, Bytes(plaintext), plaintext.size(),
          Bytes(associated_data), associated_data.size(), /*nsec=*/nullptr, Bytes(nonce),
          key_.Reveal(SecretAccess::Grant())) != 0 ||
      sealed_len != plaintext.size() + kAeadTagBytes) {
    sodium_memzero(out.data(), out.size());
    return Internal("aead: encryption failed");
  }
  return out;
}

StatusOr<std::string> Aead::Decrypt(std::string_view ciphertext,
                                    std::string_view associated_data) const {
  if (key_.size() != kAeadKeyBytes) return EmptyHandle();
  if (ciphertext.size() < kAeadOverheadBytes) return DataLoss("aead: ciphertext too short");

  const std::string_view nonce = ciphertext.substr(0, kAeadNonceBytes);
  const std::string_view sealed = ciphertext.substr(kAeadNonceBytes);
  std::string plaintext(sealed.size() - kAeadTagBytes, '\0');
  unsigned long long plaintext_len = 0;
  // libsodium verifies the tag before decrypting anything; on failure it
  // leaves the output zeroed. Wipe it regardless so no caller-visible buffer
  // ever holds unauthenticated bytes.
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plaintext.data()), &plaintext_len, /*nsec=*/nullptr,
          Bytes(sealed), sealed.size(), Bytes(associated_data), associated_data.size(),
          Bytes(nonce), key_.Reveal(SecretAccess::Grant())) != 0 ||
      plaintext_len != plaintext.size()) {
    sodium_memzero(plaintext.data(), plaintext.size());
    return DataLoss("aead: decryption failed");
  }
  return plaintext;
}

}  // namespace geoledger::crypto
