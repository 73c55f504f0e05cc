#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/key_source.h"

namespace geoledger::crypto {
namespace {

constexpr char kRootKeyFile[] = "root.key";
constexpr char kAuditSigningKeyFile[] = "audit-signing.key";
constexpr char kPolicySigningKeyFile[] = "policy-signing.key";

// Reads exactly `size` bytes from a 0600 file straight into guarded memory.
StatusOr<SecretBytes> ReadKeyFile(const std::string& path, size_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("key file missing: " + path);
    return PermissionDenied("cannot open key file " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return PermissionDenied("key file is not a regular file: " + path);
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return PermissionDenied("key file " + path + " must have mode 0600 (group/other access found)");
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    return PermissionDenied("key file " + path + " is not owned by the service user");
  }
  if (static_cast<size_t>(st.st_size) != size) {
    ::close(fd);
    return DataLoss("key file " + path + " has the wrong size");
  }
  SecretBytes key(size);
  uint8_t* dst = key.RevealMutable(SecretAccess::Grant());
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, dst + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return DataLoss("short read on key file " + path);
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  return key;
}

Status WriteNewKeyFile(const std::string& path, size_t size, bool* created) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::Ok();
    return Internal("cannot create key file " + path + ": " + std::strerror(errno));
  }
  SecretBytes key = SecretBytes::Random(size);
  const uint8_t* src = key.Reveal(SecretAccess::Grant());
  size_t put = 0;
  while (put < size) {
    ssize_t n = ::write(fd, src + put, size - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return Internal("cannot write key file " + path);
    }
    put += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return Internal("cannot fsync key file " + path);
  }
  ::close(fd);
  *created = true;
  return Status::Ok();
}

class FileKeySource final : public KeySource {
 public:
  explicit FileKeySource(std::string dir) : dir_(std::move(dir)) {}
  StatusOr<SecretBytes> LoadRootKey() const override {
    return ReadKeyFile(dir_ + "/" + kRootKeyFile, kRootKeyBytes);
  }
  StatusOr<SecretBytes> LoadAuditSigningSeed() const override {
    return ReadKeyFile(dir_ + "/" + kAuditSigningKeyFile, crypto_sign_SEEDBYTES);
  }
  StatusOr<SecretBytes> LoadPolicySigningSeed() const override {
    return ReadKeyFile(dir_ + "/" + kPolicySigningKeyFile, crypto_sign_SEEDBYTES);
  }

 private:
  std::string dir_;
};

}  // namespace

std::unique_ptr<KeySource> NewFileKeySource(const std::string& keys_dir) {
  return std::make_unique<FileKeySource>(keys_dir);
}

Status GenerateDevKeys(const std::string& keys_dir, bool* created) {
  EnsureSodium();
  *created = false;
  if (::mkdir(keys_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Internal("cannot create key directory " + keys_dir + ": " + std::strerror(errno));
  GL_RETURN_IF_ERROR(WriteNewKeyFile(keys_dir + "/" + kRootKeyFile, kRootKeyBytes, created));
  GL_RETURN_IF_ERROR(
      WriteNewKeyFile(keys_dir + "/" + kAuditSigningKeyFile, crypto_sign_SEEDBYTES, created));
  GL_RETURN_IF_ERROR(
      WriteNewKeyFile(keys_dir + "/" + kPolicySigningKeyFile, crypto_sign_SEEDBYTES, created));
  return Status::Ok();
}

}  // namespace geoledger::crypto
