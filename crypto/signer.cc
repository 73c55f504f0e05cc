#include "crypto/signer.h"

#include <sodium.h>

#include "common/encoding.h"
#include "crypto/hash.h"

namespace geoledger::crypto {

StatusOr<Ed25519Signer> Ed25519Signer::FromSeed(const SecretBytes& seed) {
  EnsureSodium();
  if (seed.size() != kEd25519SeedBytes) return InvalidArgument("ed25519: seed must be 32 bytes");
  Ed25519Signer s;
  s.secret_key_ = SecretBytes(crypto_sign_SECRETKEYBYTES);
  s.public_key_.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  auto access = SecretAccess::Grant();
  if (crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(s.public_key_.data()),
                               s.secret_key_.RevealMutable(access), seed.Reveal(access)) != 0) {
    return Internal("ed25519: key derivation failed");
  }
  return s;
}

std::string Ed25519Signer::Sign(std::string_view message) const {
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_key_.Reveal(SecretAccess::Grant()));
  return sig;
}

bool Ed25519Verify(std::string_view public_key, std::string_view message,
                   std::string_view signature) {
  EnsureSodium();
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES)
    return false;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(),
                                     reinterpret_cast<const unsigned char*>(public_key.data())) == 0;
}

std::string NoteVerifierKey(std::string_view name, std::string_view public_key) {
  std::string typed_key = std::string(1, '\x01') + std::string(public_key);
  auto h = Sha256(std::string(name) + "\n" + typed_key);
  return std::string(name) + "+" + HexEncode(std::string_view(reinterpret_cast<const char*>(h.data()), 4)) +
         "+" + Base64Encode(typed_key);
}

}  // namespace geoledger::crypto
