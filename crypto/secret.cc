#include "crypto/secret.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

namespace geoledger::crypto {

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

SecretBytes::SecretBytes(size_t size) : size_(size) {
  EnsureSodium();
  if (size == 0) return;
  data_ = static_cast<uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) std::abort();
  sodium_memzero(data_, size);
}

SecretBytes SecretBytes::CopyFrom(std::string_view bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) std::memcpy(s.data_, bytes.data(), bytes.size());
  return s;
}

SecretBytes SecretBytes::Random(size_t size) {
  SecretBytes s(size);
  if (size > 0) randombytes_buf(s.data_, size);
  return s;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);  // sodium_free wipes before unmapping
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);
}

}  // namespace geoledger::crypto
