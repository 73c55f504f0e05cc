// The HTTP/1.1 frontend on Pistache 0.0.5. It owns connections and request
// framing; everything about a request's meaning is the Dispatcher's.
//
// What it adds to the packaged Pistache:
//  * persistent connections by default for HTTP/1.1 (RFC 9112 §9.3) — the
//    library marks every response to a request without a Connection header
//    "Connection: Close";
//  * separate limits for the request line plus headers (431) and the body
//    (413, decided from Content-Length before the body arrives), answered as
//    problem documents, after which the connection is closed;
//  * malformed requests answered with a problem document and a close;
//  * a bound on TLS handshakes, which the library performs blocking on its
//    accept thread (one silent client would otherwise stall every new
//    connection).
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
  std::chrono::milliseconds tls_handshake_timeout{5'000};
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
  // Stops accepting and joins the worker threads. Idempotent.
  void Stop();

 private:
  HttpServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace geoledger::server
