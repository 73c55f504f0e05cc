// The CLI's HTTP/1.1 response parser, URL parser and request serializer, and
// HttpClient::Send against scripted loopback servers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "cli/http_client.h"
#include "cli/http_response.h"

namespace geoledger::cli {
namespace {

// ---- ParseHttpResponse / TryParseHttpResponse ----

TEST(ParseHttpResponseTest, ContentLengthBody) {
  auto r = ParseHttpResponse(
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Request-Id: abc\r\n"
      "Content-Length: 11\r\n\r\n{\"id\":\"x\"}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->reason, "Created");
  EXPECT_EQ(r->body, "{\"id\":\"x\"}\n");
  ASSERT_NE(r->Header("content-type"), nullptr);
  EXPECT_EQ(*r->Header("content-type"), "application/json");
  EXPECT_EQ(*r->Header("x-request-id"), "abc");
  EXPECT_EQ(r->Header("X-Request-Id"), nullptr);  // lookups use lower-case names
}

TEST(ParseHttpResponseTest, HeaderNamesAreLowerCasedAndValuesTrimmed) {
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nWWW-Authenticate: \t Bearer \t\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->headers.size(), 2u);
  EXPECT_EQ(r->headers[0].first, "www-authenticate");
  EXPECT_EQ(r->headers[0].second, "Bearer");
  EXPECT_EQ(r->body, "");
}

TEST(ParseHttpResponseTest, ExtraBytesAfterContentLengthAreIgnored) {
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "ok");
}

TEST(ParseHttpResponseTest, ChunkedBodyWithExtensionsAndTrailers) {
  auto r = ParseHttpResponse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n"
      "7;ext=1\r\n, world\r\n"
      "A \r\n0123456789\r\n"
      "0\r\nX-Trailer: yes\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "hello, world0123456789");
}

TEST(ParseHttpResponseTest, ChunkedWinsOverContentLength) {
  auto r = ParseHttpResponse(
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "ok");
}

TEST(ParseHttpResponseTest, BareLineFeedsAreAccepted) {
  auto r = ParseHttpResponse("HTTP/1.0 200 OK\nContent-Length: 2\n\nok");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "ok");
}

TEST(ParseHttpResponseTest, NoFramingReadsToEndOfStream) {
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "all of it");
  // Without EOF the parser must wait for more.
  auto partial = TryParseHttpResponse("HTTP/1.1 200 OK\r\n\r\nall of it", /*at_eof=*/false);
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(partial->has_value());
}

