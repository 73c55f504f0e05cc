#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace geoledger {

StatusOr<std::optional<std::string>> ReadRegularFile(const std::string& path, struct stat* st) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
  // below); a regular file ignores it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Internal("read " + path + ": " + std::strerror(errno));
  }
  struct stat got {};
  if (::fstat(fd, &got) != 0 || !S_ISREG(got.st_mode)) {
    ::close(fd);
    return Internal("read " + path + ": not a regular file");
  }
  std::string out;
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Internal("read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (st != nullptr) *st = got;
  return std::optional<std::string>(std::move(out));
}

Status RenameDurably(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return Internal("rename " + from + ": " + std::strerror(errno));
  const size_t slash = to.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : to.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Internal("open " + dir + ": " + std::strerror(errno));
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return Internal("fsync " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // created 0600
  if (fd < 0) return Internal("create " + tmp + ": " + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Internal(std::string(what) + " " + tmp + ": " + std::strerror(err));
  };
  if (mode != 0600 && ::fchmod(fd, mode) != 0) return fail("chmod");
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Internal("close " + tmp + ": " + std::strerror(err));
  }
  Status renamed = RenameDurably(tmp, path);
  if (!renamed.ok()) ::unlink(tmp.c_str());  // gone if the rename happened
  return renamed;
}

}  // namespace geoledger
