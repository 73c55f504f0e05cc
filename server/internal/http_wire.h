// The bytes on the wire of geoledgerd's HTTP answers, and the listening
// socket's backlog: the parts of the HTTP server that need no connection
// state. Internal to server/http_server.cc.
#pragma once

#include <pistache/http.h>

#include <cstdint>
#include <string>

#include "server/http_types.h"

namespace geoledger::server::internal {

// Connections the kernel may hold established but not yet accepted.
// Pistache 0.0.5 listens with 128 whatever Endpoint::Options::backlog says
// (Endpoint::init does not pass it on): a burst of connects beyond that
// (gateway workers opening their pools at once, after a restart) overflowed,
// and each dropped SYN cost its client a 1 s retransmission (measured: 260
// of 500 connects). The kernel caps it at net.core.somaxconn (4096 by
// default).
constexpr int kListenBacklog = 4096;

struct Outgoing {
  HttpResponse response;
  bool keep_alive;
  Pistache::Http::Version version;
  bool head = false;  // answer to HEAD: headers only (RFC 9110 §9.3.2)
};

// The bytes of one response, as Pistache 0.0.5's ResponseWriter would write
// them: status line, Content-Type, our headers, Connection, Content-Length.
// Header values never split the header block.
std::string Serialize(const Outgoing& out, bool keep_alive);

// Sets the backlog of this process's listening TCP socket on `port` (a
// second listen(2) on a listening socket only changes its backlog). The
// library keeps its descriptor to itself, so it is found by its port.
bool RaiseListenBacklog(uint16_t port);

}  // namespace geoledger::server::internal
