#include "server/internal/http_wire.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace geoledger::server::internal {

using namespace Pistache;

// The bytes of one response, as Pistache 0.0.5's ResponseWriter would write
// them: status line, Content-Type, our headers, Connection, Content-Length.
// Header values never split the header block.
std::string Serialize(const Outgoing& out, bool keep_alive) {
  const HttpResponse& r = out.response;
  std::string wire;
  wire.reserve(160 + r.body.size() + 48 * r.headers.size());
  wire += out.version == Http::Version::Http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  wire += std::to_string(r.status);
  wire += ' ';
  wire += Http::codeString(static_cast<Http::Code>(r.status));
  wire += "\r\n";
  auto header = [&wire](std::string_view name, std::string_view value) {
    wire += name;
    wire += ": ";
    for (char c : value)
      if (c != '\r' && c != '\n') wire += c;
    wire += "\r\n";
  };
  if (!r.content_type.empty()) header("Content-Type", r.content_type);
  for (const auto& [name, value] : r.headers) header(name, value);
  header("Connection", keep_alive ? "Keep-Alive" : "Close");
  header("Content-Length", std::to_string(r.body.size()));
  wire += "\r\n";
  if (!out.head) wire += r.body;
  return wire;
}

// Sets the backlog of this process's listening TCP socket on `port` (a
// second listen(2) on a listening socket only changes its backlog). The
// library keeps its descriptor to itself, so it is found by its port.
bool RaiseListenBacklog(uint16_t port) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  bool raised = false;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == ::dirfd(dir)) continue;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage local{};
    len = sizeof local;
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
    uint16_t bound = 0;
    if (local.ss_family == AF_INET) bound = ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port);
    else if (local.ss_family == AF_INET6) bound = ntohs(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port);
    if (bound == port && ::listen(static_cast<int>(fd), kListenBacklog) == 0) raised = true;
  }
  ::closedir(dir);
  return raised;
}

}  // namespace geoledger::server::internal
