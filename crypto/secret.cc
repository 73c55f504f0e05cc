#include "crypto/secret.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

namespace geoledger::crypto {
namespace {

// Keys are 32 or 64 bytes and short-lived; giving each its own sodium_malloc
// (guard pages, mlock: ~10 system calls) cost more than the cryptography.
// Small secrets instead take a slot in chunks that sodium_malloc locked once
// (never swapped, excluded from core dumps), and are wiped when given back.
// Chunks are kept for the life of the process.
constexpr size_t kSlotBytes = 64;
constexpr size_t kChunkSlots = 1024;

class SmallSecretPool {
 public:
  uint8_t* Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) Grow();
    uint8_t* slot = free_.back();
    free_.pop_back();
    return slot;
  }
  void Give(uint8_t* slot) {
    sodium_memzero(slot, kSlotBytes);
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(slot);
  }

 private:
  void Grow() {  // requires mu_
    auto* chunk = static_cast<uint8_t*>(sodium_malloc(kSlotBytes * kChunkSlots));
    if (chunk == nullptr) std::abort();
    sodium_memzero(chunk, kSlotBytes * kChunkSlots);
    for (size_t i = kChunkSlots; i-- > 0;) free_.push_back(chunk + i * kSlotBytes);
  }
  std::mutex mu_;
  std::vector<uint8_t*> free_;  // guarded by mu_; zeroed slots
};

SmallSecretPool& Pool() {
  static auto* pool = new SmallSecretPool;  // never destroyed: secrets may outlive statics
  return *pool;
}

uint8_t* Allocate(size_t size) {
  if (size <= kSlotBytes) return Pool().Take();
  auto* data = static_cast<uint8_t*>(sodium_malloc(size));
  if (data == nullptr) std::abort();
  sodium_memzero(data, size);
  return data;
}

void Release(uint8_t* data, size_t size) {
  if (data == nullptr) return;
  if (size <= kSlotBytes) Pool().Give(data);
  else sodium_free(data);  // wipes before unmapping
}

}  // namespace

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

SecretBytes::SecretBytes(size_t size) : size_(size) {
  EnsureSodium();
  if (size == 0) return;
  data_ = Allocate(size);
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
    Release(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Release(data_, size_); }

}  // namespace geoledger::crypto
