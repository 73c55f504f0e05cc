// A small blocking HTTP/1.1 client for the geoledger CLI: one request per
// TCP connection ("Connection: close"), plain or over TLS (OpenSSL), with
// bounded waits and bounded response sizes.
//
// Nothing here logs, and no error message quotes a request header value, so
// the Authorization header never leaves the request bytes.
//
// A peer that closes early is an error, never a SIGPIPE: Send blocks SIGPIPE
// on the calling thread while it runs and discards one raised meanwhile.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/http_response.h"
#include "common/status.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace geoledger::cli {

// A server base address: http://HOST[:PORT] or https://HOST[:PORT].
struct ServerUrl {
  bool tls = false;
  std::string host;  // a DNS name or an IP literal (IPv6 without brackets)
  uint16_t port = 0;

  std::string Authority() const;  // "host:port", "[::1]:port"; for Host headers and messages
  std::string ToString() const;   // "https://host:port"
  // True for "localhost", 127.0.0.0/8 and ::1 (no name resolution).
  bool IsLoopback() const;
};

// Accepts "http://HOST[:PORT][/]" and "https://HOST[:PORT][/]" (scheme is
// case-insensitive; default ports 80 and 443; IPv6 literals in brackets).
// kInvalidArgument for anything else, including user info, a path other
// than "/", a query or a fragment.
StatusOr<ServerUrl> ParseServerUrl(std::string_view url);

struct HttpRequest {
  std::string method;  // "GET", "POST", "DELETE", …
  std::string path;    // origin form, e.g. "/v1/whoami"; the caller percent-encodes
  // Extra headers. Host, Content-Length, Transfer-Encoding and Connection
  // are set by the client and may not appear here.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// The bytes of `request` as sent to `url` (with Host, Content-Length when
// there is a body or the method is POST/PUT/PATCH, and Connection: close).
// kInvalidArgument for a method that is not a token, a path that does not
// start with '/' or holds spaces or control characters, a bad header name, a
// header value with CR, LF or NUL, or a header the client owns. Error
// messages name the offending header, never its value.
StatusOr<std::string> SerializeHttpRequest(const ServerUrl& url, const HttpRequest& request);

struct HttpClientOptions {
  std::string ca_file;    // PEM CA bundle to trust; empty: the system store
  std::string cert_file;  // PEM client certificate chain for mTLS; optional
  std::string key_file;   // PEM private key for cert_file; empty: read from cert_file
  std::chrono::milliseconds connect_timeout{10'000};  // TCP connect + TLS handshake
  std::chrono::milliseconds io_timeout{10'000};       // longest wait for any read or write progress
  std::chrono::milliseconds total_timeout{60'000};    // whole exchange, connect included
  HttpParseLimits limits;
};

class HttpClient {
 public:
  // Prepares a client for `url`. For https, loads the CA bundle (or the
  // system store) and the optional client certificate and key.
  // kInvalidArgument when ca_file/cert_file/key_file are given for an http
  // URL, key_file is given without cert_file, or a file cannot be read or
  // parsed, or the key does not match the certificate (encrypted keys are not
  // supported: there is no passphrase prompt).
  static StatusOr<std::unique_ptr<HttpClient>> Create(const ServerUrl& url, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` on a fresh connection and reads one response, whatever
  // its status code (a 4xx or 5xx answer is a successful exchange).
  // kInvalidArgument: the request does not serialize (see above) or the
  //   response is malformed;
  // kUnavailable: name resolution, connect, TLS handshake or certificate
  //   verification failed, a timeout expired, or the connection broke;
  // kPayloadTooLarge: the response exceeds options.limits.
  // Never throws. Blocks for at most options.total_timeout (plus name
  // resolution, which getaddrinfo does not bound). Safe to call from several
  // threads at once (each call uses its own connection).
  StatusOr<HttpResponse> Send(const HttpRequest& request) const;

  const ServerUrl& url() const { return url_; }

 private:
  HttpClient(ServerUrl url, HttpClientOptions options) : url_(std::move(url)), options_(std::move(options)) {}

  ServerUrl url_;
  HttpClientOptions options_;
  ssl_ctx_st* ssl_ctx_ = nullptr;  // owned; null for http
};

}  // namespace geoledger::cli
