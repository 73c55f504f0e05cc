// The HTTP/1.1 frontend on Pistache 0.0.5. It owns connections and request
// framing; everything about a request's meaning is the Dispatcher's.
//
// Pistache provides the listener, the epoll reactors, TLS and the idle
// sweep. On top of it, this frontend:
//  * frames requests itself (server/http_parser.h), so every pipelined
//    request in a read is served (the library's parser kept only the first)
//    and input that parsers could read two ways is refused;
//  * answers in request order, including answers completed later on other
//    threads (deferred routes), and writes them straight to the socket
//    instead of through the library's eventfd-woken write queue (used only
//    for TLS); what the socket does not take at once is written by a thread
//    of its own as the socket drains, also after the client half-closed,
//    which the library took for a hang-up and dropped queued bytes on;
//  * keeps HTTP/1.1 connections persistent by default (RFC 9112 §9.3) — the
//    library marked every response to a request without a Connection header
//    "Connection: Close";
//  * enforces separate limits for the request line plus headers (431) and
//    the body (413, decided from Content-Length before the body arrives),
//    answered as problem documents, after which the connection is closed;
//  * answers malformed requests with a 400 problem document and a close;
//  * closes a plain TCP connection after its last answer in stages: it stops
//    writing, then reads and drops what the client still sends for a
//    bounded time and size, so the client is not reset before it reads the
//    answer.
//
// Known limit of the library, not fixed here: with TLS, Pistache performs the
// handshake with a blocking SSL_accept on its single accept thread, bounded
// by a fixed 10 s socket timeout. A client that connects and stays silent
// delays every other new TLS connection by up to 10 s. Production
// deployments terminate TLS at the gateway or keep geoledgerd on a trusted
// network (compliance-docs/threat-model.md).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/dispatcher.h"

namespace geoledger::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port; see HttpServer::port()
  int threads = 1;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds keepalive_timeout{60'000};
  std::string tls_cert, tls_key, tls_client_ca;
  // Counts accepted and open connections when set (it gains a collector for
  // the open ones); must outlive the server. Set it before serving starts.
  HttpMetrics* metrics = nullptr;
  // Beyond this many open connections a new one is answered 503 (with
  // Retry-After) and closed, so a flood of connections never exhausts the
  // process's descriptors (Pistache 0.0.5's accept loop then spins on
  // EMFILE). 0: no cap.
  size_t max_connections = 0;
  // Beyond this many open connections from one client address, a new one
  // from that address is answered the same way, so one client (a leaking
  // pool, a flood) cannot take every connection from the others. 0: no cap.
  size_t max_connections_per_client = 0;
};

class HttpServer {
 public:
  // Binds and starts serving on background threads. `dispatcher` must outlive
  // the server. kUnavailable when the address cannot be bound; kInvalidArgument
  // for unusable TLS files.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                     Dispatcher* dispatcher);
  ~HttpServer();

  uint16_t port() const { return port_; }
  // Waits, until `deadline` at the latest, for the answer bytes that
  // clients have not taken yet to go out; returns the connections still
  // waiting.
  size_t WaitForQueuedWrites(std::chrono::steady_clock::time_point deadline);
  // Stops accepting and joins the worker threads; answer bytes still
  // waiting for a client are dropped and its connection closed. Idempotent.
  void Stop();

 private:
  HttpServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace geoledger::server