TEST(ParseHttpResponseTest, StatusWithoutReasonPhrase) {
  auto r = ParseHttpResponse("HTTP/1.1 204\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->reason, "");
}

TEST(ParseHttpResponseTest, NoBodyStatusesIgnoreFraming) {
  auto r = ParseHttpResponse("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "");
}

TEST(ParseHttpResponseTest, InterimResponsesAreSkipped) {
  auto r = ParseHttpResponse(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
}

TEST(ParseHttpResponseTest, MalformedStatusLines) {
  for (const char* bad : {"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
                          "HTTP/1.1 099 Low\r\n\r\n", "HTTP/1.1 600 High\r\n\r\n", "http/1.1 200 OK\r\n\r\n",
                          "HTTP/1.1  200 OK\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n", "SSH-2.0-OpenSSH_9.2\r\n\r\n",
                          "\r\n\r\n", "<html>hello</html>\n\n"}) {
    auto r = ParseHttpResponse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad << ": " << r.status().ToString();
  }
}

TEST(ParseHttpResponseTest, MalformedHeaders) {
  for (const char* bad : {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "HTTP/1.1 200 OK\r\n: empty-name\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"}) {
    auto r = ParseHttpResponse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseHttpResponseTest, BadContentLength) {
  for (const char* bad : {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nab",
                          "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
                          "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nabc"}) {
    auto r = ParseHttpResponse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  // Repeated identical values are fine.
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "ok");
}

TEST(ParseHttpResponseTest, BadChunkFraming) {
  for (const char* bad : {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"}) {
    auto r = ParseHttpResponse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad << ": " << r.status().ToString();
  }
}

TEST(ParseHttpResponseTest, TruncatedResponses) {
  for (const char* cut : {"", "HTTP/1.1 200 OK\r\nContent-Le", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTrailer: x\r\n",
                          "HTTP/1.1 100 Continue\r\n\r\n"}) {
    auto r = ParseHttpResponse(cut);
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << cut << ": " << r.status().ToString();
    // Before EOF the same bytes just need more input.
    auto partial = TryParseHttpResponse(cut, /*at_eof=*/false);
    ASSERT_TRUE(partial.ok()) << cut << ": " << partial.status().ToString();
    EXPECT_FALSE(partial->has_value()) << cut;
  }
  auto r = ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
  EXPECT_NE(r.status().message().find("expected 10 body bytes, received 5"), std::string::npos)
      << r.status().message();
}

TEST(ParseHttpResponseTest, ByteByByteArrivalCompletesExactlyAtTheEnd) {
  const std::string full =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  for (size_t n = 0; n < full.size(); ++n) {
    auto partial = TryParseHttpResponse(std::string_view(full).substr(0, n), /*at_eof=*/false);
    ASSERT_TRUE(partial.ok()) << n;
    EXPECT_FALSE(partial->has_value()) << "complete after only " << n << " bytes";
  }
  auto done = TryParseHttpResponse(full, /*at_eof=*/false);
  ASSERT_TRUE(done.ok());
  ASSERT_TRUE(done->has_value());
  EXPECT_EQ((*done)->body, "abcde");
}

TEST(ParseHttpResponseTest, LimitsAreEnforced) {
  HttpParseLimits limits;
  limits.max_header_bytes = 64;
  limits.max_body_bytes = 4;
  auto big_header = TryParseHttpResponse("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a'), false, limits);
  EXPECT_EQ(big_header.status().code(), StatusCode::kPayloadTooLarge);
  auto big_length = TryParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, limits);
  EXPECT_EQ(big_length.status().code(), StatusCode::kPayloadTooLarge);
  auto big_chunks =
      TryParseHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\n", false, limits);
  EXPECT_EQ(big_chunks.status().code(), StatusCode::kPayloadTooLarge);
  auto big_unframed = TryParseHttpResponse("HTTP/1.1 200 OK\r\n\r\nabcde", false, limits);
  EXPECT_EQ(big_unframed.status().code(), StatusCode::kPayloadTooLarge);
  auto huge_chunk = ParseHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n");
  EXPECT_EQ(huge_chunk.status().code(), StatusCode::kPayloadTooLarge);
}

// ---- ParseServerUrl ----

TEST(ParseServerUrlTest, AcceptsHostPortForms) {
  auto a = ParseServerUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  EXPECT_TRUE(a->IsLoopback());

  auto b = ParseServerUrl("HTTPS://geoledger.example.eu/");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->port, 443);
  EXPECT_FALSE(b->IsLoopback());
  EXPECT_EQ(b->ToString(), "https://geoledger.example.eu:443");

  auto c = ParseServerUrl("http://[::1]:9000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->Authority(), "[::1]:9000");
  EXPECT_TRUE(c->IsLoopback());

  auto d = ParseServerUrl("http://localhost");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 80);
  EXPECT_TRUE(d->IsLoopback());
}

TEST(ParseServerUrlTest, RejectsEverythingElse) {
  for (const char* bad : {"", "127.0.0.1:8080", "ftp://h:1", "http://", "http://:80", "http://h:",
                          "http://h:0", "http://h:65536", "http://h:80x", "http://h/v1", "http://h?x=1",
                          "http://h#f", "http://user:pw@h:80", "http://[::1", "http://[nothost]:80",
                          "http://[::1]x", "http://h h:80"}) {
    auto r = ParseServerUrl(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  // User info may hold a password: it is not echoed.
  for (const char* secret : {"http://user:hunter2@h:80", "ftp://user:hunter2@h", "http://u:hunter2@h/path"}) {
    auto r = ParseServerUrl(secret);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message().find("hunter2"), std::string::npos) << r.status().message();
  }
  EXPECT_NE(ParseServerUrl("ftp://h").status().message().find("'ftp://h'"), std::string::npos);
}

// ---- SerializeHttpRequest ----

TEST(SerializeHttpRequestTest, FramesTheRequest) {
  ServerUrl url = *ParseServerUrl("http://127.0.0.1:8080");
  auto wire = SerializeHttpRequest(url, {"POST", "/v1/admin/tokens", {{"Authorization", "Bearer t"}}, "{}"});
  ASSERT_TRUE(wire.ok());
  EXPECT_EQ(*wire,
            "POST /v1/admin/tokens HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer t\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
  auto get = SerializeHttpRequest(url, {"GET", "/v1/whoami", {}, ""});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(*get, "GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n");
  auto empty_post = SerializeHttpRequest(url, {"POST", "/x", {}, ""});
  ASSERT_TRUE(empty_post.ok());
  EXPECT_NE(empty_post->find("Content-Length: 0\r\n"), std::string::npos);
}

TEST(SerializeHttpRequestTest, RejectsInjectionWithoutEchoingValues) {
  ServerUrl url = *ParseServerUrl("http://127.0.0.1:8080");
  EXPECT_FALSE(SerializeHttpRequest(url, {"GET /x HTTP/1.1\r\n", "/", {}, ""}).ok());
  EXPECT_FALSE(SerializeHttpRequest(url, {"GET", "x", {}, ""}).ok());
  EXPECT_FALSE(SerializeHttpRequest(url, {"GET", "/a b", {}, ""}).ok());
  EXPECT_FALSE(SerializeHttpRequest(url, {"GET", "/a\r\nX: y", {}, ""}).ok());
  EXPECT_FALSE(SerializeHttpRequest(url, {"GET", "/", {{"Bad Name", "v"}}, ""}).ok());
  EXPECT_FALSE(SerializeHttpRequest(url, {"GET", "/", {{"Content-Length", "5"}}, ""}).ok());
  EXPECT_FALSE(SerializeHttpRequest(url, {"GET", "/", {{"host", "evil"}}, ""}).ok());
  auto bad = SerializeHttpRequest(url, {"GET", "/", {{"Authorization", "Bearer secret\r\nX: 1"}}, ""});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("secret"), std::string::npos) << bad.status().message();
}

// ---- HttpClient::Send against a scripted loopback server ----

// Accepts one connection on 127.0.0.1, reads the request head, writes
// `reply` in pieces of `piece` bytes, then closes (unless `hold` is set, in
// which case it keeps the connection open for `hold` before closing).
class ScriptedServer {
 public:
  explicit ScriptedServer(std::string reply, size_t piece = 7,
                          std::chrono::milliseconds hold = std::chrono::milliseconds(0))
      : reply_(std::move(reply)), piece_(piece), hold_(hold) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    thread_.join();
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  const std::string& request() const { return request_; }  // valid after the client returned

 private:
  void Serve() {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    char buf[4096];
    while (request_.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      request_.append(buf, static_cast<size_t>(n));
    }
    for (size_t off = 0; off < reply_.size(); off += piece_) {
      ::send(fd, reply_.data() + off, std::min(piece_, reply_.size() - off), MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(hold_);
    ::close(fd);
  }

  std::string reply_;
  size_t piece_;
  std::chrono::milliseconds hold_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::string request_;
  std::thread thread_;
};

std::unique_ptr<HttpClient> ClientFor(uint16_t port, HttpClientOptions options = {}) {
  auto url = ParseServerUrl("http://127.0.0.1:" + std::to_string(port));
  auto client = HttpClient::Create(*url, std::move(options));
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

TEST(HttpClientTest, ReadsAChunkedResponseArrivingInPieces) {
  ScriptedServer server(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
      "4\r\n{\"a\"\r\n4\r\n:12}\r\n0\r\n\r\n",
      /*piece=*/3, /*hold=*/std::chrono::milliseconds(2000));  // completes before the server closes
  auto client = ClientFor(server.port());
  auto start = std::chrono::steady_clock::now();
  auto r = client->Send({"GET", "/v1/whoami", {{"Authorization", "Bearer gl_x"}}, ""});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"a\":12}");
  EXPECT_NE(server.request().find("GET /v1/whoami HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(server.request().find("Authorization: Bearer gl_x\r\n"), std::string::npos);
}

TEST(HttpClientTest, ErrorStatusIsAResponseNotAFailure) {
  ScriptedServer server(
      "HTTP/1.1 403 Forbidden\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\n\r\n{}");
  auto r = ClientFor(server.port())->Send({"GET", "/", {}, ""});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 403);
}

TEST(HttpClientTest, TruncatedResponseIsUnavailable) {
  ScriptedServer server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
  auto r = ClientFor(server.port())->Send({"GET", "/", {}, ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST(HttpClientTest, SilentServerTimesOut) {
  ScriptedServer server("", 1, std::chrono::milliseconds(1500));
  HttpClientOptions options;
  options.io_timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto r = ClientFor(server.port(), options)->Send({"GET", "/", {}, ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
}

TEST(HttpClientTest, RefusedConnectionIsUnavailable) {
  // Bind a port, then close it so nothing listens there.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  auto r = ClientFor(ntohs(addr.sin_port))->Send({"GET", "/", {}, ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot connect"), std::string::npos) << r.status().message();
}

TEST(HttpClientTest, TlsFilesNeedAnHttpsUrl) {
  auto url = ParseServerUrl("http://127.0.0.1:1");
  HttpClientOptions options;
  options.ca_file = "/etc/hostname";
  EXPECT_EQ(HttpClient::Create(*url, options).status().code(), StatusCode::kInvalidArgument);
  auto tls = ParseServerUrl("https://127.0.0.1:1");
  options.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(HttpClient::Create(*tls, options).status().code(), StatusCode::kInvalidArgument);
  HttpClientOptions key_only;
  key_only.key_file = "/etc/hostname";
  EXPECT_EQ(HttpClient::Create(*tls, key_only).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace geoledger::cli
