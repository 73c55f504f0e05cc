#include "cli/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace geoledger::cli {
namespace {

using Clock = std::chrono::steady_clock;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), IsTchar); }

bool IsIpv4Literal(const std::string& host) {
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool IsIpv6Literal(const std::string& host) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

// The most recent OpenSSL error on this thread's queue (and clears it).
std::string OpenSslError() {
  unsigned long code = 0, last = 0;
  while ((code = ::ERR_get_error()) != 0) last = code;
  if (last == 0) return "unknown TLS error";
  char buf[256];
  ::ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

Status CheckReadable(const std::string& what, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return InvalidArgument("cannot read " + what + " " + path + ": " + std::strerror(errno));
  ::close(fd);
  return Status::Ok();
}

// Closes the descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Blocks SIGPIPE on this thread while alive, and swallows one raised meanwhile:
// OpenSSL writes with write(2), which raises SIGPIPE on a closed socket (plain
// sockets use send(MSG_NOSIGNAL)). The failed write reports EPIPE instead.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      timespec zero{};
      while (::sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

struct SslDeleter {
  void operator()(SSL* ssl) const { ::SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { ::freeaddrinfo(ai); }
};

// Waits until `fd` is ready for `events` or `deadline` passes. kUnavailable
// names `what` on timeout.
Status WaitFor(int fd, short events, Clock::time_point deadline, const std::string& what) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Unavailable("timed out " + what);
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
    if (n > 0) return Status::Ok();  // ready, or an error/hangup the next call reports
    if (n < 0 && errno != EINTR) return Unavailable(std::string("poll failed: ") + std::strerror(errno));
  }
}

// One TCP (and optionally TLS) connection with deadline-bounded I/O.
class Connection {
 public:
  Connection(const ServerUrl& url, const HttpClientOptions& o, Clock::time_point total_deadline)
      : url_(url), options_(o), total_deadline_(total_deadline) {}

  ~Connection() {
    if (ssl_) {
      ::SSL_shutdown(ssl_.get());  // best effort; non-blocking, result ignored
      ::ERR_clear_error();
    }
  }

  Status Connect(SSL_CTX* ctx) {
    Clock::time_point deadline = std::min(Clock::now() + options_.connect_timeout, total_deadline_);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* raw = nullptr;
    std::string port = std::to_string(url_.port);
    int rc = ::getaddrinfo(url_.host.c_str(), port.c_str(), &hints, &raw);
    if (rc != 0) return Unavailable("cannot resolve " + url_.host + ": " + ::gai_strerror(rc));
    std::unique_ptr<addrinfo, AddrInfoDeleter> addrs(raw);

    std::string last_error = "no address";
    for (addrinfo* ai = addrs.get(); ai != nullptr; ai = ai->ai_next) {
      Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
      if (fd.get() < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
          last_error = std::strerror(errno);
          continue;
        }
        Status waited = WaitFor(fd.get(), POLLOUT, deadline, "connecting to " + url_.Authority());
        if (!waited.ok()) return waited;
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) {
          last_error = std::strerror(err);
          continue;
        }
      }
      fd_ = std::move(fd);
      break;
    }
    if (fd_.get() < 0) return Unavailable("cannot connect to " + url_.Authority() + ": " + last_error);
    if (ctx != nullptr) return Handshake(ctx, deadline);
    return Status::Ok();
  }

  Status WriteAll(std::string_view bytes) {
    while (!bytes.empty()) {
      GL_ASSIGN_OR_RETURN(size_t n, WriteSome(bytes));
      bytes.remove_prefix(n);
    }
    return Status::Ok();
  }

  // Bytes read into `buf` (at most `cap`); 0 at end of stream.
  StatusOr<size_t> ReadSome(char* buf, size_t cap) {
    const std::string what = "waiting for the response from " + url_.Authority();
    while (true) {
      if (!ssl_) {
        ssize_t n = ::recv(fd_.get(), buf, cap, 0);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          return Unavailable("reading from " + url_.Authority() + ": " + std::strerror(errno));
        GL_RETURN_IF_ERROR(WaitFor(fd_.get(), POLLIN, IoDeadline(), what));
        continue;
      }
      ::ERR_clear_error();
      errno = 0;
      size_t n = 0;
      int rc = ::SSL_read_ex(ssl_.get(), buf, cap, &n);
      if (rc == 1) return n;
      int err = ::SSL_get_error(ssl_.get(), rc);
      if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        GL_RETURN_IF_ERROR(WaitFor(fd_.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, IoDeadline(), what));
        continue;
      }
      if (err == SSL_ERROR_SYSCALL && ::ERR_peek_error() == 0 && errno == 0)
        return size_t{0};  // EOF without close_notify; message framing detects truncation
      return Unavailable("TLS read from " + url_.Authority() + " failed: " + SslFailure(err));
    }
  }

 private:
  Clock::time_point IoDeadline() const { return std::min(Clock::now() + options_.io_timeout, total_deadline_); }

  std::string SslFailure(int err) {
    if (err == SSL_ERROR_SYSCALL && ::ERR_peek_error() == 0)
      return errno != 0 ? std::strerror(errno) : "connection closed";
    return OpenSslError();
  }

  StatusOr<size_t> WriteSome(std::string_view bytes) {
    const std::string what = "sending the request to " + url_.Authority();
    while (true) {
      if (!ssl_) {
        ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          return Unavailable("writing to " + url_.Authority() + ": " + std::strerror(errno));
        GL_RETURN_IF_ERROR(WaitFor(fd_.get(), POLLOUT, IoDeadline(), what));
        continue;
      }
      ::ERR_clear_error();
      errno = 0;
      size_t n = 0;
      int rc = ::SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &n);
      if (rc == 1) return n;
      int err = ::SSL_get_error(ssl_.get(), rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        GL_RETURN_IF_ERROR(WaitFor(fd_.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, IoDeadline(), what));
        continue;
      }
      return Unavailable("TLS write to " + url_.Authority() + " failed: " + SslFailure(err));
    }
  }

  Status Handshake(SSL_CTX* ctx, Clock::time_point deadline) {
    ssl_.reset(::SSL_new(ctx));
    if (!ssl_) return Internal("SSL_new failed: " + OpenSslError());
    if (::SSL_set_fd(ssl_.get(), fd_.get()) != 1) return Internal("SSL_set_fd failed: " + OpenSslError());
    // The certificate must name the host we asked for: an IP SAN for IP
    // literals, a DNS name otherwise (also sent as SNI).
    if (IsIpv4Literal(url_.host) || IsIpv6Literal(url_.host)) {
      if (::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl_.get()), url_.host.c_str()) != 1)
        return Internal("cannot set the expected server address: " + OpenSslError());
    } else {
      if (::SSL_set1_host(ssl_.get(), url_.host.c_str()) != 1 ||
          SSL_set_tlsext_host_name(ssl_.get(), url_.host.c_str()) != 1)
        return Internal("cannot set the expected server name: " + OpenSslError());
    }
    const std::string what = "in the TLS handshake with " + url_.Authority();
    while (true) {
      ::ERR_clear_error();
      int rc = ::SSL_connect(ssl_.get());
      if (rc == 1) return Status::Ok();
      int err = ::SSL_get_error(ssl_.get(), rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        GL_RETURN_IF_ERROR(WaitFor(fd_.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, what));
        continue;
      }
      long verify = ::SSL_get_verify_result(ssl_.get());
      if (verify != X509_V_OK) {
        ::ERR_clear_error();
        return Unavailable("TLS: the certificate of " + url_.Authority() +
                           " failed verification: " + ::X509_verify_cert_error_string(verify));
      }
      return Unavailable("TLS handshake with " + url_.Authority() + " failed: " + SslFailure(err));
    }
  }

  const ServerUrl& url_;
  const HttpClientOptions& options_;
  Clock::time_point total_deadline_;
  Fd fd_;       // declared before ssl_: the SSL object is freed first
  SslPtr ssl_;
};

