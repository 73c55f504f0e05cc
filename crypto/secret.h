// Secret bytes live in libsodium guarded memory: locked (never swapped),
// excluded from core dumps where the OS allows it, and wiped on release.
// Secrets of up to 64 bytes (keys) share locked chunks, one 64-byte slot
// each, without a guard page per secret; larger ones get their own
// sodium_malloc allocation with guard pages.
//
// The only way to read the bytes is SecretBytes::Reveal(SecretAccess), so
// every place that touches key material can be found with
// `grep -rn SecretAccess::Grant`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace geoledger::crypto {

// A capability naming a place allowed to read secret bytes.
class SecretAccess {
 public:
  static SecretAccess Grant() { return SecretAccess(); }

 private:
  SecretAccess() = default;
};

// Initialises libsodium once; safe to call from any thread. Aborts the process
// if the library cannot initialise (no randomness source), since nothing
// secure can be done without it.
void EnsureSodium();

class SecretBytes {
 public:
  SecretBytes() = default;
  // Allocates `size` zeroed, locked bytes. Aborts on allocation failure.
  explicit SecretBytes(size_t size);
  // Copies `bytes` into guarded memory. The caller wipes its own copy.
  static SecretBytes CopyFrom(std::string_view bytes);
  // `size` fresh random bytes.
  static SecretBytes Random(size_t size);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  const uint8_t* Reveal(SecretAccess) const { return data_; }
  uint8_t* RevealMutable(SecretAccess) { return data_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace geoledger::crypto
