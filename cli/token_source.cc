#include "cli/token_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace geoledger::cli {
namespace {

std::string_view TrimSpace(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

StatusOr<std::string> CheckToken(std::string_view token, std::string_view source) {
  if (token.empty()) return InvalidArgument(std::string(source) + " is empty");
  if (!std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return InvalidArgument(std::string(source) +
                           " must hold a single token (visible ASCII, no spaces or control characters)");
  return std::string(token);
}

StatusOr<std::string> ReadTokenFile(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not hang; regular files ignore it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound("token file " + path + " does not exist");
    return PermissionDenied("cannot open token file " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return PermissionDenied("cannot stat token file " + path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("token file " + path + " is not a regular file");
  }
  if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    ::close(fd);
    return PermissionDenied("token file " + path + " is readable by group or others (mode " +
                            OctalMode(st.st_mode) + "); refusing to use it. Fix with: chmod 600 " + path);
  }
  std::string content;
  char buf[1024];
  while (content.size() <= kMaxTokenFileBytes) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return PermissionDenied("cannot read token file " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (content.size() > kMaxTokenFileBytes)
    return InvalidArgument("token file " + path + " is larger than " + std::to_string(kMaxTokenFileBytes) +
                           " bytes");
  return CheckToken(TrimSpace(content), "token file " + path);
}

StatusOr<std::string> ResolveToken(const std::string& token_file, const char* env_token) {
  if (!token_file.empty()) return ReadTokenFile(token_file);
  if (env_token != nullptr && env_token[0] != '\0')
    return CheckToken(TrimSpace(env_token), "environment variable GEOLEDGER_TOKEN");
  return InvalidArgument(
      "no API token: pass --token-file FILE, or set GEOLEDGER_TOKEN_FILE or GEOLEDGER_TOKEN");
}

}  // namespace geoledger::cli