// No prompt for encrypted keys: the CLI runs in scripts.
int NoPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

std::string ServerUrl::Authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string ServerUrl::ToString() const { return std::string(tls ? "https://" : "http://") + Authority(); }

bool ServerUrl::IsLoopback() const {
  if (LowerCopy(host) == "localhost") return true;
  in_addr a4{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

StatusOr<ServerUrl> ParseServerUrl(std::string_view text) {
  // Echo the URL only when it cannot hold a password or terminal escapes.
  const bool echo = text.find('@') == std::string_view::npos &&
                    std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  const std::string shown = echo ? " '" + std::string(text) + "'" : "";
  const Status bad = InvalidArgument("server URL must look like http://HOST:PORT or https://HOST:PORT" +
                                     std::string(echo ? ", got" : "") + shown);
  ServerUrl url;
  std::string lower = LowerCopy(text);
  std::string_view rest = text;
  if (lower.rfind("https://", 0) == 0) {
    url.tls = true;
    rest.remove_prefix(8);
  } else if (lower.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return bad;
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (end != std::string_view::npos && rest.substr(end) != "/")
    return InvalidArgument("server URL must not have a path, query or fragment" + std::string(echo ? ":" : "") +
                           shown);
  if (authority.find('@') != std::string_view::npos)
    return InvalidArgument("server URL must not contain user information");

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad;
    url.host = std::string(authority.substr(1, close - 1));
    if (!IsIpv6Literal(url.host)) return bad;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad;
      port_text = after.substr(1);
      if (port_text.empty()) return bad;
    }
  } else {
    size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad;
    }
    if (url.host.empty() || !std::all_of(url.host.begin(), url.host.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '-' || c == '_';
        }))
      return bad;
  }
  if (port_text.empty()) {
    url.port = url.tls ? 443 : 80;
  } else {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) {
          return c >= '0' && c <= '9';
        }))
      return bad;
    int port = 0;
    std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);  // digits checked above
    if (port < 1 || port > 65535) return bad;
    url.port = static_cast<uint16_t>(port);
  }
  return url;
}

StatusOr<std::string> SerializeHttpRequest(const ServerUrl& url, const HttpRequest& request) {
  if (!IsToken(request.method)) return InvalidArgument("invalid HTTP method");
  if (request.path.empty() || request.path.front() != '/' ||
      !std::all_of(request.path.begin(), request.path.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return InvalidArgument("request path must start with '/' and hold only visible ASCII");
  std::string out = request.method + " " + request.path + " HTTP/1.1\r\nHost: " + url.Authority() + "\r\n";
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name)) return InvalidArgument("invalid request header name");
    std::string lower = LowerCopy(name);
    if (lower == "host" || lower == "content-length" || lower == "transfer-encoding" || lower == "connection")
      return InvalidArgument("request header '" + name + "' is set by the client");
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      return InvalidArgument("request header '" + name + "' has a control character in its value");
    out += name + ": " + value + "\r\n";
  }
  const std::string& m = request.method;
  if (!request.body.empty() || m == "POST" || m == "PUT" || m == "PATCH")
    out += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += request.body;
  return out;
}

StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(const ServerUrl& url, HttpClientOptions options) {
  if (!url.tls) {
    if (!options.ca_file.empty() || !options.cert_file.empty() || !options.key_file.empty())
      return InvalidArgument("CA, certificate and key files need an https:// server URL");
    return std::unique_ptr<HttpClient>(new HttpClient(url, std::move(options)));
  }
  if (!options.key_file.empty() && options.cert_file.empty())
    return InvalidArgument("a client key needs a client certificate");
  if (!options.ca_file.empty()) GL_RETURN_IF_ERROR(CheckReadable("CA file", options.ca_file));
  if (!options.cert_file.empty()) GL_RETURN_IF_ERROR(CheckReadable("certificate file", options.cert_file));
  if (!options.key_file.empty()) GL_RETURN_IF_ERROR(CheckReadable("key file", options.key_file));

  std::unique_ptr<HttpClient> client(new HttpClient(url, std::move(options)));
  const HttpClientOptions& o = client->options_;
  ::ERR_clear_error();
  SSL_CTX* ctx = ::SSL_CTX_new(::TLS_client_method());
  if (ctx == nullptr) return Internal("cannot create a TLS context: " + OpenSslError());
  client->ssl_ctx_ = ctx;  // freed by ~HttpClient from here on
  ::SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  ::SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  ::SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);  // framing catches truncation
#endif
  ::SSL_CTX_set_default_passwd_cb(ctx, NoPassphrase);
  if (!o.ca_file.empty()) {
    if (::SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1)
      return InvalidArgument("cannot load CA certificates from " + o.ca_file + ": " + OpenSslError());
  } else if (::SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return Internal("cannot load the system CA store: " + OpenSslError());
  }
  if (!o.cert_file.empty()) {
    const std::string& key = o.key_file.empty() ? o.cert_file : o.key_file;
    if (::SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1)
      return InvalidArgument("cannot load the client certificate from " + o.cert_file + ": " + OpenSslError());
    if (::SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
      return InvalidArgument("cannot use the private key in " + key +
                             " (it must be an unencrypted PEM key matching the certificate): " + OpenSslError());
    if (::SSL_CTX_check_private_key(ctx) != 1)
      return InvalidArgument("the private key in " + key + " does not match the certificate in " + o.cert_file);
  }
  return client;
}

HttpClient::~HttpClient() {
  if (ssl_ctx_ != nullptr) ::SSL_CTX_free(ssl_ctx_);
}

StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) const {
  GL_ASSIGN_OR_RETURN(std::string wire, SerializeHttpRequest(url_, request));
  SigpipeGuard no_sigpipe;  // declared before conn: outlives its TLS shutdown
  Connection conn(url_, options_, Clock::now() + options_.total_timeout);
  GL_RETURN_IF_ERROR(conn.Connect(ssl_ctx_));
  GL_RETURN_IF_ERROR(conn.WriteAll(wire));

  std::string received;
  char buf[16 * 1024];
  while (true) {
    GL_ASSIGN_OR_RETURN(size_t n, conn.ReadSome(buf, sizeof buf));
    if (n == 0) return ParseHttpResponse(received, options_.limits);
    received.append(buf, n);
    GL_ASSIGN_OR_RETURN(std::optional<HttpResponse> response,
                        TryParseHttpResponse(received, /*at_eof=*/false, options_.limits));
    if (response) return std::move(*response);
  }
}

}  // namespace geoledger::cli
